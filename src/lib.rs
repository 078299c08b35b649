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

pub mod activation;
pub mod backend;
pub mod cnn;
pub mod conv;
pub mod dense;
pub mod error;
pub mod fastops;
pub mod loss;
pub mod neuron;
pub mod pool;
pub mod prob;
pub mod summary;
pub mod window;

#[cfg(feature = "mnist")]
pub mod data;
#[cfg(feature = "mnist")]
pub mod explain;
#[cfg(feature = "mnist")]
pub mod fsio;
#[cfg(feature = "mnist")]
pub mod predict;
#[cfg(feature = "mnist")]
pub mod serve;
#[cfg(feature = "mnist")]
pub mod train;

#[doc(hidden)]
pub mod testing;

pub use activation::Activation;
pub use backend::{BackendKind, compiled_backends, device_of, select_backend, select_device};
pub use cnn::{Cnn, CnnConfig, FeatureExtractor, FeatureExtractorConfig, Stage, StageKind};
pub use conv::{Conv1dBlock, Conv1dBlockConfig, Conv2dBlock, Conv2dBlockConfig};
pub use dense::{Classifier, ClassifierConfig};
pub use error::{Error, Result};
pub use neuron::{Neuron, NeuronConfig};
pub use pool::{Pool1d, Pool1dConfig, Pool2d, Pool2dConfig, PoolKind};
pub use summary::Summary;
pub use window::window_output_len;

/// Re-export of burn, so users get the same version.
pub use burn;
