//! The training loop: forward → burn's `CrossEntropyLoss` → `backward()` → `GradientsParams`
//! → the optimizer's step, with the learning-rate schedule, per-epoch evaluation, metrics,
//! plots and atomic checkpoints in a [`RunDir`].

use std::io::IsTerminal;
use std::time::Instant;

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::metrics::EpochMetrics;
use super::{
    CheckpointInfo, EpochProgress, Evaluation, FlushDenormals, ProgressMode, RunDir, RunOptions,
    RunSummary, TrainConfig, build_optimizer, build_scheduler, check_model_fits_data, evaluate,
};
use crate::app::data::{Dataset, Split, epoch_order};
use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::model::Cnn;

/// The seed of batch `batch` of epoch `epoch`. Dropout masks (burn's device RNG) and the
/// random shifts are drawn from it, batch by batch, so a run resumed after any batch continues
/// exactly as an uninterrupted one would.
fn batch_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    crate::seed::stream(epoch_seed(seed, epoch), batch as u64 + 1)
}

fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(epoch as u64 * 1_442_695_040_888_963_407 + 1)
}

/// Everything that changes from step to step.
struct TrainState {
    model: Cnn,
    optimizer: ModuleOptimizer,
    scheduler: ModuleLrScheduler,
    history: Vec<EpochMetrics>,
    /// Epochs completed.
    epoch: usize,
    /// Optimizer steps taken.
    steps: usize,
    /// The learning rate of the last step.
    lr: f64,
    /// Where the current epoch stands when it was interrupted after a batch.
    in_epoch: Option<EpochProgress>,
}

/// Training loss and accuracy of one epoch.
struct EpochTotals {
    loss: f64,
    accuracy: f64,
    images_per_sec: f64,
    /// Training time of the part of the epoch before an interruption (0 without one).
    earlier_seconds: f64,
}

/// Trains `cfg` on `data` on `device` (autodiff is added here), writing everything into the
/// run directory `opts.out`. With `opts.resume`, continues from its checkpoint.
///
/// Nothing is written before the config, the settings and the model's fit to the data are
/// checked. A run that fails before its first checkpoint removes the directory it created;
/// after that, the last checkpoint stays and `--resume` continues from it.
///
/// The run flushes subnormal floats to zero ([`FlushDenormals`]) unless
/// `NETCALC_DENORMALS=keep`; another value of it is an [`Error::Setting`].
///
/// # Examples
/// ```
/// use netcalc::CnnConfig;
/// use netcalc::app::data::Dataset;
/// use netcalc::app::train::{ProgressMode, RunOptions, TrainConfig, train};
/// let (backend, device) = netcalc::select_device(None)?;
/// let data = Dataset::bundled()?; // 8,000 + 2,000 real digits, compiled in
/// // two epochs of Keras' convnet on 2,000 images
/// let cfg = TrainConfig {
///     model: CnnConfig::keras_mnist(),
///     epochs: 2,
///     limit: Some(2000),
///     ..TrainConfig::default()
/// };
/// let dir = tempfile::tempdir().unwrap();
/// let opts = RunOptions {
///     out: dir.path().join("run"),
///     resume: false,
///     stop_after: None,
///     progress: ProgressMode::Quiet,
///     backend,
///     interrupt: None,
///     data_record: None,
/// };
/// let run = train(&cfg, &data, &device, &opts)?;
/// assert!(run.evaluation.accuracy > 0.85, "{}", run.evaluation.accuracy);
/// assert!(dir.path().join("run/model.bpk").is_file());
/// # Ok::<(), netcalc::Error>(())
/// ```
pub fn train(
    cfg: &TrainConfig,
    data: &Dataset,
    device: &Device,
    opts: &RunOptions,
) -> Result<RunSummary> {
    cfg.validate()?;
    check_model_fits_data(&cfg.model, &data.info)?;
    let train_split = match cfg.limit {
        Some(n) => data.train.take(n),
        None => data.train.clone(),
    };
    if train_split.is_empty() || data.test.is_empty() {
        return Err(Error::setting(
            "data",
            "the training and test splits must not be empty",
        ));
    }
    // subnormal values flushed to zero for the run (see `denormals`)
    let _flush = FlushDenormals::unless_kept()?;
    let existed = opts.out.exists();
    let run = if opts.resume {
        RunDir::open(&opts.out)?
    } else {
        RunDir::create(&opts.out)?
    };
    let result = run_epochs(cfg, &train_split, data, device, opts, &run);
    if result.is_err() && !opts.resume && !existed && !run.has_checkpoint() {
        // Nothing worth keeping: leave no half-made run directory behind.
        let _ = std::fs::remove_dir_all(run.path());
    }
    result
}

fn run_epochs(
    cfg: &TrainConfig,
    train_split: &Split,
    data: &Dataset,
    device: &Device,
    opts: &RunOptions,
    run: &RunDir,
) -> Result<RunSummary> {
    let ad = device.clone().autodiff();
    let steps_per_epoch = train_split.len().div_ceil(cfg.batch_size);
    let mut state = if opts.resume {
        resume(cfg, run, &ad, steps_per_epoch)?
    } else {
        start(cfg, &ad, steps_per_epoch)?
    };
    run.write_config(cfg)?;
    run.write_data_info(&data.info)?;
    if let Some(record) = &opts.data_record {
        run.write_data_record(record)?;
    }
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let prior_elapsed = state
        .history
        .last()
        .map(|m| m.elapsed_seconds)
        .unwrap_or(0.0);
    let run_start = Instant::now();
    let last_epoch = opts.stop_after.map_or(cfg.epochs, |s| s.min(cfg.epochs));
    let mut last_eval: Option<Evaluation> = None;
    while state.epoch < last_epoch {
        let epoch_start = Instant::now();
        let totals;
        (state, totals) = train_epoch(cfg, state, train_split, &ad, &loss_fn, opts)?;
        let Some(totals) = totals else {
            // Interrupted after a batch: a checkpoint of the unfinished epoch.
            checkpoint(cfg, &state, &state.model.valid(), run, opts.backend)?;
            return Err(interrupted(run, &state));
        };
        let valid = state.model.valid();
        let eval = evaluate(&valid, &data.test, device, 1000)?;
        state.epoch += 1;
        let m = EpochMetrics {
            epoch: state.epoch,
            train_loss: totals.loss,
            train_accuracy: totals.accuracy,
            test_loss: eval.loss,
            test_accuracy: eval.accuracy,
            lr: state.lr,
            images_per_sec: totals.images_per_sec,
            epoch_seconds: totals.earlier_seconds + epoch_start.elapsed().as_secs_f64(),
            elapsed_seconds: prior_elapsed + run_start.elapsed().as_secs_f64(),
        };
        if opts.progress != ProgressMode::Quiet {
            println!("{}", m.line(cfg.epochs));
        }
        state.history.push(m);
        checkpoint(cfg, &state, &valid, run, opts.backend)?;
        last_eval = Some(eval);
        if opts.interrupted() && state.epoch < cfg.epochs {
            return Err(interrupted(run, &state));
        }
    }
    finish(state, last_eval, data, device, run)
}

fn interrupted(run: &RunDir, state: &TrainState) -> Error {
    Error::Interrupted {
        epoch: state.epoch,
        batches: state.in_epoch.as_ref().map_or(0, |p| p.batches),
        run: run.path().to_path_buf(),
    }
}

/// A fresh model and optimizer, seeded.
fn start(cfg: &TrainConfig, ad: &Device, steps_per_epoch: usize) -> Result<TrainState> {
    ad.seed(cfg.seed);
    Ok(TrainState {
        model: cfg.model.init(ad)?,
        optimizer: build_optimizer(&cfg.optimizer),
        scheduler: build_scheduler(cfg, steps_per_epoch)?,
        history: Vec::new(),
        epoch: 0,
        steps: 0,
        lr: cfg.optimizer.lr,
        in_epoch: None,
    })
}

/// The state of the run's last checkpoint, with the scheduler advanced to its step.
fn resume(
    cfg: &TrainConfig,
    run: &RunDir,
    ad: &Device,
    steps_per_epoch: usize,
) -> Result<TrainState> {
    let ckpt = run.read_checkpoint(cfg, ad)?;
    let mut scheduler = build_scheduler(cfg, steps_per_epoch)?;
    let mut lr = cfg.optimizer.lr;
    for _ in 0..ckpt.info.steps {
        lr = scheduler.step().base();
    }
    Ok(TrainState {
        model: ckpt.model,
        optimizer: ckpt.optimizer,
        scheduler,
        history: ckpt.history,
        epoch: ckpt.info.epoch,
        steps: ckpt.info.steps,
        lr,
        in_epoch: ckpt.info.in_epoch,
    })
}

/// One pass over `split` in the epoch's seeded order, with augmentation and a progress bar,
/// starting after the batches an interrupted run already did. Returns no totals when
/// `opts.interrupt` stopped it after a batch (the state then says where). A non-finite loss
/// stops training with [`Error::Diverged`]. (The state is moved through: the optimizer takes
/// the model by value, so its parameters can be updated in place.)
fn train_epoch(
    cfg: &TrainConfig,
    mut state: TrainState,
    split: &Split,
    ad: &Device,
    loss_fn: &CrossEntropyLoss,
    opts: &RunOptions,
) -> Result<(TrainState, Option<EpochTotals>)> {
    let epoch = state.epoch;
    let start = Instant::now();
    let order = epoch_order(split.len(), cfg.seed, epoch);
    let batches = order.len().div_ceil(cfg.batch_size);
    let done = state.in_epoch.take().unwrap_or_default();
    let bar = progress_bar(opts, batches, epoch + 1, cfg.epochs);
    bar.inc(done.batches as u64);
    let (mut loss_sum, mut correct, mut seen) =
        (f64::from_bits(done.loss_sum_bits), done.correct, done.seen);
    let seconds = |start: Instant| done.seconds + start.elapsed().as_secs_f64();
    for (b, chunk) in order.chunks(cfg.batch_size).enumerate().skip(done.batches) {
        ad.seed(batch_seed(cfg.seed, epoch, b));
        let mut aug_rng = ChaCha8Rng::seed_from_u64(batch_seed(cfg.seed ^ 0xA5A5, epoch, b));
        let augment = (cfg.augment_shift > 0).then_some((&mut aug_rng, cfg.augment_shift));
        let batch = split.batch(chunk, ad, augment);
        let logits = state.model.forward(batch.images);
        let loss = loss_fn.forward(logits.clone(), batch.labels.clone());
        let hits: Tensor<1, Int> = logits
            .detach()
            .argmax(1)
            .flatten::<1>(0, 1)
            .equal(batch.labels)
            .int()
            .sum();
        let grads = GradientsParams::from_grads(loss.backward(), &state.model);
        let step_lr = state.scheduler.step();
        state.lr = step_lr.base();
        state.model = state.optimizer.step(step_lr, state.model, grads);
        state.steps += 1;
        let batch_loss = loss.into_scalar::<f64>();
        if !batch_loss.is_finite() {
            bar.finish_and_clear();
            return Err(Error::Diverged {
                epoch: epoch + 1,
                batch: b + 1,
                loss: batch_loss,
                lr: state.lr,
            });
        }
        loss_sum += batch_loss * chunk.len() as f64;
        correct += hits.into_scalar::<i64>();
        seen += chunk.len();
        bar.set_message(format!(
            "loss {:.4} acc {:.2}% {:.0} img/s",
            loss_sum / seen as f64,
            100.0 * correct as f64 / seen as f64,
            seen as f64 / seconds(start)
        ));
        bar.inc(1);
        if opts.interrupted() && b + 1 < batches {
            bar.finish_and_clear();
            state.in_epoch = Some(EpochProgress {
                batches: b + 1,
                seen,
                correct,
                loss_sum_bits: loss_sum.to_bits(),
                seconds: seconds(start),
            });
            return Ok((state, None));
        }
    }
    bar.finish_and_clear();
    let totals = EpochTotals {
        loss: loss_sum / seen as f64,
        accuracy: correct as f64 / seen as f64,
        images_per_sec: seen as f64 / seconds(start),
        earlier_seconds: done.seconds,
    };
    Ok((state, Some(totals)))
}

fn progress_bar(opts: &RunOptions, len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if opts.progress != ProgressMode::Auto || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Metrics files and a checkpoint after an epoch.
fn checkpoint(
    cfg: &TrainConfig,
    state: &TrainState,
    valid: &Cnn,
    run: &RunDir,
    backend: BackendKind,
) -> Result<()> {
    run.write_history(&state.history)?;
    let info = CheckpointInfo {
        epoch: state.epoch,
        dir: RunDir::checkpoint_name(state.epoch, state.in_epoch.as_ref()),
        seed: cfg.seed,
        steps: state.steps,
        backend,
        in_epoch: state.in_epoch.clone(),
    };
    run.write_checkpoint(valid, &state.optimizer, &state.history, &info)
}

/// The final model, the held-out evaluation (the last epoch's, or a new one when no epoch ran:
/// a resume of a finished run) and the report files.
fn finish(
    state: TrainState,
    last_eval: Option<Evaluation>,
    data: &Dataset,
    device: &Device,
    run: &RunDir,
) -> Result<RunSummary> {
    let valid = state.model.valid();
    run.save_model(&valid)?;
    let evaluation = match last_eval {
        Some(e) => e,
        None => evaluate(&valid, &data.test, device, 1000)?,
    };
    run.write_report(&state.history, &evaluation, &data.info.classes)?;
    Ok(RunSummary {
        history: state.history,
        evaluation,
        out: run.path().to_path_buf(),
    })
}
