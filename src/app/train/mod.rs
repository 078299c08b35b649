//! Training: a run's plan ([`plan`](mod@plan): the data, a preset fitted to it, the run directory), the
//! loop ([`train_loop`]), the optimizer and schedule ([`optim`]), evaluation ([`evaluate`](mod@evaluate)),
//! the batch reader that runs ahead of the step ([`prefetch`]), the run directory and its
//! checkpoints ([`run_dir`]), metrics and plots, throughput
//! measurement ([`bench`](mod@bench)), and the process-wide settings a run makes ([`denormals`],
//! [`allocs`]).

pub mod allocs;
pub mod bench;
pub mod config;
pub mod denormals;
pub mod evaluate;
pub mod metrics;
pub mod optim;
pub mod plan;
pub mod plot;
pub mod prefetch;
pub mod run_dir;
pub mod train_loop;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::app::data::DataRecord;
use crate::backend::BackendKind;
pub use config::{
    OptimizerConfig, OptimizerKind, Schedule, ScheduleKind, TrainConfig, TrainOverrides,
};
pub use denormals::FlushDenormals;
pub use evaluate::{Evaluation, class_scores, evaluate};
use metrics::EpochMetrics;
pub use optim::{build_optimizer, build_scheduler};
pub use plan::{DataChoice, TrainPlan, TrainRequest, check_model_fits_data, plan};
pub use run_dir::{Checkpoint, CheckpointInfo, EpochProgress, RunDir, load_model, locate_model};
pub use train_loop::{train, train_in};

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
    /// Set (e.g. by a Ctrl-C handler) to stop at the end of the current batch: a checkpoint is
    /// written there and the run ends with [`crate::Error::Interrupted`]; `resume` continues from that
    /// very batch.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Where the data came from, recorded in the run directory (`source.json`) so that
    /// `--resume` can reload it; `None` records nothing.
    pub data_record: Option<DataRecord>,
}

impl RunOptions {
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }
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
    /// For a run on several processes: what their all-reduce cost.
    pub distributed: Option<DistributedStats>,
}

/// What the gradient all-reduce of a distributed run cost, as rank 0 measured it this session
/// (from the start or the resume).
#[derive(Debug, Clone, PartialEq)]
pub struct DistributedStats {
    /// The processes.
    pub ranks: usize,
    /// Values summed per step: every gradient, the batch's loss and hits, the stop flag.
    pub floats_per_step: usize,
    /// Steps taken.
    pub steps: usize,
    /// Seconds in the all-reduce, waiting for the slowest rank included.
    pub all_reduce_seconds: f64,
    /// Seconds of the steps in all (forward, backward, all-reduce, optimizer).
    pub step_seconds: f64,
}
