//! A Keras-like model summary: one row per layer with its output shape and parameter count.

use std::fmt;

use crate::error::Result;
use crate::functional::pool::PoolKind;
use crate::model::CnnConfig;
use crate::nn::dense::dense_params;

/// One row of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// Layer name and type, e.g. `conv2d (Conv2D)`.
    pub layer: String,
    /// Output shape without the batch axis, e.g. `[32, 26, 26]`.
    pub output_shape: Vec<usize>,
    /// Learnable parameters of this layer.
    pub params: usize,
}

/// The summary of a model: its rows and totals.
///
/// # Examples
/// ```
/// let summary = netcalc::CnnConfig::keras_mnist().summary()?;
/// assert_eq!(summary.total_params(), 34_826);
/// assert_eq!(summary.rows[0].layer, "conv2d (Conv2D)");
/// assert_eq!(summary.rows[0].output_shape, [32, 26, 26]);
/// assert_eq!(summary.rows[0].params, 320); // 3·3·1·32 + 32
/// println!("{summary}"); // the Keras-like table
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The model's name.
    pub name: String,
    /// Input shape without the batch axis.
    pub input_shape: Vec<usize>,
    /// One row per layer, in order.
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// Sum of the rows' parameters.
    pub fn total_params(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.params)
            .fold(0, usize::saturating_add)
    }
}

/// `34826` -> `34,826`.
///
/// # Examples
/// ```
/// assert_eq!(netcalc::model::summary::thousands(225_034), "225,034");
/// ```
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn shape(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("(None, {})", dims.join(", "))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w0 = self
            .rows
            .iter()
            .map(|r| r.layer.len())
            .max()
            .unwrap_or(0)
            .max(14)
            + 2;
        let w1 = self
            .rows
            .iter()
            .map(|r| shape(&r.output_shape).len())
            .max()
            .unwrap_or(0)
            .max(12)
            + 2;
        let w2 = 12;
        let line = |c: char| c.to_string().repeat(w0 + w1 + w2 + 2);
        writeln!(
            f,
            "Model: \"{}\"  (input {})",
            self.name,
            shape(&self.input_shape)
        )?;
        writeln!(f, "{}", line('━'))?;
        writeln!(
            f,
            "{:<w0$} {:<w1$} {:>w2$}",
            "Layer (type)", "Output Shape", "Param #"
        )?;
        writeln!(f, "{}", line('━'))?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<w0$} {:<w1$} {:>w2$}",
                r.layer,
                shape(&r.output_shape),
                thousands(r.params)
            )?;
        }
        writeln!(f, "{}", line('━'))?;
        writeln!(f, " Total params: {}", thousands(self.total_params()))?;
        writeln!(f, " Trainable params: {}", thousands(self.total_params()))?;
        write!(f, " Non-trainable params: 0")
    }
}

impl CnnConfig {
    /// The Keras-like summary: conv, pooling, flatten, dropout and dense rows with output shapes
    /// and parameter counts.
    pub fn summary(&self) -> Result<Summary> {
        self.validate()?;
        let mut rows = Vec::new();
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut name = |base: &'static str, ty: &str| {
            let n = counts.entry(base).or_insert(0);
            let s = if *n == 0 {
                format!("{base} ({ty})")
            } else {
                format!("{base}_{n} ({ty})")
            };
            *n += 1;
            s
        };
        let mut shape = self.features.input;
        for (i, b) in self.features.resolved_blocks().iter().enumerate() {
            let layer = format!("features.blocks[{i}]");
            rows.push(SummaryRow {
                layer: name("conv2d", "Conv2D"),
                output_shape: b.conv_output_shape(&layer, shape)?.to_vec(),
                params: b.num_params(),
            });
            shape = b.output_shape(&layer, shape)?;
            if let Some(p) = &b.pool {
                let (base, ty) = match p.kind {
                    PoolKind::Max => ("max_pooling2d", "MaxPooling2D"),
                    PoolKind::Avg => ("average_pooling2d", "AveragePooling2D"),
                };
                rows.push(SummaryRow {
                    layer: name(base, ty),
                    output_shape: shape.to_vec(),
                    params: 0,
                });
            }
        }
        let f = shape.iter().product::<usize>();
        rows.push(SummaryRow {
            layer: name("flatten", "Flatten"),
            output_shape: vec![f],
            params: 0,
        });
        let cls = &self.classifier;
        if cls.input_dropout > 0.0 {
            rows.push(SummaryRow {
                layer: name("dropout", "Dropout"),
                output_shape: vec![f],
                params: 0,
            });
        }
        let shapes = cls.layer_shapes();
        for (i, (w, _)) in shapes.iter().enumerate() {
            rows.push(SummaryRow {
                layer: name("dense", "Dense"),
                output_shape: vec![w[1]],
                params: dense_params(w[0], w[1]),
            });
            if i + 1 < shapes.len() && cls.hidden_dropout > 0.0 {
                rows.push(SummaryRow {
                    layer: name("dropout", "Dropout"),
                    output_shape: vec![w[1]],
                    params: 0,
                });
            }
        }
        Ok(Summary {
            name: self.name.clone(),
            input_shape: self.features.input.to_vec(),
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_convnet_summary_matches_keras() {
        let s = CnnConfig::keras_mnist().summary().unwrap();
        let rows: Vec<(&str, Vec<usize>, usize)> = s
            .rows
            .iter()
            .map(|r| (r.layer.as_str(), r.output_shape.clone(), r.params))
            .collect();
        // model.summary() of keras.io/examples/vision/mnist_convnet (channels-first here)
        assert_eq!(
            rows,
            vec![
                ("conv2d (Conv2D)", vec![32, 26, 26], 320),
                ("max_pooling2d (MaxPooling2D)", vec![32, 13, 13], 0),
                ("conv2d_1 (Conv2D)", vec![64, 11, 11], 18_496),
                ("max_pooling2d_1 (MaxPooling2D)", vec![64, 5, 5], 0),
                ("flatten (Flatten)", vec![1600], 0),
                ("dropout (Dropout)", vec![1600], 0),
                ("dense (Dense)", vec![10], 16_010),
            ]
        );
        assert_eq!(s.total_params(), 34_826);
        let text = s.to_string();
        assert!(text.contains("Total params: 34,826"), "{text}");
        assert!(text.contains("18,496") && text.contains("16,010"), "{text}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(320), "320");
        assert_eq!(thousands(6585), "6,585");
        assert_eq!(thousands(34_826), "34,826");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
