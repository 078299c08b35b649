//! Training configuration: everything needed to reproduce a run, saved as `config.json`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{CnnConfig, ModelPreset};

/// The optimizer (burn's implementations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (β = 0.9, 0.999; ε = 1e-7 as in Keras, not burn's default 1e-5).
    Adam,
    /// AdamW with decoupled weight decay.
    #[value(name = "adamw")]
    AdamW,
    /// SGD with momentum.
    Sgd,
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "adam" => Ok(Self::Adam),
            "adamw" => Ok(Self::AdamW),
            "sgd" => Ok(Self::Sgd),
            _ => Err(Error::setting(
                "optimizer",
                format!("unknown optimizer `{s}`; expected adam, adamw or sgd"),
            )),
        }
    }
}

/// Optimizer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// Weight decay (AdamW: decoupled; SGD: L2); 0 = none.
    #[serde(default)]
    pub weight_decay: f64,
    /// SGD momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
}

fn default_momentum() -> f64 {
    0.9
}

/// Learning-rate schedule over the whole run (burn's schedulers, stepped once per batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    /// The peak rate throughout.
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        /// Epochs between decays.
        every_epochs: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// Cosine annealing from the peak rate to `min_lr` over the run.
    Cosine {
        /// Final learning rate.
        min_lr: f64,
    },
}

/// A learning-rate schedule by name, with the settings [`TrainConfig`] gives it by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleKind {
    /// Cosine decay to `min(1e-5, lr)`.
    Cosine,
    /// A tenth every third of the epochs.
    Step,
    /// The peak rate throughout.
    Constant,
}

impl ScheduleKind {
    /// The schedule for a run of `epochs` at peak rate `lr`.
    pub fn schedule(self, lr: f64, epochs: usize) -> Schedule {
        match self {
            ScheduleKind::Cosine => Schedule::Cosine {
                min_lr: 1e-5f64.min(lr),
            },
            ScheduleKind::Step => Schedule::Step {
                every_epochs: (epochs / 3).max(1),
                gamma: 0.1,
            },
            ScheduleKind::Constant => Schedule::Constant,
        }
    }
}

/// Settings given on the command line, each replacing a config's own when present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainOverrides {
    /// A model preset instead of the config's model.
    pub model: Option<ModelPreset>,
    /// Passes over the training data.
    pub epochs: Option<usize>,
    /// Images per step.
    pub batch_size: Option<usize>,
    /// Peak learning rate (a cosine schedule's floor is kept at or below it).
    pub lr: Option<f64>,
    /// The optimizer.
    pub optimizer: Option<OptimizerKind>,
    /// The learning-rate schedule, with its default settings for the run's rate and epochs.
    pub schedule: Option<ScheduleKind>,
    /// Random shifts of up to this many pixels.
    pub augment_shift: Option<usize>,
    /// The seed.
    pub seed: Option<u64>,
    /// Only the first N training images.
    pub limit: Option<usize>,
}

/// A full training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The model.
    pub model: CnnConfig,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Seed for initialization, shuffling, augmentation and dropout.
    pub seed: u64,
    /// Random shifts of up to this many pixels (0 = no augmentation).
    #[serde(default)]
    pub augment_shift: usize,
    /// Use only the first N training images.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl Default for TrainConfig {
    /// The defaults of `netcalc train` (and `cargo run --release --example mnist`): the `cnn` preset, 12 epochs of
    /// batch 64, Adam 2e-3 with cosine decay, random shifts of ±2 pixels.
    fn default() -> Self {
        Self {
            model: CnnConfig::mnist_default(),
            epochs: 12,
            batch_size: 64,
            optimizer: OptimizerConfig {
                kind: OptimizerKind::Adam,
                lr: 2e-3,
                weight_decay: 0.0,
                momentum: 0.9,
            },
            schedule: Schedule::Cosine { min_lr: 1e-5 },
            seed: 0,
            augment_shift: 2,
            limit: None,
        }
    }
}

impl TrainConfig {
    /// This config with the `overrides` that are set put in, then checked.
    ///
    /// # Examples
    /// ```
    /// use netcalc::app::train::{ScheduleKind, TrainConfig, TrainOverrides};
    /// let cfg = TrainConfig::default().with_overrides(&TrainOverrides {
    ///     epochs: Some(3),
    ///     lr: Some(1e-6),
    ///     schedule: Some(ScheduleKind::Cosine),
    ///     ..TrainOverrides::default()
    /// })?;
    /// assert_eq!(cfg.epochs, 3);
    /// // the cosine floor never above the peak rate
    /// assert_eq!(cfg.schedule, netcalc::app::train::Schedule::Cosine { min_lr: 1e-6 });
    /// # Ok::<(), netcalc::Error>(())
    /// ```
    pub fn with_overrides(mut self, o: &TrainOverrides) -> Result<Self> {
        if let Some(m) = o.model {
            self.model = m.config();
        }
        if let Some(v) = o.epochs {
            self.epochs = v;
        }
        if let Some(v) = o.batch_size {
            self.batch_size = v;
        }
        if let Some(v) = o.lr {
            self.optimizer.lr = v;
            if let Schedule::Cosine { min_lr } = &mut self.schedule {
                *min_lr = min_lr.min(v);
            }
        }
        if let Some(v) = o.optimizer {
            self.optimizer.kind = v;
        }
        if let Some(v) = o.schedule {
            self.schedule = v.schedule(self.optimizer.lr, self.epochs);
        }
        if let Some(v) = o.augment_shift {
            self.augment_shift = v;
        }
        if let Some(v) = o.seed {
            self.seed = v;
        }
        if o.limit.is_some() {
            self.limit = o.limit;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        self.model.validate().map_err(|e| e.within("model"))?;
        if self.epochs == 0 {
            return Err(Error::setting("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::setting("batch-size", "must be at least 1"));
        }
        let lr = self.optimizer.lr;
        // No upper bound: a rate far too high is a valid request whose result, a diverging
        // loss, stops training with `Error::Diverged` (exit code 3) and keeps the checkpoint.
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::setting(
                "lr",
                format!("must be a finite number above 0, got {lr}"),
            ));
        }
        if !(self.optimizer.weight_decay >= 0.0 && self.optimizer.weight_decay.is_finite()) {
            return Err(Error::setting(
                "weight-decay",
                "must be a finite number >= 0",
            ));
        }
        if !(0.0..1.0).contains(&self.optimizer.momentum) {
            return Err(Error::setting("momentum", "must be in [0, 1)"));
        }
        match &self.schedule {
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                if *every_epochs == 0 || !(*gamma > 0.0 && *gamma <= 1.0) {
                    return Err(Error::setting(
                        "schedule",
                        "step needs every_epochs >= 1 and gamma in (0, 1]",
                    ));
                }
            }
            Schedule::Cosine { min_lr } => {
                if !(*min_lr >= 0.0 && *min_lr <= lr) {
                    return Err(Error::setting(
                        "schedule",
                        format!("cosine min_lr must be in [0, lr], got {min_lr}"),
                    ));
                }
            }
            Schedule::Constant => {}
        }
        if self.augment_shift > 8 {
            return Err(Error::setting("augment-shift", "at most 8 pixels"));
        }
        if self.limit == Some(0) {
            return Err(Error::setting("limit", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::parse_json;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};
    use std::path::Path;

    /// `value` with `key` added at the JSON pointer `at` must be refused, naming the key and
    /// the field path `path`.
    #[track_caller]
    fn refuses_unknown<T: DeserializeOwned + std::fmt::Debug>(
        mut value: Value,
        at: &str,
        key: &str,
        path: &str,
    ) {
        parse_json::<T>(Path::new("c.json"), &value.to_string()).expect("the valid config loads");
        value
            .pointer_mut(at)
            .and_then(Value::as_object_mut)
            .expect("an object at the pointer")
            .insert(key.into(), json!(0.5));
        let err = parse_json::<T>(Path::new("c.json"), &value.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("unknown field `{key}`")) && err.contains(path),
            "{err}"
        );
    }

    #[test]
    fn every_config_refuses_unknown_fields() {
        use crate::PoolKind;
        use crate::nn::conv::{Conv1dBlockConfig, Conv2dBlockConfig};
        use crate::nn::pool::{Pool1dConfig, Pool2dConfig};
        use crate::{ClassifierConfig, CnnConfig, FeatureExtractorConfig, NeuronConfig};
        fn v<T: Serialize>(x: &T) -> Value {
            serde_json::to_value(x).expect("configs serialize")
        }
        let train = TrainConfig::default();
        refuses_unknown::<TrainConfig>(v(&train), "", "epoch", "c.json: ");
        refuses_unknown::<TrainConfig>(
            v(&train),
            "/model/classifier",
            "hiden_dropout",
            "model.classifier.hiden_dropout: unknown field",
        );
        refuses_unknown::<TrainConfig>(
            v(&train),
            "/model/features/blocks/1/pool",
            "strides",
            "model.features.blocks[1].pool",
        );
        refuses_unknown::<TrainConfig>(v(&train), "/optimizer", "beta", "optimizer");
        refuses_unknown::<TrainConfig>(v(&train), "/schedule", "min", "schedule");
        refuses_unknown::<CnnConfig>(v(&train.model), "", "nmae", "");
        refuses_unknown::<FeatureExtractorConfig>(v(&train.model.features), "", "inputs", "");
        refuses_unknown::<ClassifierConfig>(v(&train.model.classifier), "", "n_neuron", "");
        refuses_unknown::<Conv2dBlockConfig>(v(&Conv2dBlockConfig::new(1, 8, 3)), "", "size", "");
        refuses_unknown::<Conv1dBlockConfig>(v(&Conv1dBlockConfig::new(1, 8, 3)), "", "size", "");
        refuses_unknown::<Pool2dConfig>(
            v(&Pool2dConfig::new(PoolKind::Max, [2, 2])),
            "",
            "pad",
            "",
        );
        refuses_unknown::<Pool1dConfig>(v(&Pool1dConfig::new(PoolKind::Avg, 2)), "", "pad", "");
        refuses_unknown::<NeuronConfig>(v(&NeuronConfig::new(3)), "", "inputs", "");
        refuses_unknown::<OptimizerConfig>(v(&train.optimizer), "", "lrate", "");
    }

    /// A `config.json` as written by main at 6e7affd (before unknown fields were refused)
    /// still loads, as the same config.
    #[test]
    fn config_written_by_earlier_main_still_loads() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/config-main-6e7affd.json"
        ));
        let cfg: TrainConfig = crate::app::fsio::read_json(path).unwrap();
        assert_eq!(cfg, TrainConfig::default());
        cfg.validate().unwrap();
    }

    /// Wrong types and sizes are reported with the field path, before anything is built.
    #[test]
    fn wrong_types_and_sizes_name_the_field() {
        let mut v = serde_json::to_value(TrainConfig::default()).unwrap();
        v["model"]["classifier"]["n_neurons"][1] = json!("ten");
        let err = parse_json::<TrainConfig>(Path::new("c.json"), &v.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.classifier.n_neurons[1]"), "{err}");
        let mut v = serde_json::to_value(TrainConfig::default()).unwrap();
        v["batch_size"] = json!(-4);
        let err = parse_json::<TrainConfig>(Path::new("c.json"), &v.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_size"), "{err}");
        let mut cfg = TrainConfig::default();
        cfg.model.features.blocks[0].kernel = 40;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("model.features.blocks[0]") && err.contains("kernel 40"),
            "{err}"
        );
        let mut cfg = TrainConfig::default();
        cfg.model.classifier.n_inputs = 1000;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("model.classifier.n_inputs"), "{err}");
    }

    /// The model must take MNIST's `[1, 28, 28]` images and predict 10 classes.
    #[test]
    fn a_model_that_does_not_fit_the_data_is_refused() {
        use crate::app::data::DataInfo;
        use crate::app::train::check_model_fits_data;
        check_model_fits_data(&TrainConfig::default().model, &DataInfo::mnist()).unwrap();
        let mut m = TrainConfig::default().model;
        *m.classifier.n_neurons.last_mut().unwrap() = 5;
        let err = check_model_fits_data(&m, &DataInfo::mnist())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.classifier.n_neurons[1]") && err.contains("5 output classes"),
            "{err}"
        );
        let mut m = TrainConfig::default().model;
        m.features.input = [3, 28, 28];
        let err = check_model_fits_data(&m, &DataInfo::mnist())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.features.input") && err.contains("[3, 28, 28]"),
            "{err}"
        );
        let mut m = TrainConfig::default().model;
        m.features.input = [1, 32, 32];
        m.classifier.n_inputs = 64 * 6 * 6;
        m.validate().unwrap();
        let err = check_model_fits_data(&m, &DataInfo::mnist())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[1, 32, 32]"), "{err}");
    }
}
