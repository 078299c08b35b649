//! # netcalc
//!
//! The fundamentals of neural-network computation as tested [burn](https://burn.dev) modules:
//! the artificial neuron, dense layers and classifier stacks, odds/logit/sigmoid/softmax, the
//! common losses, pooling, convolution, and a CNN made of a feature extractor and a classifier,
//! plus an MNIST data pipeline and trainer.
//!
//! # Layout
//! - **The core** (always compiled, no I/O crates): [`neuron`], [`activation`], [`dense`],
//!   [`prob`], [`loss`], [`pool`], [`conv`], [`cnn`], [`summary`], [`backend`], [`fastops`]
//!   (the CPU kernels behind [`conv::Conv2dBlock`] and [`pool::Pool2d`]) and [`error`].
//! - **The MNIST application** (Cargo feature `mnist`, on by default): `data` (IDX files,
//!   download, batches), `train` (the loop, run directories, checkpoints, metrics, plots,
//!   throughput measurement) and `predict` (digits from image files).
//!
//! Backends are chosen with Cargo features (`ndarray`, `flex`, `wgpu`) and picked at run time
//! with [`select_device`]. `cargo build --no-default-features --features flex` builds the core
//! alone on one backend.
#![warn(missing_docs)]

pub mod backend;
pub mod error;
pub mod functional;
pub mod kernels;
pub mod model;
pub mod nn;
pub mod seed;

#[cfg(feature = "mnist")]
pub mod app;

#[doc(hidden)]
pub mod testing;

pub use backend::{BackendKind, compiled_backends, device_of, select_backend, select_device};
pub use error::{Error, Result};
pub use functional::activation::Activation;
pub use functional::pool::PoolKind;
pub use functional::window::window_output_len;
pub use model::{
    Cnn, CnnConfig, FeatureExtractor, FeatureExtractorConfig, ModelPreset, Stage, StageKind,
    Summary,
};
pub use nn::conv::{Conv1dBlock, Conv1dBlockConfig, Conv2dBlock, Conv2dBlockConfig};
pub use nn::dense::{Classifier, ClassifierConfig};
pub use nn::neuron::{Neuron, NeuronConfig};
pub use nn::pool::{Pool1d, Pool1dConfig, Pool2d, Pool2dConfig};

/// Re-export of burn, so users get the same version.
pub use burn;
