//! Predicting classes of ordinary image files (PNG, JPEG) with a trained model: a model of
//! MNIST digits reads photos and scans of digits ([`load_digit`]); a model trained on an image
//! folder reads images as its training images were read ([`load_image`]).

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::GrayImage;

use crate::app::data::{DataInfo, PIXELS, SIDE};
use crate::app::images::{self, ImageLimits};
use crate::error::{Error, Result};
use crate::functional::prob::softmax;
use crate::model::Cnn;

pub use crate::app::images::{
    MAX_FILE_BYTES as MAX_IMAGE_FILE_BYTES, MAX_SIDE as MAX_IMAGE_SIDE, digit_from_gray,
    ink_from_photo,
};

/// An image file as the network of `info` sees it (`C·H·W` bytes): read as a digit or resized,
/// as [`DataInfo::preprocess`] says, within the default [`ImageLimits`] (see
/// [`crate::app::images`]).
pub fn load_image(path: &Path, info: &DataInfo) -> Result<Vec<u8>> {
    images::read(path, info, &ImageLimits::default())
}

/// [`load_image`] for bytes already in memory (an upload); `origin` names them in errors.
pub fn decode_upload(bytes: &[u8], origin: &Path, info: &DataInfo) -> Result<Vec<u8>> {
    images::prepare(bytes, origin, info, &ImageLimits::default())
}

/// Turns any image file into a 28×28 MNIST-style digit (white ink on black, 0–255).
///
/// Colour is converted to grey. A 28×28 input is taken as an MNIST digit: inverted when its
/// border is light (mean above 127), used as it is otherwise. Any other size is treated as a
/// scan or a photo: the paper's brightness is estimated across the frame and removed, so grey
/// or tinted paper, uneven lighting, coloured ink and JPEG noise leave only the ink
/// ([`ink_from_photo`]); then the ink is cropped to its bounding box, scaled so its longer side
/// is 20 pixels, centred by its centre of mass in a 28×28 frame, as the MNIST digits were
/// prepared, and stretched so its strongest stroke is 255.
///
/// Files above [`MAX_IMAGE_FILE_BYTES`], and images that declare more than
/// [`MAX_IMAGE_SIDE`] pixels a side or [`images::DEFAULT_MAX_IMAGE_PIXELS`] in all, are refused
/// before they are decoded.
pub fn load_digit(path: &Path) -> Result<Vec<u8>> {
    let limits = ImageLimits::default();
    let bytes = images::read_bytes(path, &limits)?;
    images::prepare_digit(&bytes, path, &limits)
}

/// [`load_digit`] for an image already in memory (PNG or JPEG bytes, e.g. an upload); `origin`
/// only names it in errors. The same limits apply.
pub fn decode_digit(bytes: &[u8], origin: &Path) -> Result<Vec<u8>> {
    images::prepare_digit(bytes, origin, &ImageLimits::default())
}

/// Writes a 28×28 digit (0 = background) as a PNG, dark ink on a light background like a scan.
pub fn save_digit_png(pixels: &[u8], path: &Path) -> Result<()> {
    let inverted: Vec<u8> = pixels.iter().map(|p| 255 - p).collect();
    let img =
        GrayImage::from_raw(SIDE as u32, SIDE as u32, inverted).ok_or_else(|| Error::Image {
            path: path.to_path_buf(),
            message: format!("expected {PIXELS} pixels, got {}", pixels.len()),
            source: None,
        })?;
    img.save(path).map_err(|e| Error::Image {
        path: path.to_path_buf(),
        message: format!("cannot write the image: {e}"),
        source: Some(Box::new(e)),
    })
}

/// Class probabilities of each image (`C·H·W` bytes each, as [`load_image`] gives them) under
/// `model`, which reads images as `info` says. An image of the wrong size, or a model that
/// does not take `info`'s input, is an error.
///
/// # Examples
/// ```
/// use netcalc::CnnConfig;
/// use netcalc::app::data::{DataInfo, Dataset};
/// use netcalc::app::predict::{class_probabilities, top_k};
/// let (_, device) = netcalc::select_device(None)?;
/// let model = CnnConfig::keras_mnist().init(&device)?; // untrained here
/// let data = Dataset::bundled()?;
/// let digits = vec![data.test.image(0).to_vec(), data.test.image(1).to_vec()];
/// let probs = class_probabilities(&model, &DataInfo::mnist(), &digits, &device)?;
/// assert_eq!((probs.len(), probs[0].len()), (2, 10));
/// assert!((probs[0].iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// let best = top_k(&probs[0], 3); // the three likeliest digits, likeliest first
/// assert!(best[0].1 >= best[1].1 && best[1].1 >= best[2].1);
/// # Ok::<(), netcalc::Error>(())
/// ```
///
/// # Shapes
/// - images: `k` images of `C·H·W` values
/// - output: `k` vectors of `classes` probabilities
pub fn class_probabilities(
    model: &Cnn,
    info: &DataInfo,
    images: &[Vec<u8>],
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let x = images_tensor(info, images, device)?;
    let p = softmax(model.try_forward(x)?, 1);
    let [n, c] = p.dims();
    let v: Vec<f32> = p
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .unwrap_or_default();
    Ok(v.chunks_exact(c.max(1))
        .take(n)
        .map(<[f32]>::to_vec)
        .collect())
}

/// Images predicted at once by [`predict_files`].
pub const PREDICT_CHUNK: usize = 256;

/// The image files that `paths` name: a file as it is, a folder as every `.png`, `.jpg` and
/// `.jpeg` in it and in its sub-folders (two levels down, as an image folder's
/// `train/<class>/`), sorted by path. A folder without images is an error naming it.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.is_dir() {
                if depth < 2 {
                    walk(&path, depth + 1, out)?;
                }
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
            {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, 0, &mut found)?;
            if found.is_empty() {
                return Err(Error::data(p, "holds no .png, .jpg or .jpeg image"));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// Classifies `files` [`PREDICT_CHUNK`] at a time (each chunk decoded in parallel, then one
/// batched forward), calling `each` with every file and its class probabilities in order: a
/// folder of any size is classified in bounded memory, and results come as they are made.
/// The first file that cannot be read is an error naming it.
pub fn predict_files(
    model: &Cnn,
    info: &DataInfo,
    files: &[PathBuf],
    device: &Device,
    mut each: impl FnMut(&Path, &[f32]),
) -> Result<()> {
    use rayon::prelude::*;
    for chunk in files.chunks(PREDICT_CHUNK) {
        let images = chunk
            .par_iter()
            .map(|p| load_image(p, info))
            .collect::<Result<Vec<_>>>()?;
        for (path, p) in chunk
            .iter()
            .zip(class_probabilities(model, info, &images, device)?)
        {
            each(path, &p);
        }
    }
    Ok(())
}

/// A batch of images (`C·H·W` bytes each, channel after channel) as the network's input:
/// normalised per channel by `info`, as in training. An image of the wrong size, or none, is
/// an error.
///
/// # Shapes
/// - output: `[k, C, H, W]`
pub fn images_tensor(info: &DataInfo, images: &[Vec<u8>], device: &Device) -> Result<Tensor<4>> {
    let [c, h, w] = info.shape;
    let len = c * h * w;
    if let Some((i, img)) = images.iter().enumerate().find(|(_, d)| d.len() != len) {
        return Err(Error::Shape {
            what: "images".into(),
            message: format!(
                "image {i} has {} values, expected {len} ({c}×{h}×{w})",
                img.len()
            ),
        });
    }
    if images.is_empty() {
        return Err(Error::Shape {
            what: "images".into(),
            message: "no image given".into(),
        });
    }
    let plane = h * w;
    let data: Vec<f32> = images
        .iter()
        .flat_map(|img| {
            img.iter()
                .enumerate()
                .map(|(k, &p)| info.normalization.apply(k / plane, p))
        })
        .collect();
    Ok(Tensor::<4>::from_data(
        TensorData::new(data, [images.len(), c, h, w]),
        device,
    ))
}

/// The `k` most probable classes, most probable first.
pub fn top_k(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    idx.sort_by(|a, b| b.1.total_cmp(&a.1));
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn photo_background_and_light_are_removed() {
        // grey paper lit from one side (brightness 110 to 230), a dark-blue-grey stroke whose
        // own brightness follows the light, and a dark-paper case with light chalk
        let lit = |x: u32| 110.0 + 120.0 * x as f32 / 199.0;
        let paper = GrayImage::from_fn(200, 100, |x, y| {
            let on_stroke = (60..70).contains(&x) && (20..80).contains(&y);
            Luma([(lit(x) * if on_stroke { 0.35 } else { 1.0 }) as u8])
        });
        let ink = ink_from_photo(&paper);
        assert!(
            ink.get_pixel(65, 50)[0] > 200,
            "stroke {}",
            ink.get_pixel(65, 50)[0]
        );
        for (x, y) in [(5, 5), (100, 50), (195, 95), (150, 10)] {
            assert_eq!(ink.get_pixel(x, y)[0], 0, "paper at ({x}, {y})");
        }
        // the old rule (border mean > 127 → invert) took the dark half of this paper as ink
        let d = digit_from_gray(paper).unwrap();
        let rows = (0..SIDE)
            .filter(|y| d[y * SIDE..(y + 1) * SIDE].iter().any(|&v| v > 100))
            .count();
        assert!(
            (19..=21).contains(&rows),
            "a 20-pixel-tall bar, got {rows} rows"
        );
        assert_eq!(d.iter().copied().max(), Some(255));

        let chalk = GrayImage::from_fn(120, 90, |x, y| {
            Luma([if (30..90).contains(&x) && (40..46).contains(&y) {
                200
            } else {
                50
            }])
        });
        let ink = ink_from_photo(&chalk);
        assert!(ink.get_pixel(60, 42)[0] > 200 && ink.get_pixel(10, 10)[0] == 0);
    }

    #[test]
    fn png_round_trip_and_inversion() {
        let dir = tempfile::tempdir().unwrap();
        let mut digit = vec![0u8; PIXELS];
        for y in 5..23 {
            digit[y * SIDE + 14] = 255;
        }
        let p = dir.path().join("one.png");
        save_digit_png(&digit, &p).unwrap();
        // saved dark-on-light, read back light-on-dark exactly
        assert_eq!(load_digit(&p).unwrap(), digit);
    }

    #[test]
    fn large_images_are_cropped_scaled_and_centred() {
        let dir = tempfile::tempdir().unwrap();
        // a 100x60 white image with a black vertical bar at x = 10..16, y = 10..50
        let mut img = GrayImage::from_pixel(100, 60, Luma([255]));
        for y in 10..50 {
            for x in 10..16 {
                img.put_pixel(x, y, Luma([0]));
            }
        }
        let p = dir.path().join("bar.png");
        img.save(&p).unwrap();
        let d = load_digit(&p).unwrap();
        assert_eq!(d.len(), PIXELS);
        // 40 px tall -> 20 px, centred: ink in rows 4..24 around column 14
        let rows: Vec<usize> = (0..SIDE)
            .filter(|y| d[y * SIDE..(y + 1) * SIDE].iter().any(|&v| v > 100))
            .collect();
        assert!(rows.len() >= 19 && rows.len() <= 21, "{rows:?}");
        assert!(rows[0] >= 3 && *rows.last().unwrap() <= 24, "{rows:?}");
        assert!(d[14 * SIDE + 14] > 100);
    }

    #[test]
    fn unreadable_image_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        std::fs::write(&p, b"not a png").unwrap();
        let err = load_digit(&p).unwrap_err().to_string();
        assert!(
            err.contains("x.png") && err.contains("cannot read the image"),
            "{err}"
        );
        // an empty file
        std::fs::write(&p, b"").unwrap();
        let err = load_digit(&p).unwrap_err().to_string();
        assert!(err.contains("x.png"), "{err}");
        // a PNG whose header says 100,000 × 10 pixels: refused by size before it is decoded
        let big = dir.path().join("big.png");
        GrayImage::new(1, 1).save(&big).unwrap();
        let mut bytes = std::fs::read(&big).unwrap();
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes()); // IHDR width
        let mut crc = flate2::Crc::new(); // the IHDR chunk's CRC covers its type and data
        crc.update(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        std::fs::write(&big, &bytes).unwrap();
        let err = load_digit(&big).unwrap_err().to_string();
        assert!(
            err.contains("big.png") && err.contains("100000×1 ") && err.contains("8192 a side"),
            "{err}"
        );
        assert!(matches!(
            load_digit(&dir.path().join("nope.png")),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn digits_of_the_wrong_size_are_an_error() {
        let d = crate::testing::test_device();
        let model = crate::CnnConfig::mlp().init(&d).unwrap();
        let info = DataInfo::mnist();
        let err = class_probabilities(&model, &info, &[vec![0; PIXELS], vec![0; 10]], &d)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("image 1 has 10 values, expected 784 (1×28×28)"),
            "{err}"
        );
        let p = class_probabilities(&model, &info, &[vec![0; PIXELS]], &d).unwrap();
        assert_eq!(p.len(), 1);
        assert!((p[0].iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn top_k_orders_by_probability() {
        assert_eq!(top_k(&[0.1, 0.6, 0.3], 2), vec![(1, 0.6), (2, 0.3)]);
    }
}
