//! PNG plots of the training curves and the confusion matrix (plotters, embedded DejaVu Sans).

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::metrics::EpochMetrics;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The font is compiled in, so registering it cannot fail at run time; ignore the unit
        // result of a second registration.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Draws two curves (train and test) of one metric per epoch into a PNG.
pub fn plot_curves(path: &Path, title: &str, history: &[EpochMetrics], train: fn(&EpochMetrics) -> f64, test: fn(&EpochMetrics) -> f64) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let xs = history.len().max(1) as f64;
    let ys: Vec<f64> = history.iter().flat_map(|m| [train(m), test(m)]).filter(|v| v.is_finite()).collect();
    let (lo, hi) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if ys.is_empty() { (0.0, 1.0) } else if hi - lo < 1e-9 { (lo - 0.5, hi + 0.5) } else { (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)) };
    let mut chart = ChartBuilder::on(&root)
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
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
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
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))
}

/// Draws `loss.png` and `accuracy.png` into `dir`.
pub fn plot_history(dir: &Path, history: &[EpochMetrics]) -> Result<()> {
    plot_curves(&dir.join("loss.png"), "cross-entropy loss", history, |m| m.train_loss, |m| m.test_loss)?;
    plot_curves(
        &dir.join("accuracy.png"),
        "accuracy (%)",
        history,
        |m| 100.0 * m.train_accuracy,
        |m| 100.0 * m.test_accuracy,
    )
}

/// Draws a confusion matrix as a heat map with counts (rows = true, columns = predicted).
pub fn plot_confusion(path: &Path, confusion: &[Vec<u64>]) -> Result<()> {
    register_font();
    let n = confusion.len();
    let root = BitMapBackend::new(path, (620, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("confusion matrix (rows: true, columns: predicted)", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(35)
        .build_cartesian_2d(0..n as i32, 0..n as i32)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_offset(20)
        .y_label_offset(-20)
        .y_label_formatter(&|y| format!("{}", n as i32 - 1 - y))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    let max = confusion.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    for (r, row) in confusion.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let y = (n - 1 - r) as i32;
            let t = (v as f64 / max).powf(0.4);
            let color = RGBColor(255 - (t * 200.0) as u8, 255 - (t * 130.0) as u8, 255);
            chart
                .draw_series(std::iter::once(Rectangle::new([(c as i32, y), (c as i32 + 1, y + 1)], color.filled())))
                .map_err(|e| plot_err(path, e))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    v.to_string(),
                    (c as i32, y + 1),
                    ("sans-serif", 13).into_font().color(&BLACK),
                )))
                .map_err(|e| plot_err(path, e))?;
        }
    }
    root.present().map_err(|e| plot_err(path, e))
}
