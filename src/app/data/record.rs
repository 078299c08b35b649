//! Where a run's data came from, as its run directory records it (`source.json`): which source
//! (the bundled sample, an IDX set by name or directory, an image folder) with absolute paths,
//! the options that shape the data, and a [`Fingerprint`] of the files. `train --resume DIR`
//! reloads the data from the record alone and refuses data whose fingerprint has changed;
//! several training processes compare their fingerprints before they train together.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::folder::{self, FolderOptions};
use super::source::bundled_files;
use super::{DataSource, Dataset, NamedDataset, find_files};
use crate::error::{Error, Result};

/// Which source the data came from, with absolute paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecordedSource {
    /// MNIST's 10,000-digit sample compiled into netcalc.
    Bundled,
    /// Four IDX files in a directory.
    Idx {
        /// Which dataset they are (class names, normalisation).
        dataset: NamedDataset,
        /// The directory, absolute.
        dir: PathBuf,
        /// How the directory was found.
        origin: IdxOrigin,
    },
    /// A folder of images, one sub-folder per class.
    Folder {
        /// The folder, absolute.
        dir: PathBuf,
    },
    /// A packed file of decoded images (`--data FILE`).
    Pack {
        /// The file, absolute.
        file: PathBuf,
    },
}

/// How an IDX directory was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdxOrigin {
    /// `--data-dir`.
    DataDir,
    /// `$NETCALC_MNIST_DIR`.
    Env,
    /// The per-user download cache (`--dataset`).
    Cache,
}

/// A cheap, exact-enough identity of a dataset's files: how many, their total size, and a
/// SHA-256 over their sorted relative names and sizes (for IDX files, over their contents too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// Files that make up the data.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files, {} bytes, sha256 {}",
            self.files,
            self.bytes,
            &self.sha256[..self.sha256.len().min(12)]
        )
    }
}

impl Fingerprint {
    /// The four IDX files in `dir` (found as [`find_files`] finds them): names, sizes and
    /// contents.
    pub fn of_idx_dir(dir: &Path) -> Result<Self> {
        let files = find_files(dir)?;
        let mut named = Vec::with_capacity(4);
        for path in &files {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            named.push((name, bytes));
        }
        Ok(Self::of_contents(
            named.iter().map(|(n, b)| (n.as_str(), b.as_slice())),
        ))
    }

    /// The bundled sample.
    pub fn bundled() -> Self {
        Self::of_contents(bundled_files())
    }

    fn of_contents<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut hash = Sha256::new();
        let (mut count, mut total) = (0u64, 0u64);
        for (name, bytes) in files {
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
            count += 1;
            total += bytes.len() as u64;
        }
        Self {
            files: count,
            bytes: total,
            sha256: hex(&hash.finalize()),
        }
    }

    /// An image folder: every file with an image extension (`.png`, `.jpg`, `.jpeg`) up to
    /// three levels down (`DIR/train/<class>/x.png`), by relative name and size. Contents are
    /// not read, so a folder of any size is fingerprinted in the time a directory listing
    /// takes; copying the folder elsewhere keeps its fingerprint.
    pub fn of_folder(dir: &Path) -> Result<Self> {
        let mut files = Vec::new();
        walk(dir, dir, 0, &mut files)?;
        files.sort();
        let mut hash = Sha256::new();
        let mut total = 0u64;
        for (name, size) in &files {
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update(size.to_le_bytes());
            total += size;
        }
        Ok(Self {
            files: files.len() as u64,
            bytes: total,
            sha256: hex(&hash.finalize()),
        })
    }

    /// What differs between `self` (recorded) and `now`, in words; `None` when they agree.
    pub fn difference(&self, now: &Fingerprint) -> Option<String> {
        if self == now {
            return None;
        }
        let mut parts = Vec::new();
        if self.files != now.files {
            parts.push(format!("{} files then, {} now", self.files, now.files));
        }
        if self.bytes != now.bytes {
            parts.push(format!("{} bytes then, {} now", self.bytes, now.bytes));
        }
        if parts.is_empty() {
            parts.push("the same number and size of files, but other names or contents".into());
        }
        Some(parts.join("; "))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// The image files under `dir`, as (name relative to `root`, size); three levels at most, so a
/// symlink loop ends.
fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<(String, u64)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            // a dangling link or an unreadable entry is not data
            Err(_) => continue,
        };
        if meta.is_dir() {
            if depth < 2 {
                walk(root, &path, depth + 1, out)?;
            }
        } else if meta.is_file() && is_image(&path) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().replace('\\', "/"), meta.len()));
        }
    }
    Ok(())
}

/// A path made absolute (symlinks resolved where it exists).
pub fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Where a run's data came from and what shaped it: the run directory's `source.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRecord {
    /// Which source.
    pub source: RecordedSource,
    /// An image folder without `train/` and `test/`: the share of each class held out.
    #[serde(default)]
    pub val_split: Option<f64>,
    /// Unreadable images were left out instead of stopping the run.
    #[serde(default)]
    pub skip_bad: bool,
    /// The most bytes an image folder's pixels may take (with `in_memory`).
    pub max_memory: u64,
    /// An image folder was decoded into memory instead of read from its packed file.
    #[serde(default)]
    pub in_memory: bool,
    /// Only the first N training images were used (also in the run's config).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The files' fingerprint when the run started.
    pub fingerprint: Fingerprint,
}

impl DataRecord {
    /// The record of `data`, loaded with `opts` (an image folder's options; their shape and
    /// seed are the run config's), `limit` and `data_dir_given` (an IDX directory came from
    /// `--data-dir`, not `$NETCALC_MNIST_DIR`).
    pub fn of(
        data: &Dataset,
        opts: &FolderOptions,
        limit: Option<usize>,
        data_dir_given: bool,
    ) -> Result<Self> {
        let dataset = NamedDataset::from_name(&data.name);
        let (source, fingerprint) = match (&data.source, dataset) {
            (DataSource::Bundled, _) => (RecordedSource::Bundled, Fingerprint::bundled()),
            (DataSource::Folder(dir), _) => (
                RecordedSource::Folder { dir: absolute(dir) },
                Fingerprint::of_folder(dir)?,
            ),
            (DataSource::Pack(file), _) => (
                RecordedSource::Pack {
                    file: absolute(file),
                },
                super::pack::identity(file)?,
            ),
            (DataSource::Dir(dir), Some(dataset)) => (
                RecordedSource::Idx {
                    dataset,
                    dir: absolute(dir),
                    origin: if data_dir_given {
                        IdxOrigin::DataDir
                    } else {
                        IdxOrigin::Env
                    },
                },
                Fingerprint::of_idx_dir(dir)?,
            ),
            (DataSource::Cache(dir) | DataSource::Downloaded(dir), Some(dataset)) => (
                RecordedSource::Idx {
                    dataset,
                    dir: absolute(dir),
                    origin: IdxOrigin::Cache,
                },
                Fingerprint::of_idx_dir(dir)?,
            ),
            (_, None) => {
                return Err(Error::setting(
                    "data",
                    format!("`{}` is not a dataset netcalc knows by name", data.name),
                ));
            }
        };
        let folder = matches!(source, RecordedSource::Folder { .. });
        Ok(Self {
            source,
            val_split: if folder { opts.val_split } else { None },
            skip_bad: folder && opts.skip_bad,
            max_memory: opts.max_memory,
            in_memory: folder && opts.in_memory,
            limit,
            fingerprint,
        })
    }

    /// One line: `image folder /data/leaves (412 files, …)`.
    pub fn describe(&self) -> String {
        let what = match &self.source {
            RecordedSource::Bundled => "the bundled MNIST sample".to_string(),
            RecordedSource::Idx { dataset, dir, .. } => {
                format!("{} from {}", dataset.name(), dir.display())
            }
            RecordedSource::Folder { dir } => format!("the image folder {}", dir.display()),
            RecordedSource::Pack { file } => format!("the packed file {}", file.display()),
        };
        format!("{what} ({})", self.fingerprint)
    }

    /// Loads the data this record describes, images of `shape` (an image folder is split with
    /// `seed`), and checks that it is still the data the record was made from: a fingerprint
    /// that differs is an error that says how.
    pub fn load(&self, shape: [usize; 3], seed: u64, progress: bool) -> Result<Dataset> {
        let (data, now) = match &self.source {
            RecordedSource::Bundled => (Dataset::bundled()?, Fingerprint::bundled()),
            RecordedSource::Idx {
                dataset,
                dir,
                origin,
            } => {
                let now = Fingerprint::of_idx_dir(dir)?;
                let mut data = Dataset::from_idx_dir(dir, *dataset)?;
                if *origin == IdxOrigin::Cache {
                    data.source = DataSource::Cache(dir.clone());
                }
                (data, now)
            }
            RecordedSource::Folder { dir } => {
                let now = Fingerprint::of_folder(dir)?;
                let opts = FolderOptions {
                    val_split: self.val_split,
                    seed,
                    max_memory: self.max_memory,
                    skip_bad: self.skip_bad,
                    progress,
                    in_memory: self.in_memory,
                    ..FolderOptions::new(shape)
                };
                (folder::load_folder(dir, &opts)?, now)
            }
            RecordedSource::Pack { file } => {
                let p = super::pack::open_given(file)?;
                (p.data, p.identity)
            }
        };
        self.check_fingerprint(&now)?;
        Ok(data)
    }

    /// An error naming what differs when `now` is not the recorded fingerprint.
    pub fn check_fingerprint(&self, now: &Fingerprint) -> Result<()> {
        match self.fingerprint.difference(now) {
            None => Ok(()),
            Some(diff) => Err(Error::setting(
                "data",
                format!(
                    "{} has changed since the run started ({diff}); recorded {}, now {now}",
                    self.source_name(),
                    self.fingerprint
                ),
            )),
        }
    }

    fn source_name(&self) -> String {
        match &self.source {
            RecordedSource::Bundled => "the bundled sample".into(),
            RecordedSource::Idx { dir, .. } | RecordedSource::Folder { dir } => {
                dir.display().to_string()
            }
            RecordedSource::Pack { file } => file.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    #[test]
    fn folder_fingerprint_follows_names_and_sizes_not_places() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "train/cat/1.png", b"12345");
        write(a.path(), "train/dog/2.JPG", b"123");
        write(a.path(), "test/cat/3.png", b"1");
        write(a.path(), "notes.txt", b"not data");
        let fa = Fingerprint::of_folder(a.path()).unwrap();
        assert_eq!((fa.files, fa.bytes), (3, 9));
        // a copy elsewhere has the same fingerprint
        let b = tempfile::tempdir().unwrap();
        write(b.path(), "test/cat/3.png", b"9");
        write(b.path(), "train/dog/2.JPG", b"abc");
        write(b.path(), "train/cat/1.png", b"abcde");
        assert_eq!(Fingerprint::of_folder(b.path()).unwrap(), fa);
        // a renamed file: same count and size, another hash
        std::fs::rename(
            b.path().join("test/cat/3.png"),
            b.path().join("test/cat/4.png"),
        )
        .unwrap();
        let fb = Fingerprint::of_folder(b.path()).unwrap();
        assert_eq!((fb.files, fb.bytes), (3, 9));
        let diff = fa.difference(&fb).unwrap();
        assert!(diff.contains("other names or contents"), "{diff}");
        // one more image
        write(b.path(), "test/dog/5.png", b"12");
        let diff = fa
            .difference(&Fingerprint::of_folder(b.path()).unwrap())
            .unwrap();
        assert_eq!(diff, "3 files then, 4 now; 9 bytes then, 11 now");
    }

    #[test]
    fn idx_fingerprint_reads_contents() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-sample");
        let f = Fingerprint::of_idx_dir(&src).unwrap();
        assert_eq!(f.files, 4);
        // the files on disk are the bundled ones, under the same names
        assert_eq!(f, Fingerprint::bundled());
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
        assert_eq!(Fingerprint::of_idx_dir(dir.path()).unwrap(), f);
        // one byte changed inside a file: same size, another fingerprint
        let p = dir.path().join("test-labels-idx1-ubyte.gz");
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        let g = Fingerprint::of_idx_dir(dir.path()).unwrap();
        assert_eq!((g.files, g.bytes), (f.files, f.bytes));
        assert_ne!(g.sha256, f.sha256);
    }

    #[test]
    fn a_record_round_trips_through_json_and_refuses_changed_data() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["a", "b"] {
            for i in 0..4 {
                let img = image::GrayImage::from_pixel(4, 4, image::Luma([i * 60]));
                let p = dir.path().join(format!("{class}/{i}.png"));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                img.save(&p).unwrap();
            }
        }
        let opts = FolderOptions {
            val_split: Some(0.25),
            in_memory: true,
            ..FolderOptions::new([1, 4, 4])
        };
        let data = folder::load_folder(dir.path(), &opts).unwrap();
        let record = DataRecord::of(&data, &opts, Some(6), false).unwrap();
        assert_eq!(
            record.source,
            RecordedSource::Folder {
                dir: absolute(dir.path())
            }
        );
        assert_eq!((record.val_split, record.limit), (Some(0.25), Some(6)));
        let json = serde_json::to_string(&record).unwrap();
        let back: DataRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
        let again = back.load([1, 4, 4], 0, false).unwrap();
        assert_eq!(again.train, data.train);
        assert_eq!(again.test, data.test);
        std::fs::remove_file(dir.path().join("b/3.png")).unwrap();
        let err = back.load([1, 4, 4], 0, false).unwrap_err().to_string();
        assert!(
            err.contains("has changed since the run started (8 files then, 7 now"),
            "{err}"
        );
    }
}
