//! A Keras-like model summary: one row per layer with its output shape and parameter count.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(320), "320");
        assert_eq!(thousands(6585), "6,585");
        assert_eq!(thousands(34_826), "34,826");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
