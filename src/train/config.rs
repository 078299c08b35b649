//! Training configuration: everything needed to reproduce a run, saved as `config.json`.

use serde::{Deserialize, Serialize};

use crate::cnn::CnnConfig;
use crate::error::{Error, Result};

/// The optimizer (burn's implementations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (β = 0.9, 0.999; ε = 1e-7 as in Keras, not burn's default 1e-5).
    Adam,
    /// AdamW with decoupled weight decay.
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
#[serde(tag = "kind", rename_all = "lowercase")]
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

/// A full training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The defaults of `cargo run --release --example mnist`: the `cnn` preset, 12 epochs of
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
    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        if self.epochs == 0 {
            return Err(Error::setting("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::setting("batch-size", "must be at least 1"));
        }
        let lr = self.optimizer.lr;
        if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
            return Err(Error::setting("lr", format!("must be in (0, 1], got {lr}")));
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
