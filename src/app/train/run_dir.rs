//! A run directory and every file in it: the one place that knows their names and writes them
//! (atomically: a crash leaves the previous version of each file, and the previous checkpoint).
//!
//! ```text
//! <run>/config.json            the full TrainConfig (`--config` and `--resume` read it back)
//! <run>/data.json              the class names, input shape, normalisation, preprocessing
//! <run>/source.json            where the data came from, its options and fingerprint
//! <run>/metrics.csv, .json     one row per epoch
//! <run>/checkpoint.json        pointer to the latest complete checkpoint
//! <run>/checkpoint-epoch-NNN/  model.bpk, optimizer.bpk, history.txt (exact floats)
//! <run>/model.bpk              the final model (burnpack)
//! <run>/confusion.csv, confusion.png, loss.png, accuracy.png
//! ```

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::metrics::{self, EpochMetrics};
use super::{Evaluation, TrainConfig, build_optimizer, plot};
use crate::app::data::{DataInfo, DataRecord};
use crate::app::fsio::{read_json, sync_dir, sync_file, write_atomic, write_json};
use crate::backend::{BackendKind, backend_of};
use crate::error::{Error, Result};
use crate::model::{Cnn, CnnConfig};

/// The checkpoint pointer, `checkpoint.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// When the run was interrupted inside epoch `epoch + 1`: how far it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_epoch: Option<EpochProgress>,
    /// The processes that trained it (`mpirun -np N`; 1 alone, and for checkpoints that do
    /// not say). A resume needs the same number.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub ranks: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// How far an interrupted epoch got: the batches done and the running totals of its metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochProgress {
    /// Batches completed in the epoch.
    pub batches: usize,
    /// Images trained on in them.
    pub seen: usize,
    /// Of which classified correctly.
    pub correct: i64,
    /// The sum of the batches' losses (weighted by batch size), as `f64::to_bits`: exact
    /// through JSON.
    pub loss_sum_bits: u64,
    /// Training time so far, seconds.
    pub seconds: f64,
}

/// What a checkpoint holds, loaded.
pub struct Checkpoint {
    /// The pointer it was found through.
    pub info: CheckpointInfo,
    /// The model after `info.epoch` epochs.
    pub model: Cnn,
    /// The optimizer's state (Adam's moments, …).
    pub optimizer: ModuleOptimizer,
    /// The metrics of every epoch so far, exactly as they were computed.
    pub history: Vec<EpochMetrics>,
}

/// A run directory (see the [module docs](self) for its files).
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The full training configuration.
    pub const CONFIG: &'static str = "config.json";
    /// What the model knows of its data: class names, input shape, normalisation.
    pub const DATA: &'static str = "data.json";
    /// Where the data came from ([`DataRecord`]): `--resume` reloads it from here.
    pub const SOURCE: &'static str = "source.json";
    /// Per-epoch metrics as CSV.
    pub const METRICS_CSV: &'static str = "metrics.csv";
    /// Per-epoch metrics as JSON.
    pub const METRICS_JSON: &'static str = "metrics.json";
    /// The final model, burn's burnpack format.
    pub const MODEL: &'static str = "model.bpk";
    /// Pointer to the latest complete checkpoint.
    pub const CHECKPOINT: &'static str = "checkpoint.json";
    /// Final confusion matrix, CSV.
    pub const CONFUSION_CSV: &'static str = "confusion.csv";
    /// Final confusion matrix, PNG.
    pub const CONFUSION_PNG: &'static str = "confusion.png";
    /// Loss curves, PNG.
    pub const LOSS_PNG: &'static str = "loss.png";
    /// Accuracy curves, PNG.
    pub const ACCURACY_PNG: &'static str = "accuracy.png";
    /// Inside a checkpoint directory: the model.
    const CKPT_MODEL: &'static str = "model.bpk";
    /// Inside a checkpoint directory: the optimizer state.
    const CKPT_OPTIMIZER: &'static str = "optimizer.bpk";
    /// Inside a checkpoint directory: the exact metrics history.
    const CKPT_HISTORY: &'static str = "history.txt";
    /// Prefix of checkpoint directory names.
    const CKPT_PREFIX: &'static str = "checkpoint-epoch-";

    /// Creates the directory (and its parents) and checks that files can be written in it.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let root = path.into();
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let probe = root.join(".write-test");
        write_atomic(&probe, b"ok")?;
        std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))?;
        Ok(Self { root })
    }

    /// Checks, without creating anything, that [`RunDir::create`] can make `path`: its nearest
    /// existing ancestor is a directory that accepts new files. Lets a program refuse an
    /// unwritable `--out` before it loads (or downloads) any data.
    pub fn check_can_create(path: &Path) -> Result<()> {
        let mut dir = path;
        while !dir.exists() {
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => dir = p,
                _ => return Ok(()),
            }
        }
        if !dir.is_dir() {
            return Err(Error::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        tempfile::tempfile_in(dir)
            .map(drop)
            .map_err(|e| Error::io(dir, e))
    }

    /// The run directory that another process writes (rank 0 of a distributed run, for the
    /// other ranks): nothing is created or checked.
    pub fn written_elsewhere(path: impl Into<PathBuf>) -> Self {
        Self { root: path.into() }
    }

    /// An existing run directory.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let root = path.into();
        if !root.is_dir() {
            return Err(Error::io(
                &root,
                std::io::Error::new(std::io::ErrorKind::NotFound, "run directory not found"),
            ));
        }
        Ok(Self { root })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The path of one of the run's files (one of the constants above).
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes `config.json`.
    pub fn write_config(&self, cfg: &TrainConfig) -> Result<()> {
        write_json(&self.file(Self::CONFIG), cfg)
    }

    /// Reads `config.json` (unknown fields are errors, named with their path).
    pub fn read_config(&self) -> Result<TrainConfig> {
        read_json(&self.file(Self::CONFIG))
    }

    /// Writes `data.json`.
    pub fn write_data_info(&self, info: &DataInfo) -> Result<()> {
        write_json(&self.file(Self::DATA), info)
    }

    /// Reads `data.json`; a run written before it existed holds MNIST ([`DataInfo::mnist`]).
    /// A file that is there but wrong is an error naming the field.
    pub fn read_data_info(&self) -> Result<DataInfo> {
        let path = self.file(Self::DATA);
        if !path.exists() {
            return Ok(DataInfo::mnist());
        }
        let info: DataInfo = read_json(&path)?;
        info.check()?;
        Ok(info)
    }

    /// Writes where the data came from (`source.json`).
    pub fn write_data_record(&self, record: &DataRecord) -> Result<()> {
        write_json(&self.file(Self::SOURCE), record)
    }

    /// Where the data came from, when the run recorded it (runs of earlier versions did not).
    pub fn read_data_record(&self) -> Result<Option<DataRecord>> {
        let path = self.file(Self::SOURCE);
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Writes `metrics.csv` and `metrics.json`.
    pub fn write_history(&self, history: &[EpochMetrics]) -> Result<()> {
        write_atomic(
            &self.file(Self::METRICS_CSV),
            metrics::to_csv(history).as_bytes(),
        )?;
        write_json(&self.file(Self::METRICS_JSON), &history)
    }

    /// Writes the final model, `model.bpk`, atomically.
    pub fn save_model(&self, model: &Cnn) -> Result<()> {
        let path = self.file(Self::MODEL);
        let tmp = self.file(".model.bpk.tmp");
        save_model_file(model, &tmp)?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.root)
    }

    /// Writes the final evaluation: `confusion.csv`, `confusion.png` (rows and columns named
    /// by `classes`), `loss.png`, `accuracy.png`.
    pub fn write_report(
        &self,
        history: &[EpochMetrics],
        evaluation: &Evaluation,
        classes: &[String],
    ) -> Result<()> {
        write_atomic(
            &self.file(Self::CONFUSION_CSV),
            metrics::confusion_csv(&evaluation.confusion, classes).as_bytes(),
        )?;
        plot::plot_history(
            &self.file(Self::LOSS_PNG),
            &self.file(Self::ACCURACY_PNG),
            history,
        )?;
        plot::plot_confusion(
            &self.file(Self::CONFUSION_PNG),
            &evaluation.confusion,
            classes,
        )
    }

    /// Whether the run has a complete checkpoint to resume from.
    pub fn has_checkpoint(&self) -> bool {
        self.file(Self::CHECKPOINT).is_file()
    }

    /// Writes a checkpoint: its files go into a temporary directory, synced, renamed into
    /// place, then `checkpoint.json` is replaced atomically. Until that last rename the previous
    /// checkpoint stays the one `checkpoint.json` points to, so a crash at any moment, or a
    /// failed write, leaves it loadable. Older checkpoint directories are removed afterwards.
    pub fn write_checkpoint(
        &self,
        model: &Cnn,
        optimizer: &ModuleOptimizer,
        history: &[EpochMetrics],
        info: &CheckpointInfo,
    ) -> Result<()> {
        let tmp = self.file(&format!(".{}.tmp", info.dir));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let o = tmp.join(Self::CKPT_OPTIMIZER);
        save_model_file(model, &tmp.join(Self::CKPT_MODEL))?;
        optimizer
            .save(&o)
            .map_err(|e| record_error(&o, "cannot save the optimizer state", e))?;
        sync_file(&o)?;
        write_atomic(
            &tmp.join(Self::CKPT_HISTORY),
            metrics::to_exact(history).as_bytes(),
        )?;
        sync_dir(&tmp)?;
        let dest = self.file(&info.dir);
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
        }
        std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        sync_dir(&self.root)?;
        // The pointer is replaced atomically: until this rename the previous checkpoint stays
        // the valid one.
        write_json(&self.file(Self::CHECKPOINT), info)?;
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(Self::CKPT_PREFIX) && name != info.dir {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    /// The directory name of the checkpoint after `epoch` epochs (and, for an interrupted
    /// epoch, after its `in_epoch.batches` batches).
    pub fn checkpoint_name(epoch: usize, in_epoch: Option<&EpochProgress>) -> String {
        match in_epoch {
            None => format!("{}{epoch:03}", Self::CKPT_PREFIX),
            Some(p) => format!("{}{epoch:03}-batch-{:05}", Self::CKPT_PREFIX, p.batches),
        }
    }

    /// Loads the latest checkpoint for `cfg`, the model onto `device`.
    ///
    /// burn's `ModuleOptimizer` materialises loaded state on `Device::default()` (the first
    /// backend compiled in, GPUs first, unless `BURN_DEVICE` names one) and moves it to each
    /// parameter's device at the next step, so the values are right whatever that device is.
    /// What this checks is that the default device can hold them: with wgpu compiled in and no
    /// wgpu adapter on the machine, loading there would fail inside burn, so that case is an
    /// error that says to set `BURN_DEVICE` to the training backend.
    pub fn read_checkpoint(&self, cfg: &TrainConfig, device: &Device) -> Result<Checkpoint> {
        let info: CheckpointInfo = read_json(&self.file(Self::CHECKPOINT))?;
        if info.seed != cfg.seed {
            return Err(Error::setting(
                "seed",
                format!(
                    "the checkpoint was written with seed {}, the config says {}",
                    info.seed, cfg.seed
                ),
            ));
        }
        let dir = self.file(&info.dir);
        let model = load_model(&cfg.model, &dir.join(Self::CKPT_MODEL), device)?;
        check_default_device_for_state(device)?;
        let opath = dir.join(Self::CKPT_OPTIMIZER);
        let optimizer = build_optimizer(&cfg.optimizer)
            .load(&opath)
            .map_err(|e| record_error(&opath, "cannot load the optimizer state", e))?;
        let hpath = dir.join(Self::CKPT_HISTORY);
        let text = std::fs::read_to_string(&hpath).map_err(|e| Error::io(&hpath, e))?;
        let history = metrics::parse_exact(&hpath, &text)?;
        Ok(Checkpoint {
            info,
            model,
            optimizer,
            history,
        })
    }
}

/// Refuses to load optimizer state where burn would put it on a wgpu device that cannot start.
fn check_default_device_for_state(device: &Device) -> Result<()> {
    #[cfg(feature = "wgpu")]
    {
        let default = backend_of(&Device::default());
        if default == Some(BackendKind::Wgpu)
            && backend_of(device) != Some(BackendKind::Wgpu)
            && crate::backend::wgpu_adapters().is_empty()
        {
            let name = backend_of(device).map_or("flex", BackendKind::name);
            return Err(Error::setting(
                "BURN_DEVICE",
                format!(
                    "burn loads optimizer state onto its default device, wgpu, and this machine has no wgpu adapter; set BURN_DEVICE={name} before starting the program"
                ),
            ));
        }
    }
    #[cfg(not(feature = "wgpu"))]
    let _ = (device, backend_of);
    Ok(())
}

/// Writes `model` to `path` (burnpack) and syncs it to disk.
fn save_model_file(model: &Cnn, path: &Path) -> Result<()> {
    model
        .clone()
        .save_file(path)
        .map_err(|e| record_error(path, "cannot save the model", e))?;
    sync_file(path)
}

fn record_error(
    path: &Path,
    message: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Record {
        path: path.to_path_buf(),
        message: message.into(),
        source: Box::new(e),
    }
}

/// Loads a model for `config` from a burnpack file; a missing, corrupt or foreign file (another
/// architecture) is an error naming the file.
///
/// The file is read whole, once: burn's `try_load_file` reads each tensor from the file's path
/// at its first use, so a model file replaced (a run trained again into the same directory) or
/// removed after loading would give another model's weights, or a panic, later.
pub fn load_model(config: &CnnConfig, path: &Path, device: &Device) -> Result<Cnn> {
    if !path.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| record_error(path, "cannot load the model", e))?;
    config
        .init(device)?
        .try_load_record(record)
        .map_err(|e| record_error(path, "cannot load the model", e))
}

/// Finds a model and its config: `path` is a run directory or a `.bpk` file with the run's
/// `config.json` beside it.
pub fn locate_model(path: &Path) -> Result<(CnnConfig, PathBuf)> {
    let (dir, model) = if path.is_dir() {
        (path.to_path_buf(), path.join(RunDir::MODEL))
    } else {
        (
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            path.to_path_buf(),
        )
    };
    let cfg = RunDir { root: dir }.read_config()?;
    Ok((cfg.model, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Tensor, TensorData};

    fn outputs(model: &Cnn, device: &Device) -> Vec<f32> {
        let x = Tensor::<4>::from_data(TensorData::new(vec![0.5f32; 784], [1, 1, 28, 28]), device);
        model
            .forward(x)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn a_loaded_model_keeps_its_weights_when_its_file_is_replaced_or_removed() {
        let device = crate::testing::test_device();
        let cfg = CnnConfig::mlp();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bpk");
        device.seed(1);
        let a = cfg.init(&device).unwrap();
        save_model_file(&a, &path).unwrap();
        let loaded = load_model(&cfg, &path, &device).unwrap();
        // another model written over the file, then the file removed, before any use
        device.seed(2);
        let b = cfg.init(&device).unwrap();
        save_model_file(&b, &path).unwrap();
        assert_ne!(outputs(&a, &device), outputs(&b, &device));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(outputs(&loaded, &device), outputs(&a, &device));
    }
}
