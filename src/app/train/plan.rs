//! A training run's plan: what the command line asks for ([`TrainRequest`]) turned into what
//! to train ([`TrainPlan`]): the config (a preset fitted to the data, a config file, or a run's
//! own), the data loaded and checked against the model, the data's [`DataRecord`] and the run
//! directory. The one place these decisions are made, for the `netcalc` command and for any
//! program built on the library.

use std::path::{Path, PathBuf};

use crate::app::data::folder::{DEFAULT_MAX_MEMORY, FolderOptions};
use crate::app::data::record::absolute;
use crate::app::data::{
    DataInfo, DataOptions, DataRecord, DataSpec, Dataset, NamedDataset, RecordedSource,
};
use crate::app::fsio::read_json;
use crate::error::{Error, Result};
use crate::model::CnnConfig;

use super::{RunDir, TrainConfig, TrainOverrides};

/// The data flags of the command line: where the data is and what shapes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataChoice {
    /// A folder of images, one sub-folder per class, or a packed file of one (`--data`).
    pub folder: Option<PathBuf>,
    /// An IDX dataset by name (`--dataset`, default MNIST).
    pub dataset: Option<NamedDataset>,
    /// A directory of IDX files (`--data-dir`).
    pub data_dir: Option<PathBuf>,
    /// Never download (`--offline`).
    pub offline: bool,
    /// A folder without `train/` and `test/`: the share of each class held out.
    pub val_split: Option<f64>,
    /// The most bytes a folder's decoded images may take (default 4 GiB).
    pub max_memory: Option<u64>,
    /// Leave unreadable images out instead of stopping.
    pub skip_bad: bool,
    /// Decode a folder into memory for this run instead of reading its packed file.
    pub in_memory: bool,
    /// Progress bars while loading.
    pub progress: bool,
}

impl DataChoice {
    /// What to load; `seed` splits a folder without `train/` and `test/`.
    pub fn spec(&self, seed: u64) -> DataSpec {
        let dataset = self.dataset.unwrap_or(NamedDataset::Mnist);
        DataSpec {
            folder: self.folder.clone(),
            folder_options: FolderOptions {
                val_split: self.val_split,
                seed,
                max_memory: self.max_memory.unwrap_or(DEFAULT_MAX_MEMORY),
                skip_bad: self.skip_bad,
                progress: self.progress,
                in_memory: self.in_memory,
                ..FolderOptions::new([1, 28, 28])
            },
            idx: DataOptions {
                data_dir: self.data_dir.clone(),
                offline: self.offline,
                progress: self.progress,
                ..DataOptions::for_dataset(dataset)
            },
        }
    }

    /// Loads the data for a model of input `shape`; `warn` hears what the user should be
    /// told (a failed download that fell back to the sample).
    pub fn load(&self, shape: [usize; 3], seed: u64, warn: impl FnMut(&str)) -> Result<Dataset> {
        self.spec(seed).load(shape, warn)
    }

    /// Each of these flags that says something other than `record`, in words (empty when
    /// none does). `--offline` and `--progress` shape nothing and are never a contradiction.
    pub fn contradictions(&self, record: &DataRecord) -> Vec<String> {
        let mut out = Vec::new();
        let same_dir = |given: &Path, recorded: &Path| absolute(given) == recorded;
        if let Some(d) = &self.folder {
            match &record.source {
                RecordedSource::Folder { dir } if same_dir(d, dir) => {}
                RecordedSource::Pack { file } if same_dir(d, file) => {}
                _ => out.push(format!("--data {}", d.display())),
            }
        }
        if let Some(ds) = self.dataset {
            match &record.source {
                RecordedSource::Idx { dataset, .. } if *dataset == ds => {}
                RecordedSource::Bundled if ds == NamedDataset::Mnist => {}
                _ => out.push(format!("--dataset {ds}")),
            }
        }
        if let Some(d) = &self.data_dir {
            match &record.source {
                RecordedSource::Idx { dir, .. } if same_dir(d, dir) => {}
                _ => out.push(format!("--data-dir {}", d.display())),
            }
        }
        if let Some(v) = self.val_split
            && record.val_split != Some(v)
        {
            out.push(format!("--val-split {v}"));
        }
        if let Some(m) = self.max_memory
            && record.max_memory != m
        {
            out.push(format!("--max-memory {m}"));
        }
        if self.skip_bad && !record.skip_bad {
            out.push("--skip-bad".into());
        }
        out
    }
}

/// What the command line asks of a training run.
#[derive(Debug, Clone, Default)]
pub struct TrainRequest {
    /// Flags that change the config (`--epochs`, `--model`, …).
    pub overrides: TrainOverrides,
    /// `--input-shape`: the preset for images of this `[C, H, W]`.
    pub input_shape: Option<[usize; 3]>,
    /// `--config`: a training config file instead of the defaults.
    pub config: Option<PathBuf>,
    /// The data flags.
    pub data: DataChoice,
    /// `--out`: the run directory (default `runs/<model>-<unix time>`).
    pub out: Option<PathBuf>,
    /// `--resume`: continue the run in this directory.
    pub resume: Option<PathBuf>,
}

/// What to train, checked: nothing is written until [`super::train`] runs it.
#[derive(Debug, Clone)]
pub struct TrainPlan {
    /// The full config.
    pub config: TrainConfig,
    /// The data, loaded.
    pub data: Dataset,
    /// Where it came from, to be recorded in the run directory.
    pub record: DataRecord,
    /// The run directory.
    pub out: PathBuf,
    /// Whether the run continues from the checkpoint in `out`.
    pub resume: bool,
}

/// The run directory a new run gets by default: `runs/<model>-<unix time>`.
pub fn default_run_dir(model: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from(format!("runs/{model}-{secs}"))
}

/// Turns a [`TrainRequest`] into a [`TrainPlan`]:
/// - the config: a resumed run's own, a `--config` file, or the defaults, with the flags put
///   in; a preset (neither a file nor a resume) gets `--input-shape` and as many outputs as
///   the data has classes, while a config given in full is trained as it is;
/// - the data: for `--resume`, from the run directory's record alone (data flags that
///   contradict it, and data whose fingerprint has changed, are errors that say what
///   differs); else from the flags;
/// - checks: the model takes the data's images and predicts its classes, `--out` can be made
///   (before any data is loaded or downloaded).
///
/// `warn` hears what the user should be told.
pub fn plan(req: &TrainRequest, mut warn: impl FnMut(&str)) -> Result<TrainPlan> {
    let (cfg, record) = match (&req.resume, &req.config) {
        (Some(dir), _) => {
            let run = RunDir::open(dir)?;
            (run.read_config()?, run.read_data_record()?)
        }
        (None, Some(path)) => (read_json::<TrainConfig>(path)?, None),
        (None, None) => (TrainConfig::default(), None),
    };
    if let (Some(rec), Some(limit)) = (&record, req.overrides.limit)
        && rec.limit != Some(limit)
    {
        return Err(resume_refused(&[format!("--limit {limit}")], rec));
    }
    let mut cfg = cfg.with_overrides(&req.overrides)?;
    let preset = req.config.is_none() && req.resume.is_none();
    let packed_shape = match (&req.data.folder, &record) {
        // a packed file knows its images: a preset takes them without --input-shape
        (Some(file), None) if preset && req.input_shape.is_none() && file.is_file() => {
            Some(crate::app::data::pack::header(file)?.shape)
        }
        _ => None,
    };
    if let Some(shape) = req.input_shape.or(packed_shape) {
        cfg.model = cfg.model.for_data(shape, cfg.model.num_classes())?;
    }
    let out = match (&req.resume, &req.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(out)) => out.clone(),
        (None, None) => default_run_dir(&cfg.model.name),
    };
    if req.resume.is_none() {
        RunDir::check_can_create(&out).map_err(|e| {
            Error::setting("out", format!("{} is not writable: {e}", out.display()))
        })?;
    }
    let shape = cfg.model.features.input;
    let (data, record) = match record {
        Some(rec) => {
            let differ = req.data.contradictions(&rec);
            if !differ.is_empty() {
                return Err(resume_refused(&differ, &rec));
            }
            (rec.load(shape, cfg.seed, req.data.progress)?, rec)
        }
        None => {
            let spec = req.data.spec(cfg.seed);
            if let Some(info) = spec.known_info() {
                if preset {
                    cfg.model = cfg.model.for_data(shape, info.classes.len())?;
                }
                check_model_fits_data(&cfg.model, &info)?;
            }
            let data = spec.load(cfg.model.features.input, &mut warn)?;
            let record = DataRecord::of(
                &data,
                &spec.folder_options,
                cfg.limit,
                req.data.data_dir.is_some(),
            )?;
            (data, record)
        }
    };
    if preset && data.info.classes.len() != cfg.model.num_classes() {
        cfg.model = cfg
            .model
            .for_data(cfg.model.features.input, data.info.classes.len())?;
    }
    check_model_fits_data(&cfg.model, &data.info)?;
    Ok(TrainPlan {
        config: cfg,
        data,
        record,
        out,
        resume: req.resume.is_some(),
    })
}

fn resume_refused(flags: &[String], rec: &DataRecord) -> Error {
    Error::setting(
        "resume",
        format!(
            "{} contradicts the run's recorded data, {}{}; leave the data flags out to train on what the run recorded",
            flags.join(", "),
            rec.describe(),
            match (rec.val_split, rec.limit) {
                (Some(v), Some(l)) => format!(", --val-split {v}, --limit {l}"),
                (Some(v), None) => format!(", --val-split {v}"),
                (None, Some(l)) => format!(", --limit {l}"),
                (None, None) => String::new(),
            }
        ),
    )
}

/// Checks that a model takes the data's images and predicts its classes, naming the field at
/// fault (`model.features.input`, `model.classifier.n_neurons[1]`). Run before anything is
/// written.
pub fn check_model_fits_data(model: &CnnConfig, data: &DataInfo) -> Result<()> {
    let shape = data.shape;
    if model.features.input != shape {
        return Err(Error::config(
            "model.features.input",
            format!(
                "is {:?} but the data's images are {shape:?} ([channels, height, width])",
                model.features.input
            ),
        ));
    }
    let (classes, wanted) = (model.num_classes(), data.classes.len());
    if classes != wanted {
        let last = model.classifier.n_neurons.len().saturating_sub(1);
        return Err(Error::config(
            format!("model.classifier.n_neurons[{last}]"),
            format!("the model has {classes} output classes but the data has {wanted}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::train::{ProgressMode, RunOptions, train};
    use crate::model::ModelPreset;

    fn write_folder(root: &Path) {
        for (c, class) in ["circle", "square"].iter().enumerate() {
            for i in 0..6u8 {
                let img = image::GrayImage::from_fn(8, 8, |x, y| {
                    let v = if c == 0 { x + y } else { x * y };
                    image::Luma([(v as u8).wrapping_mul(9).wrapping_add(i * 7)])
                });
                let p = root.join(format!("{class}/{i}.png"));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                img.save(&p).unwrap();
            }
        }
    }

    #[test]
    fn a_preset_fits_the_folder_and_a_resume_needs_no_data_flag() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("shapes");
        write_folder(&data_dir);
        let req = TrainRequest {
            overrides: TrainOverrides {
                model: Some(ModelPreset::Mlp),
                epochs: Some(1),
                ..TrainOverrides::default()
            },
            input_shape: Some([1, 8, 8]),
            data: DataChoice {
                folder: Some(data_dir.clone()),
                val_split: Some(0.5),
                in_memory: true,
                ..DataChoice::default()
            },
            out: Some(dir.path().join("run")),
            ..TrainRequest::default()
        };
        let p = plan(&req, |_| {}).unwrap();
        assert_eq!(p.config.model.features.input, [1, 8, 8]);
        assert_eq!(p.config.model.num_classes(), 2);
        assert_eq!(p.data.info.classes, ["circle", "square"]);
        assert_eq!(
            p.record.source,
            RecordedSource::Folder {
                dir: absolute(&data_dir)
            }
        );
        assert_eq!(
            (p.record.val_split, p.record.fingerprint.files),
            (Some(0.5), 12)
        );
        let (backend, device) = crate::select_device(Some(crate::backend::DeviceChoice::Flex))
            .or_else(|_| crate::select_device(None))
            .unwrap();
        let opts = RunOptions {
            out: p.out.clone(),
            resume: false,
            stop_after: None,
            progress: ProgressMode::Quiet,
            backend,
            interrupt: None,
            data_record: Some(p.record.clone()),
        };
        {
            // (a training run flushes subnormals process-wide while it lasts)
            let _serial = crate::app::train::denormals::TEST_LOCK
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            train(&p.config, &p.data, &device, &opts).unwrap();
        }

        // --resume alone: the folder, its split and the model come from the run directory
        let resume = TrainRequest {
            resume: Some(p.out.clone()),
            ..TrainRequest::default()
        };
        let r = plan(&resume, |_| {}).unwrap();
        assert!(r.resume);
        assert_eq!(r.config, p.config);
        assert_eq!(r.record, p.record);
        assert_eq!(r.data.train, p.data.train);
        assert_eq!(r.data.test, p.data.test);

        // the same flags again are fine; other ones are refused, naming them
        let same = TrainRequest {
            data: DataChoice {
                folder: Some(data_dir.clone()),
                val_split: Some(0.5),
                in_memory: true,
                ..DataChoice::default()
            },
            ..resume.clone()
        };
        assert!(plan(&same, |_| {}).is_ok());
        let other = TrainRequest {
            data: DataChoice {
                val_split: Some(0.25),
                dataset: Some(NamedDataset::FashionMnist),
                ..DataChoice::default()
            },
            ..resume.clone()
        };
        let e = plan(&other, |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("--dataset fashion-mnist, --val-split 0.25 contradicts the run's recorded data, the image folder"),
            "{e}"
        );

        // the folder changed since: refused, saying how
        std::fs::remove_file(data_dir.join("square/5.png")).unwrap();
        let e = plan(&resume, |_| {}).unwrap_err().to_string();
        assert!(e.contains("12 files then, 11 now"), "{e}");
    }

    #[test]
    fn the_bundled_sample_is_recorded_and_an_unwritable_out_is_refused_first() {
        let dir = tempfile::tempdir().unwrap();
        let req = TrainRequest {
            data: DataChoice {
                offline: true,
                data_dir: None,
                ..DataChoice::default()
            },
            out: Some(dir.path().join("r")),
            ..TrainRequest::default()
        };
        // with $NETCALC_MNIST_DIR unset, offline MNIST is the bundled sample (or the cache)
        if std::env::var_os(crate::app::data::DATA_DIR_ENV).is_none() {
            let p = plan(&req, |_| {}).unwrap();
            assert!(matches!(
                p.record.source,
                RecordedSource::Bundled | RecordedSource::Idx { .. }
            ));
            assert_eq!(p.config.model.num_classes(), 10);
        }
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let bad = TrainRequest {
            out: Some(file.join("run")),
            ..req
        };
        let e = plan(&bad, |_| {}).unwrap_err().to_string();
        assert!(e.contains("is not writable"), "{e}");
    }
}
