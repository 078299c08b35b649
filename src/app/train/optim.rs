//! The optimizer and the learning-rate schedule of a [`TrainConfig`].

use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use super::{OptimizerConfig, OptimizerKind, Schedule, TrainConfig};
use crate::error::{Error, Result};

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
