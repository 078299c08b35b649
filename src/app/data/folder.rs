//! Datasets of the user's own images: a folder with one sub-folder per class, as Keras'
//! `image_dataset_from_directory` and torchvision's `ImageFolder` read them.
//!
//! ```text
//! DIR/train/<class>/*.png|jpg|jpeg     DIR/<class>/*.png|jpg|jpeg
//! DIR/test/<class>/…                   and --val-split F (a stratified share of each class)
//! ```
//!
//! - **Classes** are the sub-folders' names, sorted; every class of `train/` must be in
//!   `test/` and the other way round.
//! - **Files**: `.png`, `.jpg` and `.jpeg` (any case), read by their content, not their name.
//!   Other files are left out and counted. Sub-folders of a class are not read.
//! - **Channels**: the model's input decides. Grey (1 channel) from colour is the luma
//!   `(2126 R + 7152 G + 722 B) / 10000`, rounded (Rec. 709 luma); RGB (3 channels) from
//!   grey repeats the grey. Transparency is composited onto black (`value × alpha`). 16-bit
//!   images are scaled to 8 bits (`v · 255 / 65535`, rounded).
//! - **Size**: resized to the model's `H × W` with a triangle (bilinear) filter; the aspect
//!   ratio is not kept (as Keras' default).
//! - **Decoded once**: by default the folder is decoded, in parallel, into a packed file
//!   ([`super::pack`]) in netcalc's cache, keyed by the folder's fingerprint and the shape;
//!   later runs, resumes and `eval` map that file instead of decoding again, and training
//!   reads batches from the map, so a folder of any size trains in bounded memory.
//! - **In memory** (`in_memory`, `--in-memory`): each image is decoded for this run and kept
//!   as `u8`; a dataset whose pixels would exceed the limit (4 GiB by default) is refused
//!   before any image is decoded, with the estimate.
//! - **Limits**: each file is decoded within the default
//!   [`ImageLimits`]: no file over 64 MiB, and no image that
//!   declares more than 8,192 pixels a side or 24 million in all.
//! - **Bad files**: an unreadable, truncated or non-image file is an error that names it;
//!   with `skip_bad` it is left out instead, and every such file is listed in
//!   [`Dataset::skipped`](super::Dataset::skipped).

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{DataInfo, DataSource, Dataset, Normalization, Preprocess, Split};
use crate::app::images::{self, ImageLimits};
use crate::error::{Error, Result};

pub use crate::app::images::{MAX_FILE_BYTES, MAX_SIDE};
/// The default memory limit for a dataset's pixels: 4 GiB.
pub const DEFAULT_MAX_MEMORY: u64 = 4 << 30;
/// The most classes a folder may have.
pub const MAX_CLASSES: usize = 65_536;

/// How to read an image folder.
#[derive(Debug, Clone)]
pub struct FolderOptions {
    /// The model's input `[C, H, W]` (C is 1 or 3).
    pub shape: [usize; 3],
    /// Without `train/` and `test/`: the share of each class held out, in (0, 1).
    pub val_split: Option<f64>,
    /// Seeds the held-out split.
    pub seed: u64,
    /// The most bytes the dataset's pixels may take.
    pub max_memory: u64,
    /// Leave unreadable images out (and list them) instead of stopping at the first.
    pub skip_bad: bool,
    /// Show a progress bar while decoding.
    pub progress: bool,
    /// Decode into memory for this run only (within `max_memory`) instead of reading the
    /// folder's packed file (written on first use).
    pub in_memory: bool,
    /// Where packed folders are kept: `None` is `packs/` in netcalc's cache directory
    /// ([`super::download::cache_root`]).
    pub pack_dir: Option<PathBuf>,
}

impl FolderOptions {
    /// Images of `shape`, no held-out split, seed 0, 4 GiB, stop at a bad file, no bar.
    pub fn new(shape: [usize; 3]) -> Self {
        Self {
            shape,
            val_split: None,
            seed: 0,
            max_memory: DEFAULT_MAX_MEMORY,
            skip_bad: false,
            progress: false,
            in_memory: false,
            pack_dir: None,
        }
    }

    /// The directory packed folders are kept in.
    pub fn pack_dir(&self) -> PathBuf {
        self.pack_dir
            .clone()
            .unwrap_or_else(|| super::download::cache_root().join("packs"))
    }
}

/// One image file and its class.
pub(super) struct Entry {
    pub(super) path: PathBuf,
    pub(super) class: u32,
}

/// A folder's classes and image files, split into train and test, before any is decoded.
pub(super) struct Listing {
    pub(super) classes: Vec<String>,
    pub(super) train: Vec<Entry>,
    pub(super) test: Vec<Entry>,
    /// Files that are not images.
    pub(super) ignored: usize,
}

/// Reads the image folder `dir` (see the [module docs](self)): from its packed file (made
/// now if there is none), or with `in_memory` decoded into memory.
pub fn load_folder(dir: &Path, opts: &FolderOptions) -> Result<Dataset> {
    if opts.in_memory {
        load_in_memory(dir, opts)
    } else {
        super::pack::load_cached(dir, opts)
    }
}

/// An error unless `opts.shape` can be read from images and `dir` is a folder.
pub(super) fn check(dir: &Path, opts: &FolderOptions) -> Result<()> {
    let [c, h, w] = opts.shape;
    if !(c == 1 || c == 3) || h == 0 || w == 0 {
        return Err(Error::config(
            "model.features.input",
            format!(
                "is {:?}; images are read as 1 (grey) or 3 (RGB) channels of at least 1×1",
                opts.shape
            ),
        ));
    }
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "image folder not found"),
        ));
    }
    Ok(())
}

/// The folder's classes and files (see the [module docs](self) for the layouts); checks the
/// shape and the layout, decodes nothing.
pub(super) fn list(dir: &Path, opts: &FolderOptions) -> Result<Listing> {
    check(dir, opts)?;
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    let (classes, train, test, ignored) = if train_dir.is_dir() || test_dir.is_dir() {
        if opts.val_split.is_some() {
            return Err(Error::setting(
                "val-split",
                format!(
                    "{} has train/ and test/ already; leave --val-split out",
                    dir.display()
                ),
            ));
        }
        for d in [&train_dir, &test_dir] {
            if !d.is_dir() {
                return Err(Error::data(
                    dir,
                    format!("has {} but no {}", other(d), name_of(d)),
                ));
            }
        }
        let (classes, train, ig1) = scan(&train_dir)?;
        let (test_classes, test, ig2) = scan(&test_dir)?;
        if let Some(missing) = classes.iter().find(|c| !test_classes.contains(c)) {
            return Err(Error::data(
                &test_dir,
                format!("has no folder for class `{missing}` of train/"),
            ));
        }
        if let Some(extra) = test_classes.iter().find(|c| !classes.contains(c)) {
            return Err(Error::data(
                &test_dir,
                format!("has class `{extra}`, which train/ does not"),
            ));
        }
        (classes, train, test, ig1 + ig2)
    } else {
        let f = opts.val_split.ok_or_else(|| {
            Error::setting(
                "val-split",
                format!(
                    "{} has no train/ and test/: give --val-split F to hold out a share F of each class",
                    dir.display()
                ),
            )
        })?;
        if !(f > 0.0 && f < 1.0) {
            return Err(Error::setting(
                "val-split",
                format!("must be between 0 and 1 (both left out), got {f}"),
            ));
        }
        let (classes, all, ignored) = scan(dir)?;
        let (train, test) = stratified(all, &classes, dir, f, opts.seed)?;
        (classes, train, test, ignored)
    };
    Ok(Listing {
        classes,
        train,
        test,
        ignored,
    })
}

/// The folder decoded into memory, within `max_memory`.
fn load_in_memory(dir: &Path, opts: &FolderOptions) -> Result<Dataset> {
    let Listing {
        classes,
        train,
        test,
        ignored,
    } = list(dir, opts)?;
    let [c, h, w] = opts.shape;
    let total = (train.len() + test.len()) as u64;
    let per_image = (c * h * w) as u64;
    let estimate = total.saturating_mul(per_image);
    if estimate > opts.max_memory {
        return Err(Error::setting(
            "max-memory",
            format!(
                "{total} images of {c}×{h}×{w} take {} in memory, more than the limit of {} (raise it with --max-memory, or leave --in-memory out to read them from a packed file)",
                bytes(estimate),
                bytes(opts.max_memory)
            ),
        ));
    }
    let bar = progress_bar(opts.progress, total);
    let mut skipped = Vec::new();
    let train = decode_all(&train, opts, &bar, &mut skipped)?;
    let test = decode_all(&test, opts, &bar, &mut skipped)?;
    bar.finish_and_clear();
    for (split, what) in [(&train, "train"), (&test, "test")] {
        if split.0.is_empty() {
            return Err(no_readable(dir, what));
        }
    }
    let normalization = Normalization::of(&train.0, opts.shape);
    let split = |(pixels, labels): (Vec<u8>, Vec<u32>)| Split {
        pixels: pixels.into(),
        labels,
        shape: opts.shape,
        normalization: normalization.clone(),
    };
    Ok(Dataset {
        train: split(train),
        test: split(test),
        source: DataSource::Folder(dir.to_path_buf()),
        name: folder_name(dir),
        info: DataInfo {
            classes,
            shape: opts.shape,
            normalization,
            preprocess: Preprocess::Resize,
        },
        skipped,
        ignored,
        packed: None,
    })
}

/// The error for a split in which no image could be read.
pub(super) fn no_readable(dir: &Path, what: &str) -> Error {
    Error::data(dir, format!("no readable image in the {what} split"))
}

/// The dataset's name: the folder's.
pub(super) fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "images".into())
}

fn name_of(p: &Path) -> String {
    format!("{}/", p.file_name().unwrap_or_default().to_string_lossy())
}

fn other(p: &Path) -> &'static str {
    if p.ends_with("train") {
        "test/"
    } else {
        "train/"
    }
}

/// `n` bytes, in GiB or MiB.
pub(super) fn bytes(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    }
}

/// The class folders of `dir` (sorted) and their image files; the count of other files.
/// Errors: no class folder, a single class, an empty class, a folder name that is not UTF-8,
/// a folder that cannot be read (a symlink loop, no permission).
fn scan(dir: &Path) -> Result<(Vec<String>, Vec<Entry>, usize)> {
    let mut classes: Vec<(String, PathBuf)> = Vec::new();
    for entry in read_dir(dir)? {
        let path = entry.path();
        // follows symbolic links; a loop or a dangling link is an error naming it
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if !meta.is_dir() {
            continue;
        }
        let name = entry.file_name().into_string().map_err(|raw| {
            Error::data(
                &path,
                format!(
                    "the folder name {raw:?} is not UTF-8; class names come from folder names, rename it"
                ),
            )
        })?;
        classes.push((name, path));
    }
    classes.sort();
    match classes.len() {
        0 => {
            return Err(Error::data(
                dir,
                "has no class folders (expected one sub-folder of images per class)",
            ));
        }
        1 => {
            return Err(Error::data(
                dir,
                format!(
                    "has one class folder (`{}`); a classifier needs at least 2",
                    classes[0].0
                ),
            ));
        }
        n if n > MAX_CLASSES => {
            return Err(Error::data(
                dir,
                format!("has {n} class folders, more than {MAX_CLASSES}"),
            ));
        }
        _ => {}
    }
    let mut entries = Vec::new();
    let mut ignored = 0;
    for (k, (name, path)) in classes.iter().enumerate() {
        let mut files = Vec::new();
        for entry in read_dir(path)? {
            let p = entry.path();
            let is_image = p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"));
            if is_image {
                files.push(p);
            } else {
                ignored += 1;
            }
        }
        if files.is_empty() {
            return Err(Error::data(
                path,
                format!("class `{name}` has no .png, .jpg or .jpeg images"),
            ));
        }
        files.sort();
        entries.extend(files.into_iter().map(|path| Entry {
            path,
            class: k as u32,
        }));
    }
    Ok((
        classes.into_iter().map(|(n, _)| n).collect(),
        entries,
        ignored,
    ))
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    std::fs::read_dir(dir)
        .and_then(|r| r.collect::<std::io::Result<Vec<_>>>())
        .map_err(|e| Error::io(dir, e))
}

/// Each class's files shuffled by `seed`, a share `f` of them (at least one) held out.
fn stratified(
    all: Vec<Entry>,
    classes: &[String],
    dir: &Path,
    f: f64,
    seed: u64,
) -> Result<(Vec<Entry>, Vec<Entry>)> {
    let mut by_class: Vec<Vec<Entry>> = (0..classes.len()).map(|_| Vec::new()).collect();
    for e in all {
        by_class[e.class as usize].push(e);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (k, mut files) in by_class.into_iter().enumerate() {
        if files.len() < 2 {
            return Err(Error::data(
                dir.join(&classes[k]),
                format!(
                    "class `{}` has {} image; --val-split needs at least 2 of each class (one to train on, one to hold out)",
                    classes[k],
                    files.len()
                ),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(crate::seed::stream(seed, k as u64));
        files.shuffle(&mut rng);
        let held = ((files.len() as f64 * f).round() as usize).clamp(1, files.len() - 1);
        test.extend(files.drain(..held));
        train.extend(files);
    }
    Ok((train, test))
}

pub(super) fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("decoding images [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Decodes `entries` into `(pixels, labels)` in memory ([`decode_each`]).
fn decode_all(
    entries: &[Entry],
    opts: &FolderOptions,
    bar: &ProgressBar,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<(Vec<u8>, Vec<u32>)> {
    let per_image = opts.shape.iter().product::<usize>();
    let mut pixels = Vec::with_capacity(entries.len() * per_image);
    let mut labels = Vec::with_capacity(entries.len());
    decode_each(entries, opts, bar, skipped, |px, class| {
        pixels.extend_from_slice(px);
        labels.push(class);
        Ok(())
    })?;
    Ok((pixels, labels))
}

/// Images decoded at once (in parallel) before they are handed on.
pub(super) const DECODE_CHUNK: usize = 1024;

/// Decodes `entries` [`DECODE_CHUNK`] at a time (in parallel within a chunk, each as
/// [`read_image`] reads it) and gives each readable image's pixels and class to `sink`, in
/// the entries' order; a bad file is an error, or with `skip_bad` is added to `skipped` and
/// left out. What the folder is decoded into (memory, a packed file) is the sink's.
pub(super) fn decode_each(
    entries: &[Entry],
    opts: &FolderOptions,
    bar: &ProgressBar,
    skipped: &mut Vec<(PathBuf, String)>,
    mut sink: impl FnMut(&[u8], u32) -> Result<()>,
) -> Result<()> {
    for chunk in entries.chunks(DECODE_CHUNK) {
        let decoded: Vec<Result<Vec<u8>>> = chunk
            .par_iter()
            .map(|e| {
                let r = read_image(&e.path, opts.shape);
                bar.inc(1);
                r
            })
            .collect();
        for (e, r) in chunk.iter().zip(decoded) {
            match r {
                Ok(px) => sink(&px, e.class)?,
                Err(err) if opts.skip_bad => skipped.push((e.path.clone(), err.to_string())),
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// One image file as a model of input `[C, H, W]` sees it: `C·H·W` bytes, channel after
/// channel (see the [module docs](self) for the conversions), within the default
/// [`ImageLimits`].
pub fn read_image(path: &Path, shape: [usize; 3]) -> Result<Vec<u8>> {
    let limits = ImageLimits::default();
    let bytes = images::read_bytes(path, &limits)?;
    images::prepare_resized(&bytes, path, shape, &limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageBuffer, Luma};

    fn write_png(path: &Path, img: DynamicImage) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save(path).unwrap();
    }

    #[test]
    fn a_folder_with_a_held_out_share_of_each_class() {
        let dir = tempfile::tempdir().unwrap();
        for (class, v) in [("cat", 10u8), ("dog", 200u8)] {
            for i in 0..5 {
                let img = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(3, 3, Luma([v])));
                write_png(&dir.path().join(class).join(format!("{i}.png")), img);
            }
        }
        std::fs::write(dir.path().join("cat/notes.txt"), "not an image").unwrap();
        let mut opts = FolderOptions::new([1, 2, 2]);
        opts.val_split = Some(0.4);
        opts.in_memory = true;
        let d = load_folder(dir.path(), &opts).unwrap();
        assert_eq!(d.info.classes, ["cat", "dog"]);
        // 2 of 5 of each class held out
        assert_eq!((d.train.len(), d.test.len()), (6, 4));
        let count = |s: &Split, k| s.labels.iter().filter(|&&l| l == k).count();
        assert_eq!((count(&d.test, 0), count(&d.test, 1)), (2, 2));
        // every cat pixel is 10, every dog pixel 200: the labels follow the folders
        for (i, &l) in d.train.labels.iter().enumerate() {
            assert_eq!(d.train.image(i), &[if l == 0 { 10 } else { 200 }; 4]);
        }
        // mean of 3 cats and 3 dogs: (10 + 200) / 2 / 255
        assert!((d.info.normalization.mean[0] - 105.0 / 255.0).abs() < 1e-6);
        // the same seed, the same split
        let again = load_folder(dir.path(), &opts).unwrap();
        assert_eq!(again.test, d.test);
    }
}
