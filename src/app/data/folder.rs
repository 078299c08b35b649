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
//! - **Memory**: each image is decoded once, in parallel, and kept as `u8`; a dataset whose
//!   pixels would exceed the limit (4 GiB by default) is refused before any image is decoded,
//!   with the estimate. No image larger than 8,192 pixels a side (or than 64 MiB) is decoded.
//! - **Bad files**: an unreadable, truncated or non-image file is an error that names it;
//!   with `skip_bad` it is left out instead, and every such file is listed in
//!   [`Dataset::skipped`](super::Dataset::skipped).

use std::path::{Path, PathBuf};

use image::DynamicImage;
use image::imageops::FilterType;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{DataInfo, DataSource, Dataset, Normalization, Preprocess, Split};
use crate::error::{Error, Result};

/// The largest image file read: 64 MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// The largest width or height decoded: 8,192 pixels.
pub const MAX_SIDE: u32 = 8192;
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
        }
    }
}

/// One image file and its class.
struct Entry {
    path: PathBuf,
    class: u32,
}

/// Reads the image folder `dir` (see the [module docs](self)).
pub fn load_folder(dir: &Path, opts: &FolderOptions) -> Result<Dataset> {
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
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    let (classes, mut train, mut test, ignored) = if train_dir.is_dir() || test_dir.is_dir() {
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
    let total = (train.len() + test.len()) as u64;
    let per_image = (c * h * w) as u64;
    let estimate = total.saturating_mul(per_image);
    if estimate > opts.max_memory {
        return Err(Error::setting(
            "max-memory",
            format!(
                "{total} images of {c}×{h}×{w} take {} in memory, more than the limit of {} (raise it with --max-memory)",
                bytes(estimate),
                bytes(opts.max_memory)
            ),
        ));
    }
    let bar = progress_bar(opts.progress, total);
    let mut skipped = Vec::new();
    let train = decode_all(&mut train, opts, &bar, &mut skipped)?;
    let test = decode_all(&mut test, opts, &bar, &mut skipped)?;
    bar.finish_and_clear();
    for (split, what) in [(&train, "train"), (&test, "test")] {
        if split.0.is_empty() {
            return Err(Error::data(
                dir,
                format!("no readable image in the {what} split"),
            ));
        }
    }
    let normalization = Normalization::of(&train.0, opts.shape);
    let split = |(pixels, labels): (Vec<u8>, Vec<u32>)| Split {
        pixels,
        labels,
        shape: opts.shape,
        normalization: normalization.clone(),
    };
    Ok(Dataset {
        train: split(train),
        test: split(test),
        source: DataSource::Folder(dir.to_path_buf()),
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "images".into()),
        info: DataInfo {
            classes,
            shape: opts.shape,
            normalization,
            preprocess: Preprocess::Resize,
        },
        skipped,
        ignored,
    })
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
fn bytes(n: u64) -> String {
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

fn progress_bar(show: bool, total: u64) -> ProgressBar {
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

/// Decodes `entries` in parallel into `(pixels, labels)`; a bad file is an error, or with
/// `skip_bad` is added to `skipped` and left out.
fn decode_all(
    entries: &mut [Entry],
    opts: &FolderOptions,
    bar: &ProgressBar,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<(Vec<u8>, Vec<u32>)> {
    let decoded: Vec<(usize, Result<Vec<u8>>)> = entries
        .par_iter()
        .enumerate()
        .map(|(i, e)| {
            let r = read_image(&e.path, opts.shape);
            bar.inc(1);
            (i, r)
        })
        .collect();
    let per_image = opts.shape.iter().product::<usize>();
    let mut pixels = Vec::with_capacity(entries.len() * per_image);
    let mut labels = Vec::with_capacity(entries.len());
    for (i, r) in decoded {
        match r {
            Ok(px) => {
                pixels.extend_from_slice(&px);
                labels.push(entries[i].class);
            }
            Err(e) if opts.skip_bad => skipped.push((entries[i].path.clone(), e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok((pixels, labels))
}

/// One image file as a model of input `[C, H, W]` sees it: `C·H·W` bytes, channel after
/// channel (see the [module docs](self) for the conversions).
pub fn read_image(path: &Path, shape: [usize; 3]) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Error::Image {
            path: path.to_path_buf(),
            message: format!("the file is {len} bytes, more than the {MAX_FILE_BYTES} accepted"),
            source: None,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_image(&bytes, path, shape)
}

/// [`read_image`] for bytes already in memory (an upload); `origin` names them in errors.
pub fn decode_image(bytes: &[u8], origin: &Path, shape: [usize; 3]) -> Result<Vec<u8>> {
    let img = decode(bytes, origin)?;
    Ok(to_input(&img, shape))
}

/// Decodes PNG or JPEG bytes, refusing files above [`MAX_FILE_BYTES`] and images above
/// [`MAX_SIDE`] a side before their pixels are allocated.
pub(crate) fn decode(bytes: &[u8], origin: &Path) -> Result<DynamicImage> {
    let image_error = |message: String, e: Option<image::ImageError>| Error::Image {
        path: origin.to_path_buf(),
        message,
        source: e.map(|e| Box::new(e) as _),
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(image_error(
            format!(
                "the image is {} bytes, more than the {MAX_FILE_BYTES} accepted",
                bytes.len()
            ),
            None,
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(origin, e))?;
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => image_error(
            format!("the image is larger than {MAX_SIDE}×{MAX_SIDE} pixels: {e}"),
            Some(e),
        ),
        e => image_error(format!("cannot read the image: {e}"), Some(e)),
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(image_error("the image is empty".into(), None));
    }
    Ok(img)
}

/// `img` converted to `C` channels (alpha composited onto black, 16 bits scaled to 8),
/// resized to `H × W`, channel after channel.
fn to_input(img: &DynamicImage, [c, h, w]: [usize; 3]) -> Vec<u8> {
    let rgba = img.to_rgba8();
    let (iw, ih) = rgba.dimensions();
    // composite onto black: each colour times its alpha
    let mut rgb = image::RgbImage::new(iw, ih);
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = src[3] as u32;
        for k in 0..3 {
            dst[k] = ((src[k] as u32 * a + 127) / 255) as u8;
        }
    }
    let (w32, h32) = (w as u32, h as u32);
    let sized = if (iw, ih) == (w32, h32) {
        rgb
    } else {
        image::imageops::resize(&rgb, w32, h32, FilterType::Triangle)
    };
    if c == 1 {
        sized
            .pixels()
            .map(|p| {
                ((2126 * p[0] as u32 + 7152 * p[1] as u32 + 722 * p[2] as u32 + 5000) / 10000) as u8
            })
            .collect()
    } else {
        let raw = sized.into_raw();
        let plane = w * h;
        let mut out = vec![0u8; 3 * plane];
        for (i, px) in raw.chunks_exact(3).enumerate() {
            for k in 0..3 {
                out[k * plane + i] = px[k];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgb, Rgba};

    fn write_png(path: &Path, img: DynamicImage) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save(path).unwrap();
    }

    #[test]
    fn conversions_by_hand() {
        // RGB (200, 100, 50) -> grey (2126·200 + 7152·100 + 722·50) / 10000 = 117.65 -> 118
        let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(2, 2, Rgb([200, 100, 50])));
        assert_eq!(to_input(&rgb, [1, 2, 2]), vec![118; 4]);
        assert_eq!(to_input(&rgb, [3, 1, 1]), vec![200, 100, 50]);
        // grey to RGB: repeated
        let grey = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(1, 1, Luma([77])));
        assert_eq!(to_input(&grey, [3, 1, 1]), vec![77, 77, 77]);
        // half transparent white: 255 · 128 / 255 = 128 on black
        let rgba =
            DynamicImage::ImageRgba8(ImageBuffer::from_pixel(1, 1, Rgba([255, 255, 255, 128])));
        assert_eq!(to_input(&rgba, [3, 1, 1]), vec![128, 128, 128]);
        // 16-bit: 32768 · 255 / 65535 = 127.5 -> 128
        let deep = DynamicImage::ImageLuma16(ImageBuffer::from_pixel(1, 1, Luma([32768u16])));
        assert_eq!(to_input(&deep, [1, 1, 1]), vec![128]);
        // resized to H × W, the aspect ratio not kept: a 5×3 image of 123 to 2×2
        let flat = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(5, 3, Luma([123u8])));
        assert_eq!(to_input(&flat, [1, 2, 2]), vec![123; 4]);
        // a brighter right half stays brighter on the right (the filter blends at the edge)
        let halves = ImageBuffer::from_fn(8, 2, |x, _| Luma([if x < 4 { 0u8 } else { 200 }]));
        let small = to_input(&DynamicImage::ImageLuma8(halves), [1, 1, 2]);
        assert!(small[0] < 100 && small[1] > 100, "{small:?}");
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
