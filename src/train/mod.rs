//! The training loop: forward → burn's `CrossEntropyLoss` → `backward()` → `GradientsParams` →
//! burn optimizer step, with a learning-rate schedule, per-epoch evaluation, metrics, plots and
//! atomic checkpoints.

pub mod config;
pub mod metrics;
pub mod plot;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::cnn::{Cnn, CnnConfig};
use crate::data::download::write_atomic;
use crate::data::{Mnist, MnistSplit, epoch_order};
use crate::error::{Error, Result};
pub use config::{OptimizerConfig, OptimizerKind, Schedule, TrainConfig};
use metrics::{EpochMetrics, read_json, write_confusion, write_history, write_json};

/// File names inside a run directory.
pub mod files {
    /// The full training configuration.
    pub const CONFIG: &str = "config.json";
    /// The final (or latest) model, burn's burnpack format.
    pub const MODEL: &str = "model.bpk";
    /// Pointer to the latest complete checkpoint.
    pub const CHECKPOINT: &str = "checkpoint.json";
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise.
    Auto,
    /// Plain lines only.
    Plain,
    /// Nothing.
    Quiet,
}

/// What a training run needs besides its [`TrainConfig`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run directory (created; `config.json`, metrics, plots, model and checkpoints go here).
    pub out: PathBuf,
    /// Continue from the checkpoint in `out` instead of starting afresh.
    pub resume: bool,
    /// Stop after this epoch (as if interrupted); the checkpoint stays resumable.
    pub stop_after: Option<usize>,
    /// Progress display.
    pub progress: ProgressMode,
    /// The backend (recorded in the checkpoint and the summary).
    pub backend: BackendKind,
}

/// The checkpoint pointer, `checkpoint.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Last completed epoch.
    pub epoch: usize,
    /// Directory (inside the run directory) holding `model.bpk`, `optimizer.bpk`, `history.txt`.
    pub dir: String,
    /// The run's seed.
    pub seed: u64,
    /// Optimizer steps taken so far.
    pub steps: usize,
    /// Backend that wrote it.
    pub backend: BackendKind,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// All epochs' metrics, including those before a resume.
    pub history: Vec<EpochMetrics>,
    /// Final held-out evaluation.
    pub evaluation: Evaluation,
    /// The run directory.
    pub out: PathBuf,
}

/// Loss, accuracy and confusion matrix on a split.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

/// Builds the optimizer of `cfg` (Adam's ε is 1e-7, as in Keras; burn's default is 1e-5).
pub fn build_optimizer(cfg: &OptimizerConfig) -> ModuleOptimizer {
    let wd = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    match cfg.kind {
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-7)
            .with_weight_decay(wd)
            .init(),
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_epsilon(1e-7)
            .with_weight_decay(cfg.weight_decay as f32)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(cfg.momentum)
                    .with_dampening(0.0),
            ))
            .with_weight_decay(wd)
            .init(),
    }
}

/// Builds the learning-rate scheduler for `total_steps` optimizer steps of `steps_per_epoch`.
pub fn build_scheduler(cfg: &TrainConfig, steps_per_epoch: usize) -> Result<ModuleLrScheduler> {
    let lr = cfg.optimizer.lr;
    let total = (cfg.epochs * steps_per_epoch).max(1);
    match &cfg.schedule {
        Schedule::Constant => Ok(ModuleLrScheduler::from(ConstantLr::from(lr))),
        Schedule::Step {
            every_epochs,
            gamma,
        } => StepLrSchedulerConfig::new(lr, every_epochs * steps_per_epoch)
            .with_gamma(*gamma)
            .init()
            .map_err(|e| Error::setting("schedule", e)),
        Schedule::Cosine { min_lr } => CosineAnnealingLrSchedulerConfig::new(lr, total)
            .with_min_lr(*min_lr)
            .init()
            .map_err(|e| Error::setting("schedule", e)),
    }
}

fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(epoch as u64 * 1_442_695_040_888_963_407 + 1)
}

/// Cross-entropy, accuracy and confusion matrix of `model` on `split`, in batches.
pub fn evaluate(model: &Cnn, split: &MnistSplit, device: &Device, batch_size: usize) -> Evaluation {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let n = split.len();
    let classes = model
        .classifier
        .layers
        .last()
        .map(|l| l.weight.dims()[1])
        .unwrap_or(10);
    let mut confusion = vec![vec![0u64; classes]; classes];
    let mut loss_sum = 0.0;
    let mut correct = 0u64;
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let b = split.batch(chunk, device, None);
        let logits = model.forward(b.images);
        let loss = loss_fn.forward(logits.clone(), b.labels);
        loss_sum += loss.into_scalar::<f64>() * chunk.len() as f64;
        let preds: Vec<i64> = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap_or_default();
        for (&i, &p) in chunk.iter().zip(&preds) {
            let t = split.labels[i] as usize;
            let p = (p.max(0) as usize).min(classes - 1);
            confusion[t][p] += 1;
            correct += (t == p) as u64;
        }
    }
    Evaluation {
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        confusion,
    }
}

fn save_module(model: &Cnn, path: &Path) -> Result<()> {
    let tmp = path.with_extension("bpk.tmp");
    model.clone().save_file(&tmp).map_err(|e| Error::Record {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    sync_file(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Loads a model for `config` from a burnpack file; a wrong or corrupt file is an error.
pub fn load_model(config: &CnnConfig, path: &Path, device: &Device) -> Result<Cnn> {
    if !path.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found"),
        ));
    }
    config
        .init(device)?
        .try_load_file(path)
        .map_err(|e| Error::Record {
            path: path.to_path_buf(),
            message: format!("cannot load model: {e}"),
        })
}

/// Finds a model and its config: `path` is a run directory or a `.bpk` file with `config.json`
/// beside it.
pub fn locate_model(path: &Path) -> Result<(CnnConfig, PathBuf)> {
    let (dir, model) = if path.is_dir() {
        (path.to_path_buf(), path.join(files::MODEL))
    } else {
        (
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            path.to_path_buf(),
        )
    };
    let cfg: TrainConfig = read_json(&dir.join(files::CONFIG))?;
    Ok((cfg.model, model))
}

fn write_checkpoint(
    out: &Path,
    model: &Cnn,
    optim: &ModuleOptimizer,
    history: &[EpochMetrics],
    info: &CheckpointInfo,
) -> Result<()> {
    let tmp = out.join(format!(".{}.tmp", info.dir));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    model
        .clone()
        .save_file(tmp.join("model.bpk"))
        .map_err(|e| Error::Record {
            path: tmp.join("model.bpk"),
            message: e.to_string(),
        })?;
    optim
        .save(tmp.join("optimizer.bpk"))
        .map_err(|e| Error::Record {
            path: tmp.join("optimizer.bpk"),
            message: e.to_string(),
        })?;
    write_atomic(
        &tmp.join("history.txt"),
        metrics::to_exact(history).as_bytes(),
    )?;
    for f in ["model.bpk", "optimizer.bpk"] {
        sync_file(&tmp.join(f))?;
    }
    let dest = out.join(&info.dir);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    // The pointer is replaced atomically: until this rename the previous checkpoint stays valid.
    write_json(&out.join(files::CHECKPOINT), info)?;
    // Older checkpoints are no longer referenced.
    if let Ok(entries) = std::fs::read_dir(out) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("checkpoint-epoch-") && name != info.dir {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// Checks that `out` can be created and written, before any training starts.
pub fn prepare_out_dir(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_atomic(&out.join(".write-test"), b"ok")?;
    std::fs::remove_file(out.join(".write-test")).map_err(|e| Error::io(out, e))
}

/// Trains `cfg` on `data` on `device` (autodiff is added here), writing everything into
/// `opts.out`. With `opts.resume`, continues from the checkpoint there.
pub fn train(
    cfg: &TrainConfig,
    data: &Mnist,
    device: &Device,
    opts: &RunOptions,
) -> Result<RunSummary> {
    cfg.validate()?;
    prepare_out_dir(&opts.out)?;
    let out = opts.out.as_path();
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
    let ad = device.clone().autodiff();
    let inner = device.clone();
    let steps_per_epoch = train_split.len().div_ceil(cfg.batch_size);
    let mut scheduler = build_scheduler(cfg, steps_per_epoch)?;

    let (mut model, mut optim, mut history, start_epoch, mut steps) = if opts.resume {
        let info: CheckpointInfo = read_json(&out.join(files::CHECKPOINT))?;
        let dir = out.join(&info.dir);
        let model = load_model(&cfg.model, &dir.join("model.bpk"), &ad)?;
        let optim = build_optimizer(&cfg.optimizer)
            .load(dir.join("optimizer.bpk"))
            .map_err(|e| Error::Record {
                path: dir.join("optimizer.bpk"),
                message: e.to_string(),
            })?;
        let hpath = dir.join("history.txt");
        let text = std::fs::read_to_string(&hpath).map_err(|e| Error::io(&hpath, e))?;
        let history = metrics::parse_exact(&hpath, &text)?;
        for _ in 0..info.steps {
            scheduler.step();
        }
        if info.seed != cfg.seed {
            return Err(Error::setting(
                "seed",
                format!(
                    "the checkpoint was written with seed {}, the config says {}",
                    info.seed, cfg.seed
                ),
            ));
        }
        (model, optim, history, info.epoch, info.steps)
    } else {
        ad.seed(cfg.seed);
        (
            cfg.model.init(&ad)?,
            build_optimizer(&cfg.optimizer),
            Vec::new(),
            0,
            0,
        )
    };
    write_json(&out.join(files::CONFIG), cfg)?;

    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let show_bars = opts.progress == ProgressMode::Auto && std::io::stdout().is_terminal();
    let prior_elapsed = history.last().map(|m| m.elapsed_seconds).unwrap_or(0.0);
    let run_start = Instant::now();
    let last_epoch = opts.stop_after.map_or(cfg.epochs, |s| s.min(cfg.epochs));
    let mut lr = cfg.optimizer.lr;
    let mut last_eval: Option<Evaluation> = None;

    for epoch in start_epoch..last_epoch {
        let epoch_start = Instant::now();
        ad.seed(epoch_seed(cfg.seed, epoch));
        let mut aug_rng = ChaCha8Rng::seed_from_u64(epoch_seed(cfg.seed ^ 0xA5A5, epoch));
        let order = epoch_order(train_split.len(), cfg.seed, epoch);
        let bar = if show_bars {
            let bar = ProgressBar::new(steps_per_epoch as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{}/{}", epoch + 1, cfg.epochs));
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut loss_sum = 0.0;
        let mut correct = 0i64;
        let mut seen = 0usize;
        for chunk in order.chunks(cfg.batch_size) {
            let augment = (cfg.augment_shift > 0).then_some((&mut aug_rng, cfg.augment_shift));
            let batch = train_split.batch(chunk, &ad, augment);
            let logits = model.forward(batch.images);
            let loss = loss_fn.forward(logits.clone(), batch.labels.clone());
            let hits: Tensor<1, Int> = logits
                .detach()
                .argmax(1)
                .flatten::<1>(0, 1)
                .equal(batch.labels)
                .int()
                .sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let step_lr = scheduler.step();
            lr = step_lr.base();
            model = optim.step(step_lr, model, grads);
            steps += 1;
            loss_sum += loss.into_scalar::<f64>() * chunk.len() as f64;
            correct += hits.into_scalar::<i64>();
            seen += chunk.len();
            let secs = epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} img/s",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
                seen as f64 / secs
            ));
            bar.inc(1);
        }
        let train_secs = epoch_start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let valid = model.valid();
        let eval = evaluate(&valid, &data.test, &inner, 1000);
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            test_loss: eval.loss,
            test_accuracy: eval.accuracy,
            lr,
            images_per_sec: seen as f64 / train_secs,
            epoch_seconds: epoch_start.elapsed().as_secs_f64(),
            elapsed_seconds: prior_elapsed + run_start.elapsed().as_secs_f64(),
        };
        if opts.progress != ProgressMode::Quiet {
            println!("{}", m.line(cfg.epochs));
        }
        history.push(m);
        write_history(out, &history)?;
        let info = CheckpointInfo {
            epoch: epoch + 1,
            dir: format!("checkpoint-epoch-{:03}", epoch + 1),
            seed: cfg.seed,
            steps,
            backend: opts.backend,
        };
        write_checkpoint(out, &valid, &optim, &history, &info)?;
        last_eval = Some(eval);
    }

    let valid = model.valid();
    save_module(&valid, &out.join(files::MODEL))?;
    // The last epoch's evaluation is of this very model; evaluate only when no epoch ran (a
    // resume of a finished run).
    let evaluation = match last_eval {
        Some(e) => e,
        None => evaluate(&valid, &data.test, &inner, 1000),
    };
    write_confusion(&out.join("confusion.csv"), &evaluation.confusion)?;
    plot::plot_history(out, &history)?;
    plot::plot_confusion(&out.join("confusion.png"), &evaluation.confusion)?;
    Ok(RunSummary {
        history,
        evaluation,
        out: out.to_path_buf(),
    })
}
