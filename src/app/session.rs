//! A trained model, found and loaded: what `eval`, `predict`, `explain` and `serve` start from.
//! The run directory (or a `model.bpk` with its `config.json` beside it) is located, the
//! device chosen, and the model loaded onto it, in one call.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::app::train::{load_model, locate_model};
use crate::backend::{BackendKind, DeviceChoice, select_device};
use crate::error::Result;
use crate::model::{Cnn, CnnConfig};

/// A trained model on its device.
#[derive(Debug)]
pub struct TrainedModel {
    /// Its configuration (from the run's `config.json`).
    pub config: CnnConfig,
    /// The model, in inference mode.
    pub model: Cnn,
    /// The model file it was loaded from.
    pub path: PathBuf,
    /// The directory the run's other files are in.
    pub run_dir: PathBuf,
    /// The backend it runs on.
    pub backend: BackendKind,
    /// Its device.
    pub device: Device,
}

impl TrainedModel {
    /// Loads the model at `path` (a run directory, or a `.bpk` file with the run's
    /// `config.json` beside it) onto the device of `choice` ([`select_device`]).
    ///
    /// Errors name the file at fault: a missing directory or config, a corrupt model, a model
    /// of another architecture than its config.
    pub fn open(path: &Path, choice: Option<DeviceChoice>) -> Result<Self> {
        let (config, model_path) = locate_model(path)?;
        let (backend, device) = select_device(choice)?;
        let model = load_model(&config, &model_path, &device)?;
        let run_dir = model_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Ok(Self {
            config,
            model,
            path: model_path,
            run_dir,
            backend,
            device,
        })
    }
}
