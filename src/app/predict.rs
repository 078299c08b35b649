//! Predicting classes of ordinary image files (PNG, JPEG) with a trained model: a model of
//! MNIST digits reads photos and scans of digits ([`load_digit`]); a model trained on an image
//! folder reads images as its training images were read ([`load_image`]).

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::FilterType;
use image::{GrayImage, Luma};

use crate::app::data::folder::{decode, decode_image, read_image};
use crate::app::data::{DataInfo, IMAGE_SHAPE, PIXELS, Preprocess, SIDE};
use crate::error::{Error, Result};
use crate::functional::prob::softmax;
use crate::model::Cnn;

pub use crate::app::data::folder::{
    MAX_FILE_BYTES as MAX_IMAGE_FILE_BYTES, MAX_SIDE as MAX_IMAGE_SIDE,
};

/// An image file as the network of `info` sees it (`C·H·W` bytes): read as a digit or resized,
/// as [`DataInfo::preprocess`] says.
pub fn load_image(path: &Path, info: &DataInfo) -> Result<Vec<u8>> {
    match info.preprocess {
        Preprocess::Digit if info.shape == IMAGE_SHAPE => load_digit(path),
        _ => read_image(path, info.shape),
    }
}

/// [`load_image`] for bytes already in memory (an upload); `origin` names them in errors.
pub fn decode_upload(bytes: &[u8], origin: &Path, info: &DataInfo) -> Result<Vec<u8>> {
    match info.preprocess {
        Preprocess::Digit if info.shape == IMAGE_SHAPE => decode_digit(bytes, origin),
        _ => decode_image(bytes, origin, info.shape),
    }
}

/// Turns any image into a 28×28 MNIST-style digit (white ink on black, 0–255).
///
/// Colour is converted to grey. A 28×28 input is taken as an MNIST digit: inverted when its
/// border is light (mean above 127), used as it is otherwise. Any other size is treated as a
/// scan or a photo: the paper's brightness is estimated across the frame and removed, so grey
/// or tinted paper, uneven lighting, coloured ink and JPEG noise leave only the ink
/// ([`ink_from_photo`]); then the ink is cropped to its bounding box, scaled so its longer side
/// is 20 pixels, centred by its centre of mass in a 28×28 frame, as the MNIST digits were
/// prepared, and stretched so its strongest stroke is 255.
///
/// Files above [`MAX_IMAGE_FILE_BYTES`] and images wider or taller than [`MAX_IMAGE_SIDE`]
/// pixels are refused before they are decoded.
pub fn load_digit(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_IMAGE_FILE_BYTES {
        return Err(Error::Image {
            path: path.to_path_buf(),
            message: format!(
                "the file is {len} bytes, more than the {MAX_IMAGE_FILE_BYTES} accepted"
            ),
            source: None,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_digit(&bytes, path)
}

/// [`load_digit`] for an image already in memory (PNG or JPEG bytes, e.g. an upload); `origin`
/// only names it in errors. The same limits apply.
pub fn decode_digit(bytes: &[u8], origin: &Path) -> Result<Vec<u8>> {
    let img = decode(bytes, origin)?;
    digit_from_gray(img.to_luma8()).ok_or_else(|| Error::Image {
        path: origin.to_path_buf(),
        message: "image is empty".into(),
        source: None,
    })
}

/// The preprocessing of [`load_digit`] on a decoded grey image (any size; `None` if it has no
/// pixels). A 28×28 image is taken as an MNIST digit: inverted when its border is light, used
/// as it is otherwise. Any other size is treated as a scan or a photo: see
/// [`ink_from_photo`], then cropped, scaled and centred into 28×28.
pub fn digit_from_gray(mut g: GrayImage) -> Option<Vec<u8>> {
    let (w, h) = g.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    if (w, h) == (SIDE as u32, SIDE as u32) {
        let border: Vec<u8> = (0..w)
            .flat_map(|x| [g.get_pixel(x, 0)[0], g.get_pixel(x, h - 1)[0]])
            .chain((0..h).flat_map(|y| [g.get_pixel(0, y)[0], g.get_pixel(w - 1, y)[0]]))
            .collect();
        let mean = border.iter().map(|&v| v as f64).sum::<f64>() / border.len() as f64;
        if mean > 127.0 {
            image::imageops::invert(&mut g);
        }
        return Some(g.into_raw());
    }
    let mut digit = center_digit(&ink_from_photo(&g));
    // stretch: the strongest stroke is full ink, as in MNIST
    let max = digit.iter().copied().max().unwrap_or(0);
    if max > 0 {
        for v in &mut digit {
            *v = ((*v as u32 * 255) / max as u32) as u8;
        }
    }
    Some(digit)
}

/// The `q` quantile (0–1) of a 256-bin histogram.
fn quantile(hist: &[u64; 256], q: f64) -> u8 {
    let total: u64 = hist.iter().sum();
    let target = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (v, &n) in hist.iter().enumerate() {
        seen += n;
        if seen >= target {
            return v as u8;
        }
    }
    255
}

fn histogram(values: impl Iterator<Item = u8>) -> [u64; 256] {
    let mut hist = [0u64; 256];
    for v in values {
        hist[v as usize] += 1;
    }
    hist
}

/// How much ink each pixel of a scan or photo holds (0 = background, 255 = full ink), whatever
/// the paper and the light: paper that is grey or tinted, lighting that varies across the
/// frame, ink of any colour, JPEG noise.
///
/// 1. Polarity: the paper is the majority, so the median lies nearer the paper's end of the
///    range (dark ink on light paper, or light ink on a dark ground).
/// 2. Background: per block of about 1/8 of the longer side, the 90th percentile (10th on a dark
///    ground) — paper, since ink is the minority; a block much darker than the median of its
///    neighbours (one the ink fills) takes that median instead; then bilinear interpolation
///    between the blocks' centres, extrapolated linearly to the edges.
/// 3. Ink = distance from that background towards the ink's end, stretched so that the
///    strongest strokes (80 % of the 3×3-smoothed maximum) are full ink, with everything below
///    a quarter of that (paper texture, noise) set to 0.
pub fn ink_from_photo(g: &GrayImage) -> GrayImage {
    let (w, h) = g.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let px = g.as_raw();
    let hist = histogram(px.iter().copied());
    let (p1, p50, p99) = (
        quantile(&hist, 0.01) as i32,
        quantile(&hist, 0.5) as i32,
        quantile(&hist, 0.99) as i32,
    );
    let light = p50 - p1 >= p99 - p50;
    // background per block
    let bs = (w.max(h) as usize / 8).max(4);
    let (gw, gh) = (wu.div_ceil(bs), hu.div_ceil(bs));
    let mut grid = vec![0f32; gw * gh];
    for by in 0..gh {
        for bx in 0..gw {
            let rows = by * bs..((by + 1) * bs).min(hu);
            let block = histogram(rows.flat_map(|y| {
                px[y * wu + bx * bs..y * wu + ((bx + 1) * bs).min(wu)]
                    .iter()
                    .copied()
            }));
            grid[by * gw + bx] = quantile(&block, if light { 0.9 } else { 0.1 }) as f32;
        }
    }
    // a block the ink fills is much darker (lighter) than the median of its neighbours: take
    // that median instead; a lighting gradient moves neighbours by far less
    let contrast = (p99 - p1).max(1) as f32;
    let paper: Vec<f32> = (0..gh * gw)
        .map(|i| {
            let (by, bx) = ((i / gw) as isize, (i % gw) as isize);
            let mut vals: Vec<f32> = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (by + dy, bx + dx)))
                .filter(|&(y, x)| (y, x) != (by, bx))
                .filter(|&(y, x)| y >= 0 && x >= 0 && (y as usize) < gh && (x as usize) < gw)
                .map(|(y, x)| grid[y as usize * gw + x as usize])
                .collect();
            if vals.is_empty() {
                return grid[i];
            }
            vals.sort_by(f32::total_cmp);
            let median = vals[vals.len() / 2];
            let towards_ink = if light {
                median - grid[i]
            } else {
                grid[i] - median
            };
            if towards_ink > (0.2 * contrast).max(12.0) {
                median
            } else {
                grid[i]
            }
        })
        .collect();
    // bilinear between block centres ((i + 0.5)·bs), extrapolated linearly beyond the outer
    // centres so that a gradient continues to the edges
    let axis = |p: usize, n: usize| -> (usize, f32) {
        let f = (p as f32 + 0.5) / bs as f32 - 0.5;
        if n < 2 {
            return (0, 0.0);
        }
        let i0 = (f.max(0.0).floor() as usize).min(n - 2);
        (i0, f - i0 as f32)
    };
    let at = |y: usize, x: usize| paper[y.min(gh - 1) * gw + x.min(gw - 1)];
    let mut ink = vec![0f32; wu * hu];
    for y in 0..hu {
        let (y0, ty) = axis(y, gh);
        for x in 0..wu {
            let (x0, tx) = axis(x, gw);
            let top = at(y0, x0) * (1.0 - tx) + at(y0, x0 + 1) * tx;
            let bottom = at(y0 + 1, x0) * (1.0 - tx) + at(y0 + 1, x0 + 1) * tx;
            let background = top * (1.0 - ty) + bottom * ty;
            let v = px[y * wu + x] as f32;
            ink[y * wu + x] = if light {
                background - v
            } else {
                v - background
            }
            .max(0.0);
        }
    }
    // the strongest strokes, robust to single noisy pixels: max of the 3×3 mean
    let mut strongest = 0f32;
    for y in 1..hu.saturating_sub(1) {
        for x in 1..wu.saturating_sub(1) {
            let mut sum = 0.0;
            for dy in 0..3 {
                for dx in 0..3 {
                    sum += ink[(y + dy - 1) * wu + x + dx - 1];
                }
            }
            strongest = strongest.max(sum / 9.0);
        }
    }
    if strongest <= 0.0 {
        strongest = ink.iter().copied().fold(0.0, f32::max);
    }
    let full = 0.8 * strongest;
    let floor = 0.25 * full;
    let out: Vec<u8> = ink
        .iter()
        .map(|&v| {
            if full < 8.0 || v <= floor {
                0
            } else {
                (((v - floor) / (full - floor)).min(1.0) * 255.0).round() as u8
            }
        })
        .collect();
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| GrayImage::new(w, h))
}

fn center_digit(g: &GrayImage) -> Vec<u8> {
    let (w, h) = g.dimensions();
    let ink = |p: &Luma<u8>| p[0] > 40;
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in g.enumerate_pixels() {
        if ink(p) {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    if x0 > x1 {
        return vec![0; PIXELS]; // blank image
    }
    let crop = image::imageops::crop_imm(g, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let (cw, ch) = crop.dimensions();
    let scale = 20.0 / cw.max(ch) as f64;
    let nw = ((cw as f64 * scale).round() as u32).clamp(1, 20);
    let nh = ((ch as f64 * scale).round() as u32).clamp(1, 20);
    let small = image::imageops::resize(&crop, nw, nh, FilterType::Triangle);
    // centre of mass of the scaled digit
    let (mut sx, mut sy, mut sm) = (0.0, 0.0, 0.0);
    for (x, y, p) in small.enumerate_pixels() {
        let v = p[0] as f64;
        sx += v * x as f64;
        sy += v * y as f64;
        sm += v;
    }
    let (cx, cy) = if sm > 0.0 {
        (sx / sm, sy / sm)
    } else {
        (nw as f64 / 2.0, nh as f64 / 2.0)
    };
    let ox = (14.0 - cx).round() as i64;
    let oy = (14.0 - cy).round() as i64;
    let mut out = vec![0u8; PIXELS];
    for (x, y, p) in small.enumerate_pixels() {
        let tx = x as i64 + ox;
        let ty = y as i64 + oy;
        if (0..SIDE as i64).contains(&tx) && (0..SIDE as i64).contains(&ty) {
            out[ty as usize * SIDE + tx as usize] = p[0];
        }
    }
    out
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
            err.contains("big.png") && err.contains("larger than 8192×8192"),
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
