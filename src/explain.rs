//! The computation as a picture: one PNG showing every stage of a forward pass for one image,
//! left to right — the input, the feature maps of each block of the **feature extractor**,
//! the **feature vector**, the **classifier**'s dense activations, the **class scores** and
//! the **softmax** probabilities, the predicted class highlighted.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::cnn::{Stage, StageKind};
use crate::error::{Error, Result};
use crate::train::plot::{plot_err, register_font};

const HEIGHT: u32 = 600;
/// Top of the drawings (below the section titles and the stage labels).
const TOP: i32 = 110;
/// The tallest a drawing may be.
const BODY: i32 = 420;
const GAP: i32 = 44;

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

fn range(v: &[f32]) -> (f32, f32) {
    let lo = v
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f32::MAX, f32::min);
    let hi = v
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f32::MIN, f32::max);
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

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One image of `side_h × side_w` values drawn with `cell`-pixel squares at `(x, y)`.
fn draw_map(
    root: &Area,
    values: &[f32],
    [h, w]: [usize; 2],
    (x, y): (i32, i32),
    cell: f32,
    color: impl Fn(f32) -> RGBColor,
) -> std::result::Result<(), String> {
    for r in 0..h {
        for c in 0..w {
            let x0 = x + (c as f32 * cell).round() as i32;
            let y0 = y + (r as f32 * cell).round() as i32;
            let x1 = x + ((c + 1) as f32 * cell).round() as i32;
            let y1 = y + ((r + 1) as f32 * cell).round() as i32;
            root.draw(&Rectangle::new(
                [(x0, y0), (x1, y1)],
                color(values[r * w + c]).filled(),
            ))
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// A column of the picture: what to draw and how wide it is.
enum Column<'a> {
    Input(&'a Stage),
    Maps(&'a Stage, String),
    Strip(&'a Stage, &'static str),
    Scores(&'a Stage),
    Probs(&'a Stage),
}

/// Grid of `c` feature maps: (columns, rows, cell size in pixels, width in pixels).
fn grid_layout(c: usize, h: usize, w: usize) -> (usize, usize, f32, i32) {
    let cols = if c <= 4 {
        c
    } else if c <= 16 {
        4
    } else {
        8
    };
    let rows = c.div_ceil(cols.max(1));
    let pad = 3.0;
    let per_map = ((BODY as f32 - pad * rows as f32) / rows as f32).min(56.0);
    let cell = (per_map / h.max(w) as f32).max(0.5);
    let width = cols as f32 * (cell * w as f32 + pad);
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

impl Column<'_> {
    fn width(&self) -> i32 {
        match self {
            Column::Input(s) => {
                let [_, h, w] = dims3(s);
                (BODY.min(200) as f32 / h.max(w) as f32 * w as f32).ceil() as i32
            }
            Column::Maps(s, _) => {
                let [c, h, w] = dims3(s);
                grid_layout(c, h, w).3
            }
            Column::Strip(s, _) => {
                let (cols, _, cell) = strip_layout(s.shape[0]);
                ((cols as f32 * cell).ceil() as i32).max(120)
            }
            Column::Scores(_) | Column::Probs(_) => 250,
        }
    }
}

fn dims3(s: &Stage) -> [usize; 3] {
    match s.shape[..] {
        [c, h, w] => [c, h, w],
        _ => [1, 1, s.shape.iter().product()],
    }
}

/// Renders the stages of image `index` (a row of each stage's tensor) as a PNG, returned as
/// bytes. `stages` is what [`crate::Cnn::forward_stages`] returns.
pub fn explain_png(stages: &[Stage], index: usize) -> Result<Vec<u8>> {
    let name = Path::new("explain.png");
    let bad = |message: String| Error::Shape {
        what: "explain".into(),
        message,
    };
    let kinds: Vec<StageKind> = stages.iter().map(|s| s.kind).collect();
    if kinds.first() != Some(&StageKind::Input)
        || kinds.last() != Some(&StageKind::Probabilities)
        || !kinds.contains(&StageKind::ClassScores)
    {
        return Err(bad(format!("not the stages of a forward pass: {kinds:?}")));
    }
    // values of image `index` for every stage (an error when the batch has no such image)
    let values = stages
        .iter()
        .map(|s| s.row(index))
        .collect::<Result<Vec<Vec<f32>>>>()?;
    // one column per block: its last stage (after pooling when there is pooling)
    let mut columns = vec![Column::Input(&stages[0])];
    let mut block = 0;
    for (i, s) in stages.iter().enumerate() {
        let next = stages.get(i + 1).map(|n| n.kind);
        match s.kind {
            StageKind::Conv if next == Some(StageKind::Pool) => {}
            StageKind::Conv => {
                block += 1;
                columns.push(Column::Maps(s, format!("block {block}: conv")));
            }
            StageKind::Pool => {
                block += 1;
                columns.push(Column::Maps(s, format!("block {block}: conv → pool")));
            }
            StageKind::FeatureVector => columns.push(Column::Strip(s, "feature vector")),
            StageKind::Dense => columns.push(Column::Strip(s, "dense")),
            StageKind::ClassScores => columns.push(Column::Scores(s)),
            StageKind::Probabilities => columns.push(Column::Probs(s)),
            StageKind::Input => {}
        }
    }
    let width = 30 + columns.iter().map(|c| c.width() + GAP).sum::<i32>();
    let width = width.max(600) as u32;
    let mut buf = vec![255u8; width as usize * HEIGHT as usize * 3];
    register_font();
    draw(&mut buf, (width, HEIGHT), &columns, stages, &values)
        .map_err(|e| plot_err(name, std::io::Error::other(e)))?;
    let img = image::RgbImage::from_raw(width, HEIGHT, buf)
        .ok_or_else(|| bad("image buffer of the wrong size".into()))?;
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| Error::Image {
            path: name.to_path_buf(),
            message: format!("cannot encode the PNG: {e}"),
            source: Some(Box::new(e)),
        })?;
    Ok(png.into_inner())
}

/// The picture of `model` computing one 28×28 digit (as [`crate::predict::load_digit`] gives).
pub fn explain_digit(
    model: &crate::Cnn,
    digit: &[u8],
    device: &burn::tensor::Device,
) -> Result<Vec<u8>> {
    let x = crate::predict::digits_tensor(&[digit.to_vec()], device)?;
    explain_png(&model.forward_stages(x)?, 0)
}

/// [`explain_png`] written to `path` (atomically).
pub fn write_explain_png(stages: &[Stage], index: usize, path: &Path) -> Result<()> {
    crate::fsio::write_atomic(path, &explain_png(stages, index)?)
}

fn draw(
    buf: &mut [u8],
    size: (u32, u32),
    columns: &[Column],
    stages: &[Stage],
    values: &[Vec<f32>],
) -> std::result::Result<(), String> {
    let value_of = |s: &Stage| -> &[f32] {
        let i = stages
            .iter()
            .position(|t| std::ptr::eq(t, s))
            .unwrap_or_default();
        &values[i]
    };
    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let title = ("sans-serif", 22).into_font().color(&BLACK);
    let label = ("sans-serif", 15).into_font().color(&RGBColor(60, 60, 60));
    let arrow = ("sans-serif", 30)
        .into_font()
        .color(&RGBColor(150, 150, 150))
        .pos(Pos::new(HPos::Center, VPos::Center));
    let mut x = 20;
    let mut section: Option<(&str, i32)> = None;
    let mut sections: Vec<(&str, i32, i32)> = Vec::new();
    let mut predicted = None;
    for (i, col) in columns.iter().enumerate() {
        let w = col.width();
        let part = match col {
            Column::Input(_) => "input",
            Column::Maps(..) => "feature extractor",
            Column::Strip(s, _) if s.kind == StageKind::FeatureVector => "feature vector",
            Column::Strip(..) | Column::Scores(_) => "classifier",
            Column::Probs(_) => "softmax",
        };
        match section {
            Some((p, _)) if p == part => {}
            Some((p, x0)) => {
                sections.push((p, x0, x - GAP));
                section = Some((part, x));
            }
            None => section = Some((part, x)),
        }
        let body_top = TOP;
        let caption = match col {
            Column::Input(s) => {
                let [_, h, w_] = dims3(s);
                let v = value_of(s);
                let (lo, hi) = range(v);
                let cell = BODY.min(200) as f32 / h.max(w_) as f32;
                draw_map(&root, v, [h, w_], (x, body_top), cell, |t| {
                    let g = (((t - lo) / (hi - lo)) * 255.0).round() as u8;
                    RGBColor(g, g, g)
                })?;
                format!("image {}", shape_label(&s.shape))
            }
            Column::Maps(s, name) => {
                let [c, h, w_] = dims3(s);
                let v = value_of(s);
                let (lo, hi) = range(v);
                let (cols, _, cell, _) = grid_layout(c, h, w_);
                let pad = 3.0;
                for m in 0..c {
                    let (gr, gc) = (m / cols, m % cols);
                    let mx = x + (gc as f32 * (cell * w_ as f32 + pad)).round() as i32;
                    let my = body_top + (gr as f32 * (cell * h as f32 + pad)).round() as i32;
                    draw_map(
                        &root,
                        &v[m * h * w_..(m + 1) * h * w_],
                        [h, w_],
                        (mx, my),
                        cell,
                        |t| heat((t - lo) / (hi - lo)),
                    )?;
                }
                format!("{name} {}", shape_label(&s.shape))
            }
            Column::Strip(s, name) => {
                let v = value_of(s);
                let (lo, hi) = range(v);
                let (cols, rows, cell) = strip_layout(v.len());
                // column-major: values run down the strip, then to the next column
                let mut t = vec![lo; cols * rows];
                for (k, val) in v.iter().enumerate() {
                    t[(k % rows) * cols + k / rows] = *val;
                }
                draw_map(&root, &t, [rows, cols], (x, body_top), cell, |u| {
                    heat((u - lo) / (hi - lo))
                })?;
                format!("{name} {}", shape_label(&s.shape))
            }
            Column::Scores(s) | Column::Probs(s) => {
                let v = value_of(s);
                let probs = matches!(col, Column::Probs(_));
                let best = v
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(k, _)| k)
                    .unwrap_or(0);
                if probs {
                    predicted = Some((best, v[best]));
                }
                let (lo, hi) = if probs { (0.0, 1.0) } else { range(v) };
                let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
                let n = v.len();
                let row_h = (BODY as f32 / n.max(1) as f32).min(40.0);
                let zero = x + 24 + ((0.0 - lo) / (hi - lo) * (w - 90) as f64).round() as i32;
                let small = ("sans-serif", (row_h * 0.55).clamp(9.0, 16.0) as u32).into_font();
                for (k, &val) in v.iter().enumerate() {
                    let y0 = body_top + (k as f32 * row_h).round() as i32;
                    let y1 = body_top + ((k + 1) as f32 * row_h - 4.0).round() as i32;
                    let end =
                        x + 24 + ((val as f64 - lo) / (hi - lo) * (w - 90) as f64).round() as i32;
                    let color = if k == best {
                        RGBColor(214, 39, 40)
                    } else {
                        RGBColor(31, 119, 180)
                    };
                    let (a, b) = if end < zero {
                        (end, zero)
                    } else {
                        (zero, end.max(zero + 1))
                    };
                    root.draw(&Rectangle::new([(a, y0), (b, y1)], color.filled()))
                        .map_err(e)?;
                    let pos = Pos::new(HPos::Right, VPos::Center);
                    root.draw(&Text::new(
                        k.to_string(),
                        (x + 16, (y0 + y1) / 2),
                        small.clone().color(&BLACK).pos(pos),
                    ))
                    .map_err(e)?;
                    let text = if probs {
                        format!("{:.1}%", 100.0 * val)
                    } else {
                        format!("{val:.2}")
                    };
                    let pos = Pos::new(HPos::Left, VPos::Center);
                    root.draw(&Text::new(
                        text,
                        (b.max(zero) + 4, (y0 + y1) / 2),
                        small.clone().color(&BLACK).pos(pos),
                    ))
                    .map_err(e)?;
                }
                root.draw(&PathElement::new(
                    vec![
                        (zero, body_top - 4),
                        (zero, body_top + (n as f32 * row_h) as i32),
                    ],
                    BLACK,
                ))
                .map_err(e)?;
                let name = if probs {
                    "probabilities"
                } else {
                    "class scores (logits)"
                };
                format!("{name} {}", shape_label(&s.shape))
            }
        };
        root.draw(&Text::new(caption, (x, TOP - 24), label.clone()))
            .map_err(e)?;
        if i + 1 < columns.len() {
            root.draw(&Text::new(
                "→",
                (x + w + GAP / 2, TOP + BODY / 2),
                arrow.clone(),
            ))
            .map_err(e)?;
        }
        x += w + GAP;
    }
    if let Some((p, x0)) = section {
        sections.push((p, x0, x - GAP));
    }
    for (name, x0, x1) in sections {
        root.draw(&Text::new(name, (x0, 22), title.clone()))
            .map_err(e)?;
        root.draw(&PathElement::new(
            vec![(x0, 52), (x1, 52)],
            RGBColor(120, 120, 120),
        ))
        .map_err(e)?;
    }
    if let Some((k, p)) = predicted {
        root.draw(&Text::new(
            format!(
                "predicted class: {k}  (softmax probability {:.1}%)",
                100.0 * p
            ),
            (20, TOP + BODY + 30),
            ("sans-serif", 22).into_font().color(&RGBColor(214, 39, 40)),
        ))
        .map_err(e)?;
    }
    root.present().map_err(e)
}
