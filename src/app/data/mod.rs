//! MNIST: reading the IDX files, choosing a source, and turning images into batches.

pub mod download;
pub mod idx;

use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use download::{RemoteFile, default_cache_dir, download_files, full_mnist_files, is_cached};

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

/// One split (train or test) of 28×28 digits with labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistSplit {
    /// `len()·784` pixels, row-major per image, 0 = background, 255 = ink.
    pub pixels: Vec<u8>,
    /// One label 0..=9 per image.
    pub labels: Vec<u8>,
}

impl MnistSplit {
    /// Checks that images and labels agree and the images are 28×28.
    pub fn new(images: idx::IdxImages, labels: Vec<u8>, images_path: &Path) -> Result<Self> {
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
            labels,
        })
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
            pixels: self.pixels[..n * PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The raw pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Builds a batch from the images at `indices`, shifting each by a random offset of up to
    /// `shift` pixels in each direction when `augment` is given.
    pub fn batch(
        &self,
        indices: &[usize],
        device: &Device,
        augment: Option<(&mut ChaCha8Rng, usize)>,
    ) -> Batch {
        let mut data = Vec::with_capacity(indices.len() * PIXELS);
        match augment {
            Some((rng, shift)) if shift > 0 => {
                let s = shift as i32;
                for &i in indices {
                    let dx = rng.random_range(-s..=s);
                    let dy = rng.random_range(-s..=s);
                    push_shifted(&mut data, self.image(i), dx, dy);
                }
            }
            _ => {
                for &i in indices {
                    data.extend(self.image(i).iter().map(|&p| normalize(p)));
                }
            }
        }
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i] as i64).collect();
        Batch {
            images: Tensor::from_data(
                TensorData::new(data, [indices.len(), 1, SIDE, SIDE]),
                device,
            ),
            labels: Tensor::from_data(TensorData::new(labels, [indices.len()]), device),
        }
    }
}

/// `(p / 255 − mean) / std`: the network's input for pixel value `p`.
pub fn normalize(p: u8) -> f32 {
    (p as f32 / 255.0 - MNIST_MEAN) / MNIST_STD
}

fn push_shifted(out: &mut Vec<f32>, img: &[u8], dx: i32, dy: i32) {
    let bg = normalize(0);
    let side = SIDE as i32;
    for y in 0..side {
        let sy = y - dy;
        for x in 0..side {
            let sx = x - dx;
            if (0..side).contains(&sy) && (0..side).contains(&sx) {
                out.push(normalize(img[(sy * side + sx) as usize]));
            } else {
                out.push(bg);
            }
        }
    }
}

/// A batch of images and labels on a device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[N, 1, 28, 28]`, normalized with [`normalize`].
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
    /// A directory given with `--data-dir` or `NETCALC_MNIST_DIR`.
    Dir(PathBuf),
    /// The per-user cache, from an earlier download.
    Cache(PathBuf),
    /// Downloaded just now into the cache.
    Downloaded(PathBuf),
    /// The 10,000-digit sample compiled into the crate.
    Bundled,
}

/// MNIST train and test splits and where they came from.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// Training images.
    pub train: MnistSplit,
    /// Held-out images.
    pub test: MnistSplit,
    /// Their origin.
    pub source: DataSource,
}

impl Mnist {
    /// One line for the start of a run: `data: bundled MNIST sample, 8000 train / 2000 test`.
    pub fn describe(&self) -> String {
        let what = match &self.source {
            DataSource::Dir(d) => format!("MNIST from {}", d.display()),
            DataSource::Cache(d) => format!("full MNIST from the cache {}", d.display()),
            DataSource::Downloaded(d) => format!("full MNIST, downloaded to {}", d.display()),
            DataSource::Bundled => "bundled MNIST sample".to_string(),
        };
        format!(
            "data: {what}, {} train / {} test",
            self.train.len(),
            self.test.len()
        )
    }

    /// The bundled sample: 8,000 training and 2,000 held-out digits.
    pub fn bundled() -> Result<Self> {
        let p = |n: &str| PathBuf::from(format!("<bundled>/{n}"));
        let split = |img: &[u8], lab: &[u8], iname: &str, lname: &str| -> Result<MnistSplit> {
            let ip = p(iname);
            let lp = p(lname);
            let images = idx::parse_images(&ip, &idx::decode_maybe_gzip(&ip, img.to_vec())?)?;
            let labels = idx::parse_labels(
                &lp,
                &idx::decode_maybe_gzip(&lp, lab.to_vec())?,
                CLASSES as u8,
            )?;
            MnistSplit::new(images, labels, &ip)
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
        })
    }

    /// Reads the four files from `dir` (standard names, raw or `.gz`).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let files = find_files(dir)?;
        let [ti, tl, vi, vl] = &files;
        let train = MnistSplit::new(idx::read_images(ti)?, idx::read_labels(tl)?, ti)?;
        let test = MnistSplit::new(idx::read_images(vi)?, idx::read_labels(vl)?, vi)?;
        Ok(Self {
            train,
            test,
            source: DataSource::Dir(dir.to_path_buf()),
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

/// Finds the four MNIST files in `dir`, raw or `.gz`; the error lists what is missing.
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
    let mut found: Vec<Option<PathBuf>> = Vec::new();
    for names in NAMES {
        let hit = names
            .iter()
            .flat_map(|n| [dir.join(n), dir.join(format!("{n}.gz"))])
            .find(|p| p.is_file());
        found.push(hit);
    }
    let missing: Vec<String> = found
        .iter()
        .zip(NAMES)
        .filter(|(f, _)| f.is_none())
        .map(|(_, n)| format!("{}[.gz]", n[0]))
        .collect();
    if !missing.is_empty() {
        return Err(Error::data(
            dir,
            format!("missing MNIST files: {}", missing.join(", ")),
        ));
    }
    let mut it = found.into_iter().flatten();
    Ok(std::array::from_fn(|_| {
        it.next().expect("four files found")
    }))
}

/// How to find the data.
#[derive(Debug, Clone)]
pub struct DataOptions {
    /// An explicit directory (`--data-dir`); falls back to `$NETCALC_MNIST_DIR`.
    pub data_dir: Option<PathBuf>,
    /// Never download.
    pub offline: bool,
    /// Where downloads are kept (default: [`default_cache_dir`]).
    pub cache_dir: PathBuf,
    /// Mirrors to download full MNIST from, tried in turn.
    pub mirrors: Vec<String>,
    /// The files to download, with checksums.
    pub files: Vec<RemoteFile>,
    /// Connect timeout per mirror.
    pub connect_timeout: Duration,
    /// Show progress bars.
    pub progress: bool,
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            offline: false,
            cache_dir: default_cache_dir(),
            mirrors: download::MNIST_MIRRORS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            files: full_mnist_files(),
            connect_timeout: Duration::from_secs(5),
            progress: false,
        }
    }
}

fn cache_complete(opts: &DataOptions) -> bool {
    opts.files.iter().all(|f| is_cached(&opts.cache_dir, f))
}

/// Loads MNIST from, in order: `data_dir` (or `$NETCALC_MNIST_DIR`), the cache, a download
/// (unless `offline`), the bundled sample. A download that fails is reported through `warn` and
/// the next source is used; a `data_dir` that is missing or broken is an error.
pub fn load_mnist(opts: &DataOptions, mut warn: impl FnMut(&str)) -> Result<Mnist> {
    let env_dir = std::env::var(DATA_DIR_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    if let Some(dir) = opts.data_dir.clone().or(env_dir) {
        return Mnist::from_dir(&dir);
    }
    if cache_complete(opts) {
        let mut m = Mnist::from_dir(&opts.cache_dir)?;
        m.source = DataSource::Cache(opts.cache_dir.clone());
        return Ok(m);
    }
    if !opts.offline {
        match download_files(
            &opts.mirrors,
            &opts.files,
            &opts.cache_dir,
            opts.connect_timeout,
            opts.progress,
        ) {
            Ok(()) => {
                let mut m = Mnist::from_dir(&opts.cache_dir)?;
                m.source = DataSource::Downloaded(opts.cache_dir.clone());
                return Ok(m);
            }
            Err(e) => warn(&format!(
                "full MNIST not available ({e}); using the bundled sample"
            )),
        }
    }
    Mnist::bundled()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_device, values};

    #[test]
    fn bundled_sample_is_8000_plus_2000_real_digits() {
        let m = Mnist::bundled().unwrap();
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
    }

    #[test]
    fn batches_are_normalized_and_shaped() {
        let d = test_device();
        let m = Mnist::bundled().unwrap();
        let b = m.train.batch(&[0, 5, 7], &d, None);
        assert_eq!(b.images.dims(), [3, 1, 28, 28]);
        let labels: Vec<i64> = b.labels.into_data().convert::<i64>().try_to_vec().unwrap();
        assert_eq!(
            labels,
            vec![
                m.train.labels[0] as i64,
                m.train.labels[5] as i64,
                m.train.labels[7] as i64
            ]
        );
        let px = values(b.images);
        // background pixels are (0 - 0.1307)/0.3081 = -0.424213
        assert!((px[0] - (-0.424_213)).abs() < 1e-5);
        let max = px.iter().cloned().fold(f32::MIN, f32::max);
        // ink 255 -> (1 - 0.1307)/0.3081 = 2.821487
        assert!((max - 2.821_487).abs() < 1e-4, "{max}");
    }

    #[test]
    fn shifting_moves_the_ink_and_fills_background() {
        let mut img = vec![0u8; PIXELS];
        img[10 * SIDE + 10] = 255;
        let mut out = Vec::new();
        push_shifted(&mut out, &img, 2, -1);
        let hot: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, _)| i)
            .collect();
        // (x, y) = (10, 10) -> (12, 9)
        assert_eq!(hot, vec![9 * SIDE + 12]);
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
        let err = load_mnist(&opts, |_| {}).unwrap_err().to_string();
        assert!(
            err.contains("missing MNIST files: train-labels-idx1-ubyte[.gz], t10k-images"),
            "{err}"
        );
        let opts = DataOptions {
            data_dir: Some(dir.path().join("nope")),
            ..DataOptions::default()
        };
        assert!(load_mnist(&opts, |_| {}).is_err());
    }

    #[test]
    fn data_dir_with_sample_names_loads() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-sample");
        let m = Mnist::from_dir(&src).unwrap();
        assert_eq!((m.train.len(), m.test.len()), (8000, 2000));
        let b = Mnist::bundled().unwrap();
        assert_eq!(m.train, b.train);
    }
}
