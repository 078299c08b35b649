//! Datasets: IDX files (MNIST, Fashion-MNIST, KMNIST: a directory, the cache, a verified
//! download, or MNIST's bundled sample), folders of the user's own images, and the batches a
//! model trains on.

pub mod download;
pub mod folder;
pub mod idx;

use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use download::NamedDataset;
use download::{RemoteFile, download_files, is_cached};

/// Mean of the MNIST training pixels scaled to [0, 1] (full 60,000-image training set).
pub const MNIST_MEAN: f32 = 0.1307;
/// Standard deviation of the MNIST training pixels scaled to [0, 1].
pub const MNIST_STD: f32 = 0.3081;
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

/// The bundled sample (8,000 train / 2,000 held-out real MNIST digits), compiled into the crate
/// so that a fresh clone trains offline.
mod bundled {
    pub const TRAIN_IMAGES: &[u8] =
        include_bytes!("../../../data/mnist-sample/train-images-idx3-ubyte.gz");
    pub const TRAIN_LABELS: &[u8] =
        include_bytes!("../../../data/mnist-sample/train-labels-idx1-ubyte.gz");
    pub const TEST_IMAGES: &[u8] =
        include_bytes!("../../../data/mnist-sample/test-images-idx3-ubyte.gz");
    pub const TEST_LABELS: &[u8] =
        include_bytes!("../../../data/mnist-sample/test-labels-idx1-ubyte.gz");
}

/// The per-channel normalisation of pixels: `(p / 255 − mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// Mean of each channel's pixels scaled to [0, 1].
    pub mean: Vec<f32>,
    /// Standard deviation of each channel's pixels scaled to [0, 1].
    pub std: Vec<f32>,
}

impl Normalization {
    /// MNIST's constants (mean 0.1307, standard deviation 0.3081), on every one of `channels`.
    pub fn mnist(channels: usize) -> Self {
        Self {
            mean: vec![MNIST_MEAN; channels],
            std: vec![MNIST_STD; channels],
        }
    }

    /// The mean and standard deviation of each channel of `pixels` (images `[C, H, W]` one
    /// after the other); a channel that never varies gets a standard deviation of 1.
    pub fn of(pixels: &[u8], [c, h, w]: [usize; 3]) -> Self {
        let plane = h * w;
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for image in pixels.chunks_exact((c * plane).max(1)) {
            for ch in 0..c {
                for &p in &image[ch * plane..(ch + 1) * plane] {
                    let v = p as f64 / 255.0;
                    sum[ch] += v;
                    sq[ch] += v * v;
                }
            }
        }
        let n = (pixels.len() / c.max(1)).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let sd = (s / n - m * m).max(0.0).sqrt();
                if sd < 1e-6 { 1.0 } else { sd as f32 }
            })
            .collect();
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// `(p / 255 − mean) / std` for a pixel of channel `c`.
    pub fn apply(&self, c: usize, p: u8) -> f32 {
        (p as f32 / 255.0 - self.mean[c]) / self.std[c]
    }

    /// An error unless there is one finite mean and one positive standard deviation per
    /// channel; `what` names the source.
    pub fn check(&self, what: &str, channels: usize) -> Result<()> {
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(Error::setting(
                what,
                format!(
                    "{} means and {} standard deviations for {channels} channels",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite())
            || self.std.iter().any(|s| s.is_nan() || *s <= 0.0)
        {
            return Err(Error::setting(
                what,
                "means must be finite and standard deviations above 0",
            ));
        }
        Ok(())
    }
}

/// How a new image (a file, an upload) becomes a model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preprocess {
    /// As an MNIST digit ([`crate::app::predict::load_digit`]): a 28×28 image as it is (inverted
    /// when its border is light), a photo or scan of any size cleaned, cropped to its ink and
    /// centred.
    Digit,
    /// Converted to the model's channels and resized to its input, as the image folders it
    /// was trained on ([`crate::app::data::folder::read_image`]).
    Resize,
}

/// What a model knows of its data: the class names, the input shape, the normalisation and
/// how new images are read. Stored in the run directory (`data.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataInfo {
    /// The class names, in the model's output order.
    pub classes: Vec<String>,
    /// The input `[C, H, W]`.
    pub shape: [usize; 3],
    /// The normalisation of the pixels.
    pub normalization: Normalization,
    /// How new images are read.
    pub preprocess: Preprocess,
}

impl DataInfo {
    /// MNIST: the digits 0–9, 1×28×28, MNIST's constants, read as digits. What a run directory
    /// without `data.json` (an earlier version's) is taken to hold.
    pub fn mnist() -> Self {
        Self {
            classes: (0..CLASSES).map(|d| d.to_string()).collect(),
            shape: IMAGE_SHAPE,
            normalization: Normalization::mnist(1),
            preprocess: Preprocess::Digit,
        }
    }

    /// The name of class `i` (its number when there is no name for it).
    pub fn class_name(&self, i: usize) -> String {
        self.classes
            .get(i)
            .cloned()
            .unwrap_or_else(|| i.to_string())
    }

    /// An error unless the names are unique and non-empty, and the shape and normalisation fit.
    pub fn check(&self) -> Result<()> {
        if let Some(name) = self.classes.iter().find(|c| c.trim().is_empty()) {
            return Err(Error::setting(
                "classes",
                format!("a class name is empty: {name:?}"),
            ));
        }
        let mut sorted: Vec<&String> = self.classes.iter().collect();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::setting(
                "classes",
                format!("`{}` is named twice", w[0]),
            ));
        }
        self.normalization.check("normalization", self.shape[0])
    }
}

/// One split (train or test) of images `[C, H, W]` with labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// `len()·C·H·W` pixels, image after image, each channel after channel, row-major
    /// (MNIST: 0 = background, 255 = ink).
    pub pixels: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u32>,
    /// The shape `[C, H, W]` of one image.
    pub shape: [usize; 3],
    /// How pixels become the network's input.
    pub normalization: Normalization,
}

impl Split {
    /// MNIST-style digits from an IDX file: checks that images and labels agree and that the
    /// images are `rows × cols` as `shape` says.
    pub fn from_idx(
        images: idx::IdxImages,
        labels: Vec<u8>,
        images_path: &Path,
        normalization: Normalization,
    ) -> Result<Self> {
        if images.rows != SIDE || images.cols != SIDE {
            return Err(Error::data(
                images_path,
                format!("images are {}x{}, expected 28x28", images.rows, images.cols),
            ));
        }
        if images.count != labels.len() {
            return Err(Error::data(
                images_path,
                format!(
                    "{} images but the label file has {} labels",
                    images.count,
                    labels.len()
                ),
            ));
        }
        Ok(Self {
            pixels: images.pixels,
            labels: labels.into_iter().map(u32::from).collect(),
            shape: IMAGE_SHAPE,
            normalization,
        })
    }

    /// Values per image, `C·H·W`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` images (all of them if `n >= len()`).
    pub fn take(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            pixels: self.pixels[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            shape: self.shape,
            normalization: self.normalization.clone(),
        }
    }

    /// The raw pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// The same images, normalised by `normalization` from now on.
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// Builds a batch from the images at `indices`, shifting each by a random offset of up to
    /// `shift` pixels in each direction when `augment` is given (the pixels shifted in are 0).
    ///
    /// # Shapes
    /// - images: `[indices.len(), C, H, W]`; labels: `[indices.len()]`
    pub fn batch(
        &self,
        indices: &[usize],
        device: &Device,
        augment: Option<(&mut ChaCha8Rng, usize)>,
    ) -> Batch {
        let [c, h, w] = self.shape;
        let mut data = Vec::with_capacity(indices.len() * self.image_len());
        match augment {
            Some((rng, shift)) if shift > 0 => {
                let s = shift as i64;
                for &i in indices {
                    let dx = rng.random_range(-s..=s);
                    let dy = rng.random_range(-s..=s);
                    self.push_shifted(&mut data, self.image(i), dx, dy);
                }
            }
            _ => {
                for &i in indices {
                    self.push_normalized(&mut data, self.image(i));
                }
            }
        }
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i] as i64).collect();
        Batch {
            images: Tensor::from_data(TensorData::new(data, [indices.len(), c, h, w]), device),
            labels: Tensor::from_data(TensorData::new(labels, [indices.len()]), device),
        }
    }

    fn push_normalized(&self, out: &mut Vec<f32>, img: &[u8]) {
        let plane = self.shape[1] * self.shape[2];
        for (ch, values) in img.chunks_exact(plane.max(1)).enumerate() {
            out.extend(values.iter().map(|&p| self.normalization.apply(ch, p)));
        }
    }

    /// `img` moved by `(dx, dy)` pixels, normalised; what comes in from the edge is pixel 0.
    fn push_shifted(&self, out: &mut Vec<f32>, img: &[u8], dx: i64, dy: i64) {
        let [c, h, w] = self.shape;
        let (hi, wi) = (h as i64, w as i64);
        for ch in 0..c {
            let plane = &img[ch * h * w..(ch + 1) * h * w];
            let background = self.normalization.apply(ch, 0);
            for y in 0..hi {
                let sy = y - dy;
                for x in 0..wi {
                    let sx = x - dx;
                    out.push(if (0..hi).contains(&sy) && (0..wi).contains(&sx) {
                        self.normalization.apply(ch, plane[(sy * wi + sx) as usize])
                    } else {
                        background
                    });
                }
            }
        }
    }
}

/// A batch of images and labels on a device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[N, C, H, W]`, normalised.
    pub images: Tensor<4>,
    /// `[N]` class indices.
    pub labels: Tensor<1, Int>,
}

/// The order of the training images in epoch `epoch`: a shuffle seeded by `(seed, epoch)`, so a
/// resumed run sees the same order as an uninterrupted one.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(crate::seed::stream(seed, epoch as u64));
    idx.shuffle(&mut rng);
    idx
}

/// Where the data came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A directory of IDX files given with `--data-dir` or `NETCALC_MNIST_DIR`.
    Dir(PathBuf),
    /// The per-user cache, from an earlier download.
    Cache(PathBuf),
    /// Downloaded just now into the cache.
    Downloaded(PathBuf),
    /// The 10,000-digit sample compiled into the crate.
    Bundled,
    /// A folder of images, one sub-folder per class (`--data`).
    Folder(PathBuf),
}

/// Train and test splits, where they came from, and what a model trained on them needs to
/// know.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Training images.
    pub train: Split,
    /// Held-out images.
    pub test: Split,
    /// Their origin.
    pub source: DataSource,
    /// The dataset's name (`mnist`, `fashion-mnist`, `kmnist`, or the folder's name).
    pub name: String,
    /// Class names, shape, normalisation, preprocessing.
    pub info: DataInfo,
    /// Image files left out by `--skip-bad`, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Files in the class folders that are not `.png`, `.jpg` or `.jpeg` (not read).
    pub ignored: usize,
}

impl Dataset {
    /// One line for the start of a run: `data: bundled MNIST sample, 8000 train / 2000 test`.
    pub fn describe(&self) -> String {
        let what = match &self.source {
            DataSource::Dir(d) => format!("{} from {}", self.name, d.display()),
            DataSource::Cache(d) => format!("{} from the cache {}", self.name, d.display()),
            DataSource::Downloaded(d) => format!("{}, downloaded to {}", self.name, d.display()),
            DataSource::Bundled => "bundled MNIST sample".to_string(),
            DataSource::Folder(d) => format!("images from {}", d.display()),
        };
        let classes = self.info.classes.len();
        let mut line = format!(
            "data: {what}, {} train / {} test",
            self.train.len(),
            self.test.len()
        );
        if !matches!(self.source, DataSource::Bundled) || classes != CLASSES {
            line.push_str(&format!(", {classes} classes"));
        }
        if !self.skipped.is_empty() {
            line.push_str(&format!(
                ", {} unreadable files skipped",
                self.skipped.len()
            ));
        }
        if self.ignored > 0 {
            line.push_str(&format!(
                ", {} files that are not images left out",
                self.ignored
            ));
        }
        line
    }

    /// The held-out split as a model of `info` reads it (its normalisation); an error unless
    /// the data has the model's classes in the model's order, and its input.
    pub fn test_for(&self, info: &DataInfo) -> Result<Split> {
        if self.info.classes != info.classes {
            return Err(Error::setting(
                "data",
                format!(
                    "the data's classes {:?} are not the model's {:?}",
                    self.info.classes, info.classes
                ),
            ));
        }
        if self.info.shape != info.shape {
            return Err(Error::setting(
                "data",
                format!(
                    "the data's images are {:?}, the model takes {:?}",
                    self.info.shape, info.shape
                ),
            ));
        }
        Ok(self
            .test
            .clone()
            .with_normalization(info.normalization.clone()))
    }

    /// The bundled sample: 8,000 training and 2,000 held-out digits.
    pub fn bundled() -> Result<Self> {
        let p = |n: &str| PathBuf::from(format!("<bundled>/{n}"));
        let split = |img: &[u8], lab: &[u8], iname: &str, lname: &str| -> Result<Split> {
            let (ip, lp) = (p(iname), p(lname));
            let images = idx::parse_images(&ip, &idx::decode_maybe_gzip(&ip, img.to_vec())?)?;
            let labels = idx::decode_maybe_gzip(&lp, lab.to_vec())?;
            let labels = idx::parse_labels(&lp, &labels, CLASSES as u8)?;
            Split::from_idx(images, labels, &ip, Normalization::mnist(1))
        };
        Ok(Self {
            train: split(
                bundled::TRAIN_IMAGES,
                bundled::TRAIN_LABELS,
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
            )?,
            test: split(
                bundled::TEST_IMAGES,
                bundled::TEST_LABELS,
                "test-images-idx3-ubyte.gz",
                "test-labels-idx1-ubyte.gz",
            )?,
            source: DataSource::Bundled,
            name: "mnist".into(),
            info: DataInfo::mnist(),
            skipped: Vec::new(),
            ignored: 0,
        })
    }

    /// Reads the four IDX files of `dataset` from `dir` (standard names, raw or `.gz`).
    pub fn from_idx_dir(dir: &Path, dataset: NamedDataset) -> Result<Self> {
        let files = find_files(dir)?;
        let [ti, tl, vi, vl] = &files;
        let classes = dataset.classes();
        let n = classes.len() as u8;
        let read = |images: &Path, labels: &Path| -> Result<Split> {
            let labels_v = idx::parse_labels(labels, &idx::read_maybe_gzip(labels)?, n)?;
            Split::from_idx(
                idx::read_images(images)?,
                labels_v,
                images,
                Normalization::mnist(1),
            )
        };
        let train = read(ti, tl)?;
        // MNIST keeps its published constants; the others are normalised by their own
        // training split
        let normalization = match dataset {
            NamedDataset::Mnist => Normalization::mnist(1),
            _ => Normalization::of(&train.pixels, IMAGE_SHAPE),
        };
        Ok(Self {
            train: train.with_normalization(normalization.clone()),
            test: read(vi, vl)?.with_normalization(normalization.clone()),
            source: DataSource::Dir(dir.to_path_buf()),
            name: dataset.name().into(),
            info: DataInfo {
                classes,
                shape: IMAGE_SHAPE,
                normalization,
                preprocess: dataset.preprocess(),
            },
            skipped: Vec::new(),
            ignored: 0,
        })
    }
}

/// The accepted names of each of the four files, in the order train images, train labels, test
/// images, test labels.
const NAMES: [&[&str]; 4] = [
    &["train-images-idx3-ubyte", "train-images.idx3-ubyte"],
    &["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"],
    &[
        "t10k-images-idx3-ubyte",
        "t10k-images.idx3-ubyte",
        "test-images-idx3-ubyte",
    ],
    &[
        "t10k-labels-idx1-ubyte",
        "t10k-labels.idx1-ubyte",
        "test-labels-idx1-ubyte",
    ],
];

/// Finds the four IDX files in `dir`, raw or `.gz`; the error lists what is missing.
pub fn find_files(dir: &Path) -> Result<[PathBuf; 4]> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "data directory does not exist",
            ),
        ));
    }
    let found: Vec<Option<PathBuf>> = NAMES
        .iter()
        .map(|names| {
            names
                .iter()
                .flat_map(|n| [dir.join(n), dir.join(format!("{n}.gz"))])
                .find(|p| p.is_file())
        })
        .collect();
    let missing: Vec<String> = found
        .iter()
        .zip(NAMES)
        .filter(|(f, _)| f.is_none())
        .map(|(_, n)| format!("{}[.gz]", n[0]))
        .collect();
    if !missing.is_empty() {
        return Err(Error::data(
            dir,
            format!("missing IDX files: {}", missing.join(", ")),
        ));
    }
    let mut it = found.into_iter().flatten();
    Ok(std::array::from_fn(|_| {
        it.next().expect("four files found")
    }))
}

/// How to find an IDX dataset.
#[derive(Debug, Clone)]
pub struct DataOptions {
    /// Which dataset.
    pub dataset: NamedDataset,
    /// An explicit directory (`--data-dir`); for MNIST it falls back to `$NETCALC_MNIST_DIR`.
    pub data_dir: Option<PathBuf>,
    /// Never download.
    pub offline: bool,
    /// Where downloads are kept.
    pub cache_dir: PathBuf,
    /// Mirrors to download from, tried in turn.
    pub mirrors: Vec<String>,
    /// The files to download, with checksums.
    pub files: Vec<RemoteFile>,
    /// Connect timeout per mirror.
    pub connect_timeout: Duration,
    /// Show progress bars.
    pub progress: bool,
}

impl DataOptions {
    /// The defaults for `dataset`: its mirrors, files and per-user cache.
    pub fn for_dataset(dataset: NamedDataset) -> Self {
        Self {
            dataset,
            data_dir: None,
            offline: false,
            cache_dir: dataset.cache_dir(),
            mirrors: dataset.mirrors().iter().map(|s| s.to_string()).collect(),
            files: dataset.files(),
            connect_timeout: Duration::from_secs(5),
            progress: false,
        }
    }
}

impl Default for DataOptions {
    /// MNIST's.
    fn default() -> Self {
        Self::for_dataset(NamedDataset::Mnist)
    }
}

/// Loads an IDX dataset from, in order: `data_dir` (for MNIST also `$NETCALC_MNIST_DIR`), the
/// cache, a download (unless `offline`), and for MNIST the bundled sample. A download that
/// fails is reported through `warn` and the next source is used (for the other datasets, with
/// no sample to fall back on, it is an error); a `data_dir` that is missing or broken is an
/// error.
pub fn load_idx(opts: &DataOptions, mut warn: impl FnMut(&str)) -> Result<Dataset> {
    let env_dir = (opts.dataset == NamedDataset::Mnist)
        .then(|| std::env::var(DATA_DIR_ENV).ok())
        .flatten()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    if let Some(dir) = opts.data_dir.clone().or(env_dir) {
        return Dataset::from_idx_dir(&dir, opts.dataset);
    }
    let from_cache = |source: DataSource| -> Result<Dataset> {
        let mut d = Dataset::from_idx_dir(&opts.cache_dir, opts.dataset)?;
        d.source = source;
        Ok(d)
    };
    if opts.files.iter().all(|f| is_cached(&opts.cache_dir, f)) {
        return from_cache(DataSource::Cache(opts.cache_dir.clone()));
    }
    let bundled = opts.dataset == NamedDataset::Mnist;
    if opts.offline && !bundled {
        return Err(Error::Download {
            file: opts.dataset.name().into(),
            message: format!(
                "--offline, and the cache {} does not hold it",
                opts.cache_dir.display()
            ),
        });
    }
    if !opts.offline {
        match download_files(
            &opts.mirrors,
            &opts.files,
            &opts.cache_dir,
            opts.connect_timeout,
            opts.progress,
        ) {
            Ok(()) => return from_cache(DataSource::Downloaded(opts.cache_dir.clone())),
            Err(e) if bundled => warn(&format!(
                "full MNIST not available ({e}); using the bundled sample"
            )),
            Err(e) => return Err(e),
        }
    }
    Dataset::bundled()
}

/// Where a run's data comes from, as the command line gives it.
#[derive(Debug, Clone)]
pub struct DataSpec {
    /// A folder of images, one sub-folder per class (`--data`); else an IDX dataset.
    pub folder: Option<PathBuf>,
    /// Reading the folder: the share held out, the memory limit, `--skip-bad`.
    pub folder_options: folder::FolderOptions,
    /// The IDX dataset and where to find it.
    pub idx: DataOptions,
}

impl DataSpec {
    /// What is known of an IDX dataset before it is read (its classes, 1×28×28); `None` for
    /// a folder, whose classes are its sub-folders.
    pub fn known_info(&self) -> Option<DataInfo> {
        self.folder.is_none().then(|| DataInfo {
            classes: self.idx.dataset.classes(),
            shape: IMAGE_SHAPE,
            normalization: Normalization::mnist(1),
            preprocess: self.idx.dataset.preprocess(),
        })
    }

    /// Loads the data, images of `shape` for a folder (IDX datasets are 1×28×28); `warn`
    /// hears what the caller should be told (a failed download that fell back to the sample).
    pub fn load(&self, shape: [usize; 3], warn: impl FnMut(&str)) -> Result<Dataset> {
        match &self.folder {
            Some(dir) => {
                let opts = folder::FolderOptions {
                    shape,
                    ..self.folder_options.clone()
                };
                folder::load_folder(dir, &opts)
            }
            None => load_idx(&self.idx, warn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_device, values};

    #[test]
    fn bundled_sample_is_8000_plus_2000_real_digits() {
        let m = Dataset::bundled().unwrap();
        assert_eq!((m.train.len(), m.test.len()), (8000, 2000));
        assert_eq!(
            m.describe(),
            "data: bundled MNIST sample, 8000 train / 2000 test"
        );
        // class counts of the whole sample (its README): 1001 zeros, 1127 ones, ...
        let mut counts = [0usize; 10];
        for &l in m.train.labels.iter().chain(&m.test.labels) {
            counts[l as usize] += 1;
        }
        assert_eq!(
            counts,
            [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
        );
        assert_eq!(m.info, DataInfo::mnist());
    }

    #[test]
    fn batches_are_normalized_and_shaped() {
        let d = test_device();
        let m = Dataset::bundled().unwrap();
        let b = m.train.batch(&[0, 5, 7], &d, None);
        assert_eq!(b.images.dims(), [3, 1, 28, 28]);
        let labels: Vec<i64> = b.labels.into_data().convert::<i64>().try_to_vec().unwrap();
        let wanted: Vec<i64> = [0, 5, 7]
            .iter()
            .map(|&i| m.train.labels[i] as i64)
            .collect();
        assert_eq!(labels, wanted);
        let px = values(b.images);
        // background pixels are (0 - 0.1307)/0.3081 = -0.424213
        assert!((px[0] - (-0.424_213)).abs() < 1e-5);
        let max = px.iter().cloned().fold(f32::MIN, f32::max);
        // ink 255 -> (1 - 0.1307)/0.3081 = 2.821487
        assert!((max - 2.821_487).abs() < 1e-4, "{max}");
    }

    #[test]
    fn shifting_moves_the_ink_and_fills_background() {
        let mut pixels = vec![0u8; 2 * 4 * 4];
        pixels[4 + 1] = 255; // channel 0, (x, y) = (1, 1)
        pixels[16 + 2 * 4 + 2] = 255; // channel 1, (2, 2)
        let split = Split {
            pixels: pixels.clone(),
            labels: vec![0],
            shape: [2, 4, 4],
            normalization: Normalization {
                mean: vec![0.0, 0.0],
                std: vec![1.0, 0.5],
            },
        };
        let mut out = Vec::new();
        split.push_shifted(&mut out, &pixels, 1, -1);
        let hot: Vec<(usize, f32)> = out
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, v)| (i, *v))
            .collect();
        // (1, 1) -> (2, 0) in channel 0 (value 1 / 1); (2, 2) -> (3, 1) in channel 1 (1 / 0.5)
        assert_eq!(hot, vec![(2, 1.0), (16 + 4 + 3, 2.0)]);
    }

    #[test]
    fn normalization_per_channel_by_hand() {
        // two 1×2 images of two channels: channel 0 holds 0, 255, 0, 255 -> mean 0.5, std 0.5;
        // channel 1 is 51 everywhere (0.2) -> std 1 (it never varies)
        let px = [0, 255, 51, 51, 255, 0, 51, 51];
        let n = Normalization::of(&px, [2, 1, 2]);
        assert!(
            (n.mean[0] - 0.5).abs() < 1e-6 && (n.std[0] - 0.5).abs() < 1e-6,
            "{n:?}"
        );
        assert!((n.mean[1] - 0.2).abs() < 1e-6 && n.std[1] == 1.0, "{n:?}");
        assert!((n.apply(0, 255) - 1.0).abs() < 1e-6);
        assert!(n.check("x", 2).is_ok() && n.check("x", 3).is_err());
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 0);
        assert_eq!(a, epoch_order(100, 7, 0));
        assert_ne!(a, epoch_order(100, 7, 1));
        assert_ne!(a, epoch_order(100, 8, 0));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn data_dir_with_missing_files_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), b"x").unwrap();
        let opts = DataOptions {
            data_dir: Some(dir.path().to_path_buf()),
            ..DataOptions::default()
        };
        let err = load_idx(&opts, |_| {}).unwrap_err().to_string();
        assert!(
            err.contains("missing IDX files: train-labels-idx1-ubyte[.gz], t10k-images"),
            "{err}"
        );
        let opts = DataOptions {
            data_dir: Some(dir.path().join("nope")),
            ..DataOptions::default()
        };
        assert!(load_idx(&opts, |_| {}).is_err());
    }

    #[test]
    fn data_dir_with_sample_names_loads() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-sample");
        let m = Dataset::from_idx_dir(&src, NamedDataset::Mnist).unwrap();
        assert_eq!((m.train.len(), m.test.len()), (8000, 2000));
        let b = Dataset::bundled().unwrap();
        assert_eq!(m.train, b.train);
        // the same files read as Fashion-MNIST: its class names, its own normalisation
        let f = Dataset::from_idx_dir(&src, NamedDataset::FashionMnist).unwrap();
        assert_eq!(f.info.classes[9], "Ankle boot");
        assert_eq!(
            f.info.normalization,
            Normalization::of(&b.train.pixels, IMAGE_SHAPE)
        );
        assert_eq!(f.info.preprocess, Preprocess::Resize);
    }
}
