//! A trained model, found and loaded: what `eval`, `predict`, `explain` and `serve` start from.
//! The run directory (or a `model.bpk` with its `config.json` beside it) is located, the
//! device chosen, and the model loaded onto it, in one call.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::app::data::DataInfo;
use crate::app::train::{RunDir, load_model, locate_model};
use crate::backend::{BackendKind, DeviceChoice, select_device};
use crate::error::Result;
use crate::model::{Cnn, CnnConfig};

/// A trained model on its device.
///
/// # Examples
/// ```no_run
/// use netcalc::app::predict::{class_probabilities, load_image, top_k};
/// use netcalc::app::session::TrainedModel;
/// // a run directory written by `netcalc train` (or `app::train::train`), on the fastest backend
/// let m = TrainedModel::open("runs/demo".as_ref(), None)?;
/// // any PNG or JPEG, read as the model's training images were (photos of digits too)
/// let image = load_image("digit.png".as_ref(), &m.info)?;
/// let probs = class_probabilities(&m.model, &m.info, &[image], &m.device)?;
/// let (class, p) = top_k(&probs[0], 1)[0];
/// println!("{} ({:.1} %)", m.info.class_name(class), 100.0 * p);
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Debug)]
pub struct TrainedModel {
    /// Its configuration (from the run's `config.json`).
    pub config: CnnConfig,
    /// Its classes, input and normalisation (from the run's `data.json`).
    pub info: DataInfo,
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
        let info = RunDir::open(&run_dir)?.read_data_info()?;
        crate::app::train::check_model_fits_data(&config, &info)?;
        Ok(Self {
            config,
            info,
            model,
            path: model_path,
            run_dir,
            backend,
            device,
        })
    }
}
