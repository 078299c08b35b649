//! Datasets: IDX files (MNIST, Fashion-MNIST, KMNIST: a directory, the cache, a verified
//! download, or MNIST's bundled sample), folders of the user's own images, and the batches a
//! model trains on.
//!
//! One concept a file: [`normalization`] (pixels to inputs), [`info`] (what a model knows of
//! its data), [`split`] (images with labels, batches, an epoch's order), [`augment`] (random
//! shifts), [`source`] (where the data comes from, and loading it), [`record`] (the source
//! as a run directory records it, with the data's fingerprint), [`idx`], [`folder`],
//! [`download`], [`pack`] (a folder decoded once into a memory-mapped file) and [`pixels`]
//! (a split's bytes, in memory or mapped).

pub mod augment;
pub mod download;
pub mod folder;
pub mod idx;
pub mod info;
pub mod normalization;
pub mod pack;
pub mod pixels;
pub mod record;
pub mod source;
pub mod split;

pub use download::NamedDataset;
pub use info::{DataInfo, Preprocess};
pub use normalization::{MNIST_MEAN, MNIST_STD, Normalization};
pub use pixels::Pixels;
pub use record::{DataRecord, Fingerprint, RecordedSource};
pub use source::{DataOptions, DataSource, DataSpec, Dataset, find_files, load_idx};
pub use split::{Batch, HostBatch, Split, epoch_order};

/// Side of an MNIST image.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// The shape `[C, H, W]` of one MNIST image as a model sees it.
pub const IMAGE_SHAPE: [usize; 3] = [1, SIDE, SIDE];
/// The number of MNIST classes (digits 0–9).
pub const CLASSES: usize = 10;

/// Environment variable naming a directory with the four MNIST files (like `--data-dir`).
pub const DATA_DIR_ENV: &str = "NETCALC_MNIST_DIR";
