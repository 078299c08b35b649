//! # netcalc
//!
//! The fundamentals of neural-network computation as tested [burn](https://burn.dev) modules:
//! the artificial neuron, dense layers and classifier stacks, odds/logit/sigmoid/softmax, the
//! common losses, pooling, convolution, and a CNN made of a **feature extractor** and a
//! **classifier**, with fast CPU kernels behind them and an MNIST trainer on top.
//!
//! # Quick start
//!
//! A CNN from its config, its Keras-like summary, and class scores for a batch of images:
//!
//! ```
//! use netcalc::burn::tensor::Tensor;
//! use netcalc::{CnnConfig, select_device};
//!
//! let (backend, device) = select_device(None)?; // the fastest backend compiled in
//! let cfg = CnnConfig::keras_mnist(); // conv 32 → pool → conv 64 → pool → dense 10
//! println!("{}", cfg.summary()?); // 34,826 parameters, one row per layer
//! let model = cfg.init(&device)?;
//! let images = Tensor::<4>::zeros([16, 1, 28, 28], &device);
//! let scores = model.try_forward(images)?; // a wrong shape is an error, not a panic
//! assert_eq!(scores.dims(), [16, 10]);
//! println!("computed on {backend}");
//! # Ok::<(), netcalc::Error>(())
//! ```
//!
//! Training: [`app::train::train`]; a trained model's predictions:
//! [`app::session::TrainedModel`]. The `netcalc` command (`cargo install --path .`, or
//! `cargo run --release --example mnist` without installing) does both from the command line
//! ([`app::cli`]), and `cargo run --release --example <concept>` works each concept through by
//! hand (`neuron`, `dense`, `probabilities`, `losses`, `pooling`, `convolution`, `cnn`).
//!
//! # Layout
//! - **The core** (always compiled, no I/O crates): [`functional`] (activations,
//!   probabilities, losses, window shapes), [`nn`] (the layers), [`model`] (the CNN, presets,
//!   summary, stages), [`kernels`] (the CPU kernels the layers call), [`backend`], [`error`],
//!   [`seed`].
//! - **The application** (Cargo feature `app`, on by default; `mnist` is an alias):
//!   `app` — the `netcalc` command line, data (IDX files, image folders, downloads, batches,
//!   the record of a run's data), training (its plan, the loop, run directories, checkpoints,
//!   metrics, plots, throughput), prediction from image files, the explain picture, PyTorch
//!   interop, the web server.
//! - **Training on several processes** (Cargo feature `mpi`, off by default; needs OpenMPI):
//!   `mpirun -np N netcalc train` trains one model, each process on a share of every batch
//!   (`app::distributed`).
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

#[cfg(feature = "app")]
pub mod app;

#[doc(hidden)]
pub mod testing;

/// The README's Rust code, compiled and run as doctests so that it cannot drift.
#[cfg(all(doctest, feature = "app"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

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
