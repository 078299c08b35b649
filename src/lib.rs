//! # netcalc
//!
//! The fundamentals of neural-network computation as tested [burn](https://burn.dev) modules:
//! the artificial neuron, dense layers and classifier stacks, odds/logit/sigmoid/softmax, the
//! common losses, pooling, convolution, and a CNN made of a feature extractor and a classifier,
//! plus an MNIST data pipeline and trainer.
//!
//! Backends are chosen with Cargo features (`ndarray`, `flex`, `wgpu`) and picked at run time
//! with [`select_device`].
#![warn(missing_docs)]

pub mod activation;
pub mod backend;
pub mod bench;
pub mod cnn;
pub mod conv;
pub mod data;
pub mod dense;
pub mod error;
pub mod fastops;
pub mod loss;
pub mod neuron;
pub mod pool;
pub mod predict;
pub mod prob;
pub mod summary;
pub mod testing;
pub mod train;

pub use activation::Activation;
pub use backend::{BackendKind, compiled_backends, device_of, select_backend, select_device};
pub use cnn::{Cnn, CnnConfig, FeatureExtractor, FeatureExtractorConfig};
pub use conv::{Conv1dBlock, Conv1dBlockConfig, Conv2dBlock, Conv2dBlockConfig};
pub use dense::{Classifier, ClassifierConfig};
pub use error::{Error, Result};
pub use neuron::{Neuron, NeuronConfig};
pub use pool::{Pool1d, Pool1dConfig, Pool2d, Pool2dConfig, PoolKind, pool_output_len};
pub use summary::Summary;

/// Re-export of burn, so users get the same version.
pub use burn;
