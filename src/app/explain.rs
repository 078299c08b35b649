//! The computation as a picture: one PNG showing every stage of a forward pass for one image,
//! left to right — the input, the feature maps of each block of the **feature extractor**,
//! the **feature vector**, the **classifier**'s dense activations, the **class scores** and
//! the **softmax** probabilities, the predicted class highlighted.
//!
//! [`columns`] plans the picture (one column per stage worth drawing, with its caption and
//! width); the `paint_*` functions paint the columns of cells (the image, the feature maps, the
//! vectors) straight into the picture's pixels, the `draw_*` functions draw the rest with
//! plotters (text, bars, lines); [`explain_png`] puts them side by side. A served explanation
//! paints tens of thousands of cells, so cells are one pass over their pixels each, not a
//! plotters element each.

use std::path::Path;

use image::codecs::png::FilterType;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::app::data::DataInfo;
use crate::app::train::plot::{encode_png, register_font};
use crate::error::{BoxError, Error, Result};
use crate::model::{Stage, StageKind};

/// The picture's height in pixels.
pub const HEIGHT: u32 = 600;
/// Top of the drawings (below the section titles and the stage labels).
const TOP: i32 = 110;
/// The tallest a drawing may be.
const BODY: i32 = 420;
/// Space between columns (an arrow sits in it).
const GAP: i32 = 44;
/// Space between feature maps in a grid.
const PAD: f32 = 3.0;
/// The colour of the predicted class.
const PREDICTED: RGBColor = RGBColor(214, 39, 40);

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type Drawn = std::result::Result<(), BoxError>;

/// Black → purple → orange → pale yellow ("magma"-like), for a value in [0, 1].
fn heat(t: f32) -> RGBColor {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [0.0, 0.0, 4.0]),
        (0.25, [80.0, 18.0, 123.0]),
        (0.5, [183.0, 55.0, 121.0]),
        (0.75, [252.0, 137.0, 97.0]),
        (1.0, [252.0, 253.0, 191.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let i = STOPS.iter().rposition(|(s, _)| *s <= t).unwrap_or(0).min(3);
    let (s0, c0) = STOPS[i];
    let (s1, c1) = STOPS[i + 1];
    let f = (t - s0) / (s1 - s0);
    let c = |k: usize| (c0[k] + f * (c1[k] - c0[k])).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// The smallest and largest finite value (a range of at least 1e-6; `(0, 1)` when none is).
fn range(v: &[f32]) -> (f32, f32) {
    let finite = || v.iter().copied().filter(|x| x.is_finite());
    let lo = finite().fold(f32::MAX, f32::min);
    let hi = finite().fold(f32::MIN, f32::max);
    if lo > hi {
        (0.0, 1.0)
    } else {
        (lo, hi.max(lo + 1e-6))
    }
}

fn shape_label(shape: &[usize]) -> String {
    let s: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("({})", s.join(", "))
}

/// What a column of the picture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// The image.
    Input,
    /// A block's feature maps, in a grid.
    Maps,
    /// A vector (the feature vector, a dense layer) as a strip of cells.
    Strip,
    /// The class scores, as bars.
    Scores,
    /// The probabilities, as bars.
    Probabilities,
}

/// One column of the picture: which stage it draws, how, under which caption and section.
#[derive(Debug, Clone)]
pub struct Column<'a> {
    /// The stage drawn.
    pub stage: &'a Stage,
    /// Its index in the stages (the values of the image drawn are looked up by it).
    pub index: usize,
    /// How it is drawn.
    pub kind: ColumnKind,
    /// The text above it.
    pub caption: String,
    /// The part of the network it belongs to, written over its columns.
    pub section: &'static str,
}

/// Grid of `c` feature maps: (columns, rows, cell size in pixels, width in pixels).
fn grid_layout(c: usize, h: usize, w: usize) -> (usize, usize, f32, i32) {
    let cols = match c {
        0..=4 => c,
        5..=16 => 4,
        _ => 8,
    };
    let rows = c.div_ceil(cols.max(1));
    let per_map = ((BODY as f32 - PAD * rows as f32) / rows as f32).min(56.0);
    let cell = (per_map / h.max(w) as f32).max(0.5);
    let width = cols as f32 * (cell * w as f32 + PAD);
    (cols, rows, cell, width.ceil() as i32)
}

/// Strip of `n` values: (columns, rows, cell size).
fn strip_layout(n: usize) -> (usize, usize, f32) {
    // about eight times taller than wide
    let cols = ((n as f32 / 8.0).sqrt().ceil() as usize).max(1);
    let rows = n.div_ceil(cols).max(1);
    let cell = (BODY as f32 / rows as f32).min(24.0);
    (cols, rows, cell)
}

/// `[C, H, W]` of a stage (a vector is one row of one channel).
fn dims3(s: &Stage) -> [usize; 3] {
    match s.shape[..] {
        [c, h, w] => [c, h, w],
        _ => [1, 1, s.shape.iter().product()],
    }
}

/// The size of a pixel of the input image.
fn input_cell(s: &Stage) -> f32 {
    let [_, h, w] = dims3(s);
    BODY.min(200) as f32 / h.max(w) as f32
}

impl Column<'_> {
    /// Its width in pixels.
    pub fn width(&self) -> i32 {
        let [c, h, w] = dims3(self.stage);
        match self.kind {
            ColumnKind::Input => (input_cell(self.stage) * w as f32).ceil() as i32,
            ColumnKind::Maps => grid_layout(c, h, w).3,
            ColumnKind::Strip => {
                let (cols, _, cell) = strip_layout(self.stage.shape[0]);
                ((cols as f32 * cell).ceil() as i32).max(120)
            }
            ColumnKind::Scores | ColumnKind::Probabilities => 250,
        }
    }
}

/// The picture's plan for `stages` (what [`crate::Cnn::forward_stages`] returns): the input,
/// one column per block (its last stage: after pooling when there is pooling), the feature
/// vector, each dense layer, the class scores and the probabilities.
pub fn columns(stages: &[Stage]) -> Result<Vec<Column<'_>>> {
    let kinds: Vec<StageKind> = stages.iter().map(|s| s.kind).collect();
    if kinds.first() != Some(&StageKind::Input)
        || kinds.last() != Some(&StageKind::Probabilities)
        || !kinds.contains(&StageKind::ClassScores)
    {
        return Err(Error::Shape {
            what: "explain".into(),
            message: format!("not the stages of a forward pass: {kinds:?}"),
        });
    }
    let mut out = Vec::new();
    let mut block = 0;
    for (index, stage) in stages.iter().enumerate() {
        let shape = shape_label(&stage.shape);
        let next = stages.get(index + 1).map(|n| n.kind);
        let (kind, caption, section) = match stage.kind {
            StageKind::Input => (ColumnKind::Input, format!("image {shape}"), "input"),
            StageKind::Conv if next == Some(StageKind::Pool) => continue,
            StageKind::Conv | StageKind::Pool => {
                block += 1;
                let what = if stage.kind == StageKind::Pool {
                    "conv → pool"
                } else {
                    "conv"
                };
                let caption = format!("block {block}: {what} {shape}");
                (ColumnKind::Maps, caption, "feature extractor")
            }
            StageKind::FeatureVector => {
                let caption = format!("feature vector {shape}");
                (ColumnKind::Strip, caption, "feature vector")
            }
            StageKind::Dense => (ColumnKind::Strip, format!("dense {shape}"), "classifier"),
            StageKind::ClassScores => {
                let caption = format!("class scores (logits) {shape}");
                (ColumnKind::Scores, caption, "classifier")
            }
            StageKind::Probabilities => {
                let caption = format!("probabilities {shape}");
                (ColumnKind::Probabilities, caption, "softmax")
            }
        };
        out.push(Column {
            stage,
            index,
            kind,
            caption,
            section,
        });
    }
    Ok(out)
}

/// The picture's width for `columns`: a margin, each column and the gap after it (at least
/// 600 pixels).
pub fn picture_width(columns: &[Column]) -> u32 {
    let width = 30 + columns.iter().map(|c| c.width() + GAP).sum::<i32>();
    width.max(600) as u32
}

/// Renders the stages of image `index` (a row of each stage's tensor) as a PNG, returned as
/// bytes, the class scores and probabilities labelled with `classes` (their numbers where
/// there are no names). `stages` is what [`crate::Cnn::forward_stages`] returns.
pub fn explain_png(stages: &[Stage], index: usize, classes: &[String]) -> Result<Vec<u8>> {
    let name = Path::new("explain.png");
    let columns = columns(stages)?;
    // values of image `index` for every stage (an error when the batch has no such image)
    let values = stages
        .iter()
        .map(|s| s.row(index))
        .collect::<Result<Vec<Vec<f32>>>>()?;
    let width = picture_width(&columns);
    let mut buf = vec![255u8; width as usize * HEIGHT as usize * 3];
    register_font();
    draw(&mut buf, (width, HEIGHT), &columns, &values, classes).map_err(|source| Error::Plot {
        path: name.to_path_buf(),
        source,
    })?;
    // encoded by the `image` crate: plotters' own encoder (`bitmap_encoder`) is not enabled;
    // the `Up` filter halves the encoding time of a served picture (a larger file)
    encode_png(name, (width, HEIGHT), &buf, FilterType::Up)
}

/// The picture of `model` computing one image (as [`crate::app::predict::load_image`] gives it
/// for `info`), its classes named by `info`.
pub fn explain_image(
    model: &crate::Cnn,
    info: &DataInfo,
    image: &[u8],
    device: &burn::tensor::Device,
) -> Result<Vec<u8>> {
    let x = crate::app::predict::images_tensor(info, &[image.to_vec()], device)?;
    explain_png(&model.forward_stages(x)?, 0, &info.classes)
}

/// [`explain_png`] written to `path` (atomically).
pub fn write_explain_png(
    stages: &[Stage],
    index: usize,
    classes: &[String],
    path: &Path,
) -> Result<()> {
    crate::app::fsio::write_atomic(path, &explain_png(stages, index, classes)?)
}

/// Every column left to right, the arrows between them, the section titles and the
/// prediction, on a white picture.
fn draw(
    buf: &mut [u8],
    size: (u32, u32),
    columns: &[Column],
    values: &[Vec<f32>],
    classes: &[String],
) -> Drawn {
    buf.fill(255);
    // where each column starts, and how wide it is
    let placed: Vec<(i32, i32)> = columns
        .iter()
        .scan(20, |x, col| {
            let (at, w) = (*x, col.width());
            *x += w + GAP;
            Some((at, w))
        })
        .collect();
    // the cells first, straight into the pixels; nothing plotters draws below overlaps them
    let mut canvas = Canvas::new(buf, size)?;
    for (col, &(x, _)) in columns.iter().zip(&placed) {
        let v = &values[col.index];
        match col.kind {
            ColumnKind::Input => paint_input(&mut canvas, col.stage, v, x),
            ColumnKind::Maps => paint_maps(&mut canvas, col.stage, v, x),
            ColumnKind::Strip => paint_strip(&mut canvas, v, x),
            ColumnKind::Scores | ColumnKind::Probabilities => {}
        }
    }
    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    let label = ("sans-serif", 15).into_font().color(&RGBColor(60, 60, 60));
    let arrow = ("sans-serif", 30)
        .into_font()
        .color(&RGBColor(150, 150, 150))
        .pos(Pos::new(HPos::Center, VPos::Center));
    let mut sections: Vec<(&str, i32, i32)> = Vec::new();
    for (i, (col, &(x, w))) in columns.iter().zip(&placed).enumerate() {
        match sections.last_mut() {
            Some((name, _, end)) if *name == col.section => *end = x + w,
            _ => sections.push((col.section, x, x + w)),
        }
        let v = &values[col.index];
        match col.kind {
            ColumnKind::Scores => draw_bars(&root, v, (x, w), false, classes)?,
            ColumnKind::Probabilities => draw_bars(&root, v, (x, w), true, classes)?,
            ColumnKind::Input | ColumnKind::Maps | ColumnKind::Strip => {}
        }
        root.draw(&Text::new(
            col.caption.clone(),
            (x, TOP - 24),
            label.clone(),
        ))?;
        if i + 1 < columns.len() {
            root.draw(&Text::new(
                "→",
                (x + w + GAP / 2, TOP + BODY / 2),
                arrow.clone(),
            ))?;
        }
    }
    draw_sections(&root, &sections)?;
    if let Some(col) = columns.iter().find(|c| c.kind == ColumnKind::Probabilities) {
        draw_prediction(&root, &values[col.index], classes)?;
    }
    root.present()?;
    Ok(())
}

/// An RGB picture's pixels, row by row, that cells are painted into.
struct Canvas<'a> {
    buf: &'a mut [u8],
    width: i32,
    height: i32,
}

impl<'a> Canvas<'a> {
    /// `buf` as a `size` picture (an error when its length is not `3 · width · height`).
    fn new(buf: &'a mut [u8], (width, height): (u32, u32)) -> std::result::Result<Self, BoxError> {
        if buf.len() != 3 * width as usize * height as usize {
            return Err(format!(
                "a buffer of {} bytes for a {width}×{height} picture",
                buf.len()
            )
            .into());
        }
        let (width, height) = (i32::try_from(width)?, i32::try_from(height)?);
        Ok(Self { buf, width, height })
    }

    /// Fills the pixels `x0 ≤ x < x1`, `y0 ≤ y < y1` (clipped to the picture) with `color`:
    /// the pixels plotters' filled `Rectangle` from `(x0, y0)` to `(x1, y1)` covers.
    fn fill(&mut self, (x0, y0): (i32, i32), (x1, y1): (i32, i32), color: RGBColor) {
        let (x0, x1) = (x0.clamp(0, self.width), x1.clamp(0, self.width));
        let (y0, y1) = (y0.clamp(0, self.height), y1.clamp(0, self.height));
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let RGBColor(r, g, b) = color;
        let row = 3 * self.width as usize;
        for y in y0 as usize..y1 as usize {
            let line = &mut self.buf[y * row + 3 * x0 as usize..y * row + 3 * x1 as usize];
            for px in line.chunks_exact_mut(3) {
                px.copy_from_slice(&[r, g, b]);
            }
        }
    }
}

/// One `h × w` map of values painted with `cell`-pixel squares at `(x, y)`.
fn paint_map(
    canvas: &mut Canvas,
    values: &[f32],
    [h, w]: [usize; 2],
    (x, y): (i32, i32),
    cell: f32,
    color: impl Fn(f32) -> RGBColor,
) {
    let at = |i: usize| (i as f32 * cell).round() as i32;
    for r in 0..h {
        for c in 0..w {
            let (from, to) = ((x + at(c), y + at(r)), (x + at(c + 1), y + at(r + 1)));
            canvas.fill(from, to, color(values[r * w + c]));
        }
    }
}

/// The image in grey, darkest at its smallest value.
fn paint_input(canvas: &mut Canvas, s: &Stage, v: &[f32], x: i32) {
    let [_, h, w] = dims3(s);
    let (lo, hi) = range(v);
    paint_map(canvas, v, [h, w], (x, TOP), input_cell(s), |t| {
        let g = (((t - lo) / (hi - lo)) * 255.0).round() as u8;
        RGBColor(g, g, g)
    });
}

/// A block's feature maps in a grid, one heat scale for all of them.
fn paint_maps(canvas: &mut Canvas, s: &Stage, v: &[f32], x: i32) {
    let [c, h, w] = dims3(s);
    let (lo, hi) = range(v);
    let (cols, _, cell, _) = grid_layout(c, h, w);
    for m in 0..c {
        let (gr, gc) = (m / cols, m % cols);
        let mx = x + (gc as f32 * (cell * w as f32 + PAD)).round() as i32;
        let my = TOP + (gr as f32 * (cell * h as f32 + PAD)).round() as i32;
        let map = &v[m * h * w..(m + 1) * h * w];
        paint_map(canvas, map, [h, w], (mx, my), cell, |t| {
            heat((t - lo) / (hi - lo))
        });
    }
}

/// A vector as a strip of cells, column-major: values run down the strip, then on to the
/// next column.
fn paint_strip(canvas: &mut Canvas, v: &[f32], x: i32) {
    let (lo, hi) = range(v);
    let (cols, rows, cell) = strip_layout(v.len());
    let mut t = vec![lo; cols * rows];
    for (k, val) in v.iter().enumerate() {
        t[(k % rows) * cols + k / rows] = *val;
    }
    paint_map(canvas, &t, [rows, cols], (x, TOP), cell, |u| {
        heat((u - lo) / (hi - lo))
    });
}

/// The label of class `k`: its name, cut to 12 characters, or its number.
fn class_label(classes: &[String], k: usize) -> String {
    match classes.get(k) {
        Some(n) if n.chars().count() > 12 => n.chars().take(11).collect::<String>() + "…",
        Some(n) => n.clone(),
        None => k.to_string(),
    }
}

/// One bar per class (the largest in red) with its value, from a zero line; probabilities
/// on a fixed 0–1 scale, scores on their own range. `(x, w)`: where the column starts and its
/// width.
fn draw_bars(root: &Area, v: &[f32], (x, w): (i32, i32), probs: bool, classes: &[String]) -> Drawn {
    // room for the longest label on the left
    let label_w = v.len().min(classes.len()).max(1);
    let longest = (0..label_w)
        .map(|k| class_label(classes, k).chars().count())
        .max()
        .unwrap_or(1);
    let x = x + (longest.saturating_sub(2) as i32) * 8;
    let w = w - (longest.saturating_sub(2) as i32) * 8;
    let best = argmax(v);
    let (lo, hi) = if probs { (0.0, 1.0) } else { range(v) };
    let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
    let n = v.len();
    let row_h = (BODY as f32 / n.max(1) as f32).min(40.0);
    let pos = |val: f64| x + 24 + ((val - lo) / (hi - lo) * (w - 90) as f64).round() as i32;
    let zero = pos(0.0);
    let small = ("sans-serif", (row_h * 0.55).clamp(9.0, 16.0) as u32).into_font();
    for (k, &val) in v.iter().enumerate() {
        let y0 = TOP + (k as f32 * row_h).round() as i32;
        let y1 = TOP + ((k + 1) as f32 * row_h - 4.0).round() as i32;
        let end = pos(val as f64);
        let color = if k == best {
            PREDICTED
        } else {
            RGBColor(31, 119, 180)
        };
        let (a, b) = if end < zero {
            (end, zero)
        } else {
            (zero, end.max(zero + 1))
        };
        root.draw(&Rectangle::new([(a, y0), (b, y1)], color.filled()))?;
        let right = small
            .clone()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(
            class_label(classes, k),
            (x + 16, (y0 + y1) / 2),
            right,
        ))?;
        let text = if probs {
            format!("{:.1}%", 100.0 * val)
        } else {
            format!("{val:.2}")
        };
        let left = small
            .clone()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(text, (b.max(zero) + 4, (y0 + y1) / 2), left))?;
    }
    let axis = vec![(zero, TOP - 4), (zero, TOP + (n as f32 * row_h) as i32)];
    root.draw(&PathElement::new(axis, BLACK))?;
    Ok(())
}

/// Each section's title over its columns, underlined.
fn draw_sections(root: &Area, sections: &[(&str, i32, i32)]) -> Drawn {
    let title = ("sans-serif", 22).into_font().color(&BLACK);
    for &(name, x0, x1) in sections {
        root.draw(&Text::new(name, (x0, 22), title.clone()))?;
        root.draw(&PathElement::new(
            vec![(x0, 52), (x1, 52)],
            RGBColor(120, 120, 120),
        ))?;
    }
    Ok(())
}

/// The predicted class and its probability, under the drawings.
fn draw_prediction(root: &Area, probs: &[f32], classes: &[String]) -> Drawn {
    let best = argmax(probs);
    let name = classes
        .get(best)
        .cloned()
        .unwrap_or_else(|| best.to_string());
    let text = format!(
        "predicted class: {name}  (softmax probability {:.1}%)",
        100.0 * probs.get(best).copied().unwrap_or(0.0)
    );
    let font = ("sans-serif", 22).into_font().color(&PREDICTED);
    root.draw(&Text::new(text, (20, TOP + BODY + 30), font))?;
    Ok(())
}

/// The index of the largest value (the first of equals; 0 for none).
fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functional::pool::PoolKind;
    use crate::model::{CnnConfig, FeatureExtractorConfig};
    use crate::nn::conv::Conv2dBlockConfig;
    use crate::nn::dense::ClassifierConfig;
    use crate::nn::pool::Pool2dConfig;
    use burn::tensor::Tensor;

    /// A tiny CNN: 6×6 images, one block of 2 filters (3×3 → 4×4, pooled to 2×2), a dense
    /// layer of 4, 3 classes.
    fn tiny() -> CnnConfig {
        let block =
            Conv2dBlockConfig::new(1, 2, 3).with_pool(Pool2dConfig::new(PoolKind::Max, [2, 2]));
        CnnConfig::new(
            "tiny",
            FeatureExtractorConfig::new([1, 6, 6]).with_blocks(vec![block]),
            ClassifierConfig::new(8, [4, 3]),
        )
    }

    fn stages() -> Vec<Stage> {
        let d = crate::testing::test_device();
        let model = tiny().init(&d).unwrap();
        let x = Tensor::<1>::from_floats([0.5f32; 36].as_slice(), &d).reshape([1, 1, 6, 6]);
        model.forward_stages(x).unwrap()
    }

    #[test]
    fn painted_cells_are_the_pixels_of_plotters_rectangles() {
        // a 5×4 map at a fractional cell size, partly outside the picture on two sides
        let size = (40u32, 30u32);
        let values: Vec<f32> = (0..20).map(|i| i as f32 / 19.0).collect();
        let (origin, cell) = ((-3, 9), 7.3);
        let mut painted = vec![255u8; 3 * 40 * 30];
        let mut canvas = Canvas::new(&mut painted, size).unwrap();
        paint_map(&mut canvas, &values, [4, 5], origin, cell, heat);
        let mut drawn = vec![255u8; 3 * 40 * 30];
        {
            let root = BitMapBackend::with_buffer(&mut drawn, size).into_drawing_area();
            let at = |i: usize| (i as f32 * cell).round() as i32;
            for r in 0..4 {
                for c in 0..5 {
                    let corners = [
                        (origin.0 + at(c), origin.1 + at(r)),
                        (origin.0 + at(c + 1), origin.1 + at(r + 1)),
                    ];
                    let fill = heat(values[r * 5 + c]).filled();
                    root.draw(&Rectangle::new(corners, fill)).unwrap();
                }
            }
            root.present().unwrap();
        }
        assert_eq!(painted, drawn);
        // the map covers 37×29 pixels from (-3, 9): clipped, 34 columns and 21 rows painted
        let white = painted
            .chunks_exact(3)
            .filter(|p| *p == [255, 255, 255])
            .count();
        assert_eq!(white, 40 * 30 - 34 * 21);
        // a buffer of the wrong size is refused
        assert!(Canvas::new(&mut painted[1..], size).is_err());
    }

    #[test]
    fn one_column_per_block_and_stage_with_its_caption() {
        let stages = stages();
        let cols = columns(&stages).unwrap();
        let plan: Vec<(ColumnKind, &str, &str)> = cols
            .iter()
            .map(|c| (c.kind, c.caption.as_str(), c.section))
            .collect();
        use ColumnKind::*;
        assert_eq!(
            plan,
            [
                (Input, "image (1, 6, 6)", "input"),
                (Maps, "block 1: conv → pool (2, 2, 2)", "feature extractor"),
                (Strip, "feature vector (8)", "feature vector"),
                (Strip, "dense (4)", "classifier"),
                (Scores, "class scores (logits) (3)", "classifier"),
                (Probabilities, "probabilities (3)", "softmax"),
            ]
        );
        // the block's column draws its pooled maps, not the convolution's
        assert_eq!(cols[1].stage.kind, StageKind::Pool);
        // not the stages of a forward pass
        assert!(columns(&stages[1..]).is_err());
    }

    #[test]
    fn the_picture_has_the_size_of_its_columns() {
        let stages = stages();
        let cols = columns(&stages).unwrap();
        // input: 200 / 6 = 33.3 px a pixel, 6 wide -> 200; maps: 2 maps of 2×2 at 28 px a
        // cell, 3 px apart -> 2·(56 + 3) = 118; strips of 8 and 4 values: 120 at least;
        // bars: 250 each
        let widths: Vec<i32> = cols.iter().map(Column::width).collect();
        assert_eq!(widths, [200, 118, 120, 120, 250, 250]);
        // 30 + Σ (width + 44)
        assert_eq!(picture_width(&cols), 30 + 1058 + 6 * 44);
        let png = explain_png(&stages, 0, &[]).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (picture_width(&cols), HEIGHT));
        // the predicted class is drawn in red: its bars and the line under the drawings
        let red = img.pixels().filter(|p| p.0 == [214, 39, 40]).count();
        assert!(red > 100, "{red} red pixels");
        // an image the batch does not have is an error
        assert!(explain_png(&stages, 1, &[]).is_err());
    }
}
