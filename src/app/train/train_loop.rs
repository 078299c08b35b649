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

use super::evaluate::eval_batch_size;
use super::metrics::EpochMetrics;
use super::prefetch::{BatchJob, Prefetch};
use super::{
    CheckpointInfo, DistributedStats, EpochProgress, Evaluation, FlushDenormals, ProgressMode,
    RunDir, RunOptions, RunSummary, TrainConfig, build_optimizer, build_scheduler,
    check_model_fits_data, evaluate,
};
use crate::app::data::{Batch, Dataset, Split, epoch_order};
use crate::app::distributed::{
    Collective, RunIdentity, Single, agree, agreed, params, rank_seed, settle, share,
};
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
    /// The all-reduce's cost so far (several processes only).
    comm: Option<DistributedStats>,
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
    let summary = train_in(cfg, data, device, opts, &Single)?;
    Ok(summary.expect("rank 0 of one process returns the summary"))
}

/// [`train`] as one rank of `group`: every rank of the job calls it with the same arguments
/// (`mpirun -np N netcalc train …`), and together they train one model, the one a single
/// process would train at the same global batch, to floating-point summation.
///
/// - Rank 0's config, data description and fingerprint are checked on every rank
///   ([`agree()`]); rank 0's initial (or resumed) parameters are broadcast.
/// - Each global batch of `cfg.batch_size` is split into one contiguous share per rank
///   ([`share`]); each rank's mean-loss gradient is weighted by its share of the batch, and one
///   all-reduce per step sums the gradients (with the batch's loss, hits and a stop flag); a
///   rank without examples in a batch sends zeros. Every rank then takes the same optimizer
///   step.
/// - The parameters' checksums are compared after every epoch: ranks that drifted apart stop
///   the job ([`Error::Distributed`]).
/// - Dropout and augmentation draw from per-rank streams ([`rank_seed`]); rank 0's are a single
///   process's.
/// - Rank 0 alone evaluates, prints, shows progress and writes the run directory; it returns
///   the summary, the other ranks `None`.
/// - An interrupt on any rank stops every rank after the same batch (the flag travels in the
///   all-reduce); rank 0 writes the checkpoint, and every rank returns
///   [`Error::Interrupted`]. A resume needs the same number of processes.
pub fn train_in(
    cfg: &TrainConfig,
    data: &Dataset,
    device: &Device,
    opts: &RunOptions,
    group: &dyn Collective,
) -> Result<Option<RunSummary>> {
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
    let lead = group.rank() == 0;
    let existed = opts.out.exists();
    let run = if opts.resume {
        RunDir::open(&opts.out)?
    } else if lead {
        RunDir::create(&opts.out)?
    } else {
        RunDir::written_elsewhere(&opts.out)
    };
    let result = run_epochs(cfg, &train_split, data, device, opts, &run, group);
    if lead && result.is_err() && !opts.resume && !existed && !run.has_checkpoint() {
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
    group: &dyn Collective,
) -> Result<Option<RunSummary>> {
    let ad = device.clone().autodiff();
    let lead = group.rank() == 0;
    let steps_per_epoch = train_split.len().div_ceil(cfg.batch_size);
    let started = if opts.resume {
        resume(cfg, run, &ad, steps_per_epoch, group.size())
    } else {
        start(cfg, &ad, steps_per_epoch)
    };
    let mut state = settle(group, started, "load the model to train")?;
    if group.size() > 1 {
        let identity = RunIdentity {
            config: cfg.clone(),
            data: data.info.clone(),
            fingerprint: opts.data_record.as_ref().map(|r| r.fingerprint.clone()),
            train_images: train_split.len(),
            test_images: data.test.len(),
            resume_step: opts.resume.then_some(state.steps),
            allreduce_buckets: group.buckets(),
        };
        agree(group, &identity).map_err(|e| agreed(group, e))?;
        state.model = broadcast_parameters(state.model, group);
        state.comm = Some(DistributedStats {
            ranks: group.size(),
            floats_per_step: state.model.num_params() + EXTRA_FLOATS,
            steps: 0,
            all_reduce_seconds: 0.0,
            step_seconds: 0.0,
        });
    }
    if lead {
        run.write_config(cfg)?;
        run.write_data_info(&data.info)?;
        if let Some(record) = &opts.data_record {
            run.write_data_record(record)?;
        }
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
        (state, totals) = train_epoch(
            cfg,
            state,
            train_split,
            (device, &ad),
            &loss_fn,
            opts,
            group,
        )?;
        let Some(totals) = totals else {
            // Interrupted after a batch: a checkpoint of the unfinished epoch.
            if lead {
                checkpoint(cfg, &state, &state.model.valid(), run, opts.backend, group)?;
            }
            return Err(agreed(group, interrupted(run, &state)));
        };
        if group.size() > 1 {
            check_parameters_agree(&state.model, group, state.epoch + 1)
                .map_err(|e| agreed(group, e))?;
        }
        state.epoch += 1;
        if lead {
            let valid = state.model.valid();
            let eval = evaluate(&valid, &data.test, device, eval_batch_size(data.info.shape))?;
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
            checkpoint(cfg, &state, &valid, run, opts.backend, group)?;
            last_eval = Some(eval);
        }
        // every rank stops here if any was interrupted during the epoch's last batch
        let stop = group.gather(u64::from(opts.interrupted())).contains(&1);
        if stop && state.epoch < cfg.epochs {
            return Err(agreed(group, interrupted(run, &state)));
        }
    }
    if lead {
        finish(state, last_eval, data, device, run).map(Some)
    } else {
        Ok(None)
    }
}

/// Values the all-reduce carries after the gradients: the batch's weighted loss, its hits, the
/// stop flag and the failure flag (the ranks whose step failed).
const EXTRA_FLOATS: usize = 4;

/// A fault injected at a training step through the `train-step` fail point (feature
/// `failpoints`): `panic`, or `return(MESSAGE)` for an error.
fn step_fault() -> Result<()> {
    fail::fail_point!("train-step", |m: Option<String>| Err(Error::Fault {
        point: "train-step".into(),
        message: m.unwrap_or_else(|| "a training step failed".into()),
    }));
    Ok(())
}

/// Rank 0's parameters on every rank.
fn broadcast_parameters(model: Cnn, group: &dyn Collective) -> Cnn {
    let mut bytes: Vec<u8> = if group.rank() == 0 {
        params::param_values(&model)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    } else {
        Vec::new()
    };
    group.broadcast(&mut bytes);
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    params::with_param_values(model, &values)
}

/// Stops the job when the ranks' parameters differ after `epoch` (they take the same steps
/// from the same values, so they never should).
fn check_parameters_agree(model: &Cnn, group: &dyn Collective, epoch: usize) -> Result<()> {
    let sums = group.gather(params::checksum(&params::param_values(model)));
    let differ: Vec<String> = sums
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != sums[0])
        .map(|(r, s)| format!("rank {r} {s:016x}"))
        .collect();
    if differ.is_empty() {
        Ok(())
    } else {
        Err(Error::Distributed {
            message: format!(
                "the parameters differ between ranks after epoch {epoch}: rank 0 {:016x}, {}; the job stops (the last checkpoint is kept)",
                sums[0],
                differ.join(", ")
            ),
        })
    }
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
    let model = cfg.model.init(ad)?;
    // burn draws a parameter's initial values lazily, at its first use: drawn here, right
    // after seeding, they depend on the seed alone, not on the stream seeded when the first
    // batch (or, on several processes, the broadcast) first reads them
    params::materialize(&model);
    Ok(TrainState {
        model,
        optimizer: build_optimizer(&cfg.optimizer),
        scheduler: build_scheduler(cfg, steps_per_epoch)?,
        history: Vec::new(),
        epoch: 0,
        steps: 0,
        lr: cfg.optimizer.lr,
        in_epoch: None,
        comm: None,
    })
}

/// The state of the run's last checkpoint, with the scheduler advanced to its step.
fn resume(
    cfg: &TrainConfig,
    run: &RunDir,
    ad: &Device,
    steps_per_epoch: usize,
    ranks: usize,
) -> Result<TrainState> {
    let ckpt = run.read_checkpoint(cfg, ad)?;
    if ckpt.info.ranks != ranks {
        let how = |n: usize| {
            if n == 1 {
                "one process (without mpirun)".to_string()
            } else {
                format!("{n} processes (`mpirun -np {n}`)")
            }
        };
        return Err(Error::Distributed {
            message: format!(
                "{} was trained on {}, and this run has {}; resume it on {}: another number of processes would split every batch, and draw dropout and augmentation, differently",
                run.path().display(),
                how(ckpt.info.ranks),
                how(ranks),
                how(ckpt.info.ranks)
            ),
        });
    }
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
        comm: None,
    })
}

/// One pass over `split` in the epoch's seeded order, with augmentation and a progress bar,
/// starting after the batches an interrupted run already did. Returns no totals when
/// `opts.interrupt` (on any rank) stopped it after a batch (the state then says where). A
/// non-finite loss stops training with [`Error::Diverged`]. (The state is moved through: the
/// optimizer takes the model by value, so its parameters can be updated in place.)
fn train_epoch(
    cfg: &TrainConfig,
    mut state: TrainState,
    split: &Split,
    (device, ad): (&Device, &Device),
    loss_fn: &CrossEntropyLoss,
    opts: &RunOptions,
    group: &dyn Collective,
) -> Result<(TrainState, Option<EpochTotals>)> {
    let epoch = state.epoch;
    let start = Instant::now();
    let order = epoch_order(split.len(), cfg.seed, epoch);
    let batches = order.len().div_ceil(cfg.batch_size);
    let done = state.in_epoch.take().unwrap_or_default();
    let bar = if group.rank() == 0 {
        progress_bar(opts, batches, epoch + 1, cfg.epochs)
    } else {
        ProgressBar::hidden()
    };
    bar.inc(done.batches as u64);
    let (mut loss_sum, mut correct, mut seen) =
        (f64::from_bits(done.loss_sum_bits), done.correct, done.seen);
    let seconds = |start: Instant| done.seconds + start.elapsed().as_secs_f64();
    // the all-reduce's buffer: gradients, then loss, hits, stop flag
    let mut buf = match &state.comm {
        Some(c) => vec![0.0f32; c.floats_per_step],
        None => Vec::new(),
    };
    let mine_of = |chunk: &[usize]| -> Vec<usize> {
        if state.comm.is_none() {
            chunk.to_vec()
        } else {
            chunk[share(chunk.len(), group.rank(), group.size())].to_vec()
        }
    };
    // the batches are built ahead of the step, from each batch's own augmentation seed
    let jobs: Vec<BatchJob> = order
        .chunks(cfg.batch_size)
        .enumerate()
        .skip(done.batches)
        .map(|(b, chunk)| BatchJob {
            indices: mine_of(chunk),
            augment: (cfg.augment_shift > 0).then(|| {
                (
                    rank_seed(batch_seed(cfg.seed ^ 0xA5A5, epoch, b), group.rank()),
                    cfg.augment_shift,
                )
            }),
        })
        .collect();
    let mut reader = Prefetch::start(split.clone(), jobs)?;
    for (b, chunk) in order.chunks(cfg.batch_size).enumerate().skip(done.batches) {
        let step_start = Instant::now();
        let seed = rank_seed(batch_seed(cfg.seed, epoch, b), group.rank());
        ad.seed(seed);
        let host = reader.next_batch()?;
        let (grads, batch_loss, hits, stop) = if state.comm.is_none() {
            // alone: the whole batch, burn's mean loss and its gradients as they are
            step_fault()?;
            let (grads, loss, hits) = forward_backward(&state.model, host.to_device(ad), loss_fn);
            (grads, loss, hits, opts.interrupted())
        } else {
            // one share of the batch; the gradient weighted by the share, summed over ranks
            let mine = host.dims[0];
            let n = buf.len() - EXTRA_FLOATS;
            let fault = step_fault().err();
            if mine == 0 || fault.is_some() {
                buf.fill(0.0);
            } else {
                let weight = mine as f32 / chunk.len() as f32;
                let (mut grads, loss, hits) =
                    forward_backward(&state.model, host.to_device(ad), loss_fn);
                params::take_grads(&state.model, &mut grads, weight, &mut buf[..n]);
                buf[n] = loss as f32 * weight;
                buf[n + 1] = hits as f32;
            }
            buf[n + 2] = if opts.interrupted() { 1.0 } else { 0.0 };
            buf[n + 3] = if fault.is_some() { 1.0 } else { 0.0 };
            let reduce_start = Instant::now();
            group.sum_in_place(&mut buf);
            if let Some(c) = state.comm.as_mut() {
                c.all_reduce_seconds += reduce_start.elapsed().as_secs_f64();
            }
            // a rank's failed step stops every rank here, before anyone's parameters move
            let failed = buf[n + 3].round() as usize;
            if failed > 0 {
                bar.finish_and_clear();
                let e = fault.unwrap_or_else(|| Error::RanksFailed {
                    message: format!(
                        "{failed} of {} ranks failed at epoch {}, batch {} (their errors are printed with their ranks); the job stops, the last checkpoint is kept",
                        group.size(),
                        epoch + 1,
                        b + 1
                    ),
                });
                return Err(agreed(group, e));
            }
            let grads = params::grads_from(&state.model, &buf[..n], device);
            (
                grads,
                f64::from(buf[n]),
                buf[n + 1].round() as i64,
                buf[n + 2] > 0.0,
            )
        };
        let step_lr = state.scheduler.step();
        state.lr = step_lr.base();
        state.model = state.optimizer.step(step_lr, state.model, grads);
        state.steps += 1;
        if let Some(c) = state.comm.as_mut() {
            c.steps += 1;
            c.step_seconds += step_start.elapsed().as_secs_f64();
        }
        if !batch_loss.is_finite() {
            bar.finish_and_clear();
            return Err(agreed(
                group,
                Error::Diverged {
                    epoch: epoch + 1,
                    batch: b + 1,
                    loss: batch_loss,
                    lr: state.lr,
                },
            ));
        }
        loss_sum += batch_loss * chunk.len() as f64;
        correct += hits;
        seen += chunk.len();
        bar.set_message(format!(
            "loss {:.4} acc {:.2}% {:.0} img/s",
            loss_sum / seen as f64,
            100.0 * correct as f64 / seen as f64,
            seen as f64 / seconds(start)
        ));
        bar.inc(1);
        if stop && b + 1 < batches {
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

/// Forward and backward on one batch: the gradients of burn's mean loss, the loss, and the
/// images classified correctly.
fn forward_backward(
    model: &Cnn,
    batch: Batch,
    loss_fn: &CrossEntropyLoss,
) -> (GradientsParams, f64, i64) {
    let logits = model.forward(batch.images);
    let loss = loss_fn.forward(logits.clone(), batch.labels.clone());
    let hits: Tensor<1, Int> = logits
        .detach()
        .argmax(1)
        .flatten::<1>(0, 1)
        .equal(batch.labels)
        .int()
        .sum();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    (grads, loss.into_scalar::<f64>(), hits.into_scalar::<i64>())
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
    group: &dyn Collective,
) -> Result<()> {
    run.write_history(&state.history)?;
    let info = CheckpointInfo {
        epoch: state.epoch,
        dir: RunDir::checkpoint_name(state.epoch, state.in_epoch.as_ref()),
        seed: cfg.seed,
        steps: state.steps,
        backend,
        in_epoch: state.in_epoch.clone(),
        ranks: group.size(),
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
        None => evaluate(&valid, &data.test, device, eval_batch_size(data.info.shape))?,
    };
    run.write_report(&state.history, &evaluation, &data.info.classes)?;
    Ok(RunSummary {
        history: state.history,
        evaluation,
        out: run.path().to_path_buf(),
        distributed: state.comm,
    })
}
