//! Where a dataset comes from: IDX files (a directory, the cache, a verified download, or
//! MNIST's bundled sample) or a folder of images, and the [`Dataset`] they load into.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::download::{RemoteFile, download_files, is_cached};
use super::{
    CLASSES, DATA_DIR_ENV, DataInfo, IMAGE_SHAPE, NamedDataset, Normalization, Split, folder, idx,
};
use crate::error::{Error, Result};

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

/// The bundled sample's four files, by name, in the order train images, train labels, test
/// images, test labels.
pub(crate) fn bundled_files() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    [
        ("train-images-idx3-ubyte.gz", bundled::TRAIN_IMAGES),
        ("train-labels-idx1-ubyte.gz", bundled::TRAIN_LABELS),
        ("test-images-idx3-ubyte.gz", bundled::TEST_IMAGES),
        ("test-labels-idx1-ubyte.gz", bundled::TEST_LABELS),
    ]
    .into_iter()
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
    /// A folder of images, one sub-folder per class (`--data DIR`).
    Folder(PathBuf),
    /// A packed file of decoded images (`--data FILE`, written by `netcalc pack`).
    Pack(PathBuf),
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
    /// The packed file the images are mapped from (`None`: they are in memory).
    pub packed: Option<PathBuf>,
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
            DataSource::Pack(f) => format!("images packed in {}", f.display()),
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
        if let (DataSource::Folder(_), Some(file)) = (&self.source, &self.packed) {
            line.push_str(&format!(", decoded once into {}", file.display()));
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
            packed: None,
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
            packed: None,
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
    /// A folder of images, one sub-folder per class, or a packed file of one (`--data`);
    /// else an IDX dataset.
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
            Some(file) if file.is_file() => {
                let p = super::pack::open_given(file)?;
                if p.header.shape != shape {
                    return Err(Error::data(
                        file,
                        format!(
                            "holds images of {:?}; the model takes {shape:?} (pack the folder again with --input-shape {}x{}x{})",
                            p.header.shape, shape[0], shape[1], shape[2]
                        ),
                    ));
                }
                Ok(p.data)
            }
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
    use crate::app::data::Preprocess;

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
