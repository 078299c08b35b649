//! PNG plots of the training curves and the confusion matrix (plotters, embedded DejaVu Sans).
//!
//! plotters draws into an RGB buffer and the `image` crate encodes it, so plotters needs no
//! encoder of its own (its `bitmap_encoder` feature would pull in a second `image` crate); the
//! PNG is then written atomically ([`crate::app::fsio::write_atomic`]).

use std::path::Path;
use std::sync::Once;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::app::train::metrics::EpochMetrics;
use crate::error::{Error, Result};

static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // The font is compiled in, so registering it cannot fail at run time; ignore the unit
        // result of a second registration.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

pub(crate) fn plot_err<E: std::error::Error + Send + Sync + 'static>(path: &Path, e: E) -> Error {
    Error::Plot {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// A drawing area over an RGB buffer.
type Root<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Encodes a `width × height` RGB buffer as PNG bytes (`path` names the picture in errors),
/// with fast compression and `filter` on every row: `Adaptive` gives the smallest files,
/// `Up` is about twice as fast on pictures of flat cells.
pub(crate) fn encode_png(
    path: &Path,
    (width, height): (u32, u32),
    buf: &[u8],
    filter: FilterType,
) -> Result<Vec<u8>> {
    if buf.len() != 3 * width as usize * height as usize {
        return Err(Error::Shape {
            what: "plot".into(),
            message: format!("image buffer of the wrong size for {width}×{height}"),
        });
    }
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, filter)
        .write_image(buf, width, height, ExtendedColorType::Rgb8)
        .map_err(|e| plot_err(path, e))?;
    Ok(png)
}

/// Runs `draw` on a white `size` picture in memory, then writes it to `path` as a PNG,
/// atomically.
fn write_png(path: &Path, size: (u32, u32), draw: impl FnOnce(&Root) -> Result<()>) -> Result<()> {
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        draw(&root)?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    crate::app::fsio::write_atomic(path, &encode_png(path, size, &buf, FilterType::Adaptive)?)
}

/// Draws two curves (train and test) of one metric per epoch into a PNG.
pub fn plot_curves(
    path: &Path,
    title: &str,
    history: &[EpochMetrics],
    train: fn(&EpochMetrics) -> f64,
    test: fn(&EpochMetrics) -> f64,
) -> Result<()> {
    register_font();
    write_png(path, (800, 500), |root| {
        draw_curves(root, path, title, history, train, test)
    })
}

/// The body of [`plot_curves`], drawn on `root`.
fn draw_curves(
    root: &Root,
    path: &Path,
    title: &str,
    history: &[EpochMetrics],
    train: fn(&EpochMetrics) -> f64,
    test: fn(&EpochMetrics) -> f64,
) -> Result<()> {
    let xs = history.len().max(1) as f64;
    let ys: Vec<f64> = history
        .iter()
        .flat_map(|m| [train(m), test(m)])
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = ys
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if ys.is_empty() {
        (0.0, 1.0)
    } else if hi - lo < 1e-9 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5..xs + 0.5, lo..hi)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (label, f, color) in [("train", train, BLUE), ("test", test, RED)] {
        let pts: Vec<(f64, f64)> = history.iter().map(|m| (m.epoch as f64, f(m))).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| plot_err(path, e))?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))
}

/// Draws the loss curves into `loss_png` and the accuracy curves into `accuracy_png`.
pub fn plot_history(loss_png: &Path, accuracy_png: &Path, history: &[EpochMetrics]) -> Result<()> {
    plot_curves(
        loss_png,
        "cross-entropy loss",
        history,
        |m| m.train_loss,
        |m| m.test_loss,
    )?;
    plot_curves(
        accuracy_png,
        "accuracy (%)",
        history,
        |m| 100.0 * m.train_accuracy,
        |m| 100.0 * m.test_accuracy,
    )
}

/// Draws a confusion matrix as a heat map with counts (rows = true, columns = predicted), the
/// axes labelled with the class names (cut to 12 characters).
pub fn plot_confusion(path: &Path, confusion: &[Vec<u64>], classes: &[String]) -> Result<()> {
    register_font();
    write_png(path, (640, 660), |root| {
        draw_confusion(root, path, confusion, classes)
    })
}

/// The body of [`plot_confusion`], drawn on `root`.
fn draw_confusion(
    root: &Root,
    path: &Path,
    confusion: &[Vec<u64>],
    classes: &[String],
) -> Result<()> {
    let n = confusion.len() as i32;
    let name = |i: i32| {
        let full = classes
            .get(i as usize)
            .cloned()
            .unwrap_or_else(|| i.to_string());
        if full.chars().count() > 12 {
            full.chars().take(11).collect::<String>() + "…"
        } else {
            full
        }
    };
    let mut chart = ChartBuilder::on(root)
        .caption("confusion matrix", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(95)
        .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("true")
        .x_labels(n as usize)
        .y_labels(n as usize)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(c) => name(*c),
            _ => String::new(),
        })
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(r) => name(n - 1 - r),
            _ => String::new(),
        })
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    let max = confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let centre = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    for (r, row) in confusion.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let (x, y) = (c as i32, n - 1 - r as i32);
            let t = (v as f64 / max).powf(0.4);
            let color = RGBColor(255 - (t * 200.0) as u8, 255 - (t * 130.0) as u8, 255);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                    ],
                    color.filled(),
                )))
                .map_err(|e| plot_err(path, e))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    v.to_string(),
                    (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                    centre.clone(),
                )))
                .map_err(|e| plot_err(path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(e: usize, loss: f64, acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: e,
            train_loss: loss,
            train_accuracy: acc,
            test_loss: loss * 0.8,
            test_accuracy: acc + 0.01,
            lr: 1e-3,
            images_per_sec: 1.0,
            epoch_seconds: 1.0,
            elapsed_seconds: e as f64,
        }
    }

    /// The pixels of `color` in `img`, as `(x, y)`.
    fn pixels_of(img: &image::RgbImage, color: [u8; 3]) -> Vec<(u32, u32)> {
        img.enumerate_pixels()
            .filter(|(_, _, p)| p.0 == color)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    fn mean_y(points: &[(u32, u32)], xs: std::ops::Range<u32>) -> f64 {
        let ys: Vec<f64> = points
            .iter()
            .filter(|(x, _)| xs.contains(x))
            .map(|&(_, y)| y as f64)
            .collect();
        assert!(!ys.is_empty(), "no pixel in columns {xs:?}");
        ys.iter().sum::<f64>() / ys.len() as f64
    }

    #[test]
    fn curves_show_train_and_test_going_the_right_way() {
        let dir = tempfile::tempdir().unwrap();
        // the loss falls and the accuracy rises over 5 epochs
        let history: Vec<_> = (1..=5)
            .map(|e| m(e, 1.0 / e as f64, 0.5 + 0.08 * e as f64))
            .collect();
        let (loss, acc) = (dir.path().join("loss.png"), dir.path().join("accuracy.png"));
        plot_history(&loss, &acc, &history).unwrap();
        for (path, falls) in [(&loss, true), (&acc, false)] {
            let img = image::open(path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (800, 500));
            let (train, test) = (pixels_of(&img, [0, 0, 255]), pixels_of(&img, [255, 0, 0]));
            assert!(
                train.len() > 200 && test.len() > 200,
                "{} {}",
                train.len(),
                test.len()
            );
            // the train curve (blue) over the first epochs and over the middle ones (the
            // legend sits at the top right): lower on the picture (larger y) where it is lower
            let (early, later) = (mean_y(&train, 100..300), mean_y(&train, 400..600));
            assert_eq!(early < later, falls, "{path:?}: {early} vs {later}");
        }
    }

    /// The names of the entries of `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn plots_are_whole_pngs_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let history: Vec<_> = (1..=3).map(|e| m(e, 1.0 / e as f64, 0.9)).collect();
        let (loss, acc, conf) = (
            dir.path().join("loss.png"),
            dir.path().join("accuracy.png"),
            dir.path().join("confusion.png"),
        );
        // an older confusion PNG, also reachable through a hard link: an atomic write
        // replaces the directory entry (a new file), so the link keeps the old contents,
        // where a write in place would have overwritten them
        std::fs::write(&conf, b"old").unwrap();
        let link = dir.path().join("old-confusion");
        std::fs::hard_link(&conf, &link).unwrap();
        plot_history(&loss, &acc, &history).unwrap();
        plot_confusion(&conf, &[vec![3, 0], vec![1, 2]], &[]).unwrap();
        for (path, size) in [(&loss, (800, 500)), (&acc, (800, 500)), (&conf, (640, 660))] {
            let img = image::open(path).unwrap();
            assert_eq!((img.width(), img.height()), size, "{path:?}");
        }
        assert_eq!(std::fs::read(&link).unwrap(), b"old");
        // no temporary file is left behind
        assert_eq!(
            entries(dir.path()),
            ["accuracy.png", "confusion.png", "loss.png", "old-confusion"]
        );
    }

    #[test]
    fn a_plot_into_a_missing_directory_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("loss.png");
        assert!(plot_history(&path, &path, &[m(1, 1.0, 0.5)]).is_err());
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn confusion_cells_are_shaded_by_their_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        plot_confusion(
            &path,
            &[vec![5, 1], vec![0, 4]],
            &["cat".into(), "dog".into()],
        )
        .unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (640, 660));
        // colour (255 − 200t, 255 − 130t, 255) with t = (count / 5)^0.4: 5 -> t = 1,
        // 4 -> t = 0.915, 1 -> t = 0.525 (truncated to whole values); 0 stays white. Each cell is a quarter of the chart.
        let cells = [
            (5, [55, 125, 255]),
            (4, [73, 137, 255]),
            (1, [150, 187, 255]),
        ];
        for (count, color) in cells {
            let n = pixels_of(&img, color).len();
            assert!(
                n > 20_000,
                "the cell of count {count}: {n} pixels of {color:?}"
            );
        }
    }
}
