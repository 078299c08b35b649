//! An image as an MNIST digit: a 28×28 image taken as it is, anything else treated as a scan
//! or a photo of a digit (its paper removed, its ink cropped, scaled and centred).

use image::imageops::FilterType;
use image::{GrayImage, Luma};

use crate::app::data::{PIXELS, SIDE};

/// A photo larger than this many pixels a side is shrunk to it (aspect kept) before its ink is
/// found: the digit ends 20 pixels tall, and a 12 MP photo would otherwise take a 48 MB `f32`
/// copy.
pub const PHOTO_SIDE: u32 = 1024;

/// The preprocessing of [`crate::app::predict::load_digit`] on a decoded grey image (any size; `None` if it has no
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
    if w.max(h) > PHOTO_SIDE {
        // the digit ends 20 pixels tall: find its ink on a copy of at most PHOTO_SIDE a side
        let scale = f64::from(PHOTO_SIDE) / f64::from(w.max(h));
        let nw = ((f64::from(w) * scale).round() as u32).max(1);
        let nh = ((f64::from(h) * scale).round() as u32).max(1);
        g = image::imageops::thumbnail(&g, nw, nh);
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
