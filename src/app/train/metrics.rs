//! Per-epoch metrics, written as CSV and JSON.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (with dropout and augmentation on).
    pub train_loss: f64,
    /// Training accuracy over the epoch, in [0, 1].
    pub train_accuracy: f64,
    /// Mean cross-entropy on the held-out split.
    pub test_loss: f64,
    /// Accuracy on the held-out split, in [0, 1].
    pub test_accuracy: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Training throughput (images per second, data preparation included).
    pub images_per_sec: f64,
    /// Wall time of the epoch (training + evaluation), seconds.
    pub epoch_seconds: f64,
    /// Wall time since the run started (across resumes), seconds.
    pub elapsed_seconds: f64,
}

impl EpochMetrics {
    /// The one-line summary printed after each epoch.
    pub fn line(&self, epochs: usize) -> String {
        format!(
            "epoch {:>2}/{epochs}  train loss {:.4} acc {:6.2}%  test loss {:.4} acc {:6.2}%  lr {:.2e}  {:.0} img/s  {:.1}s",
            self.epoch,
            self.train_loss,
            100.0 * self.train_accuracy,
            self.test_loss,
            100.0 * self.test_accuracy,
            self.lr,
            self.images_per_sec,
            self.epoch_seconds
        )
    }
}

impl EpochMetrics {
    /// The numbers after the epoch, in the order of the CSV columns.
    fn numbers(&self) -> [f64; 8] {
        [
            self.train_loss,
            self.train_accuracy,
            self.test_loss,
            self.test_accuracy,
            self.lr,
            self.images_per_sec,
            self.epoch_seconds,
            self.elapsed_seconds,
        ]
    }
}

/// One line per epoch: the epoch, then each number as `format` writes it, `sep` between.
fn rows(history: &[EpochMetrics], sep: &str, format: impl Fn(usize, f64) -> String) -> String {
    history
        .iter()
        .map(|m| {
            let numbers = m.numbers();
            let shown = numbers.iter().enumerate().map(|(i, &v)| format(i, v));
            std::iter::once(m.epoch.to_string())
                .chain(shown)
                .collect::<Vec<_>>()
                .join(sep)
                + "\n"
        })
        .collect()
}

/// The CSV text of a metrics history (header + one row per epoch).
pub fn to_csv(history: &[EpochMetrics]) -> String {
    let header = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,lr,images_per_sec,epoch_seconds,elapsed_seconds\n";
    let body = rows(history, ",", |column, v| match column {
        0..=3 => format!("{v:.6}"),
        4 => format!("{v:.6e}"),
        5 => format!("{v:.1}"),
        _ => format!("{v:.3}"),
    });
    header.to_string() + &body
}

/// The history with every number in Rust's shortest round-trip form (`f64` `Display`), so that
/// [`parse_exact`] gives back the identical values: what checkpoints store. (JSON parsing of
/// floats is not always correctly rounded, which would make a resumed run's history differ in
/// the last bit.)
pub fn to_exact(history: &[EpochMetrics]) -> String {
    rows(history, " ", |_, v| v.to_string())
}

/// Parses [`to_exact`]'s output; `path` names the file in errors.
pub fn parse_exact(path: &Path, text: &str) -> Result<Vec<EpochMetrics>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let bad = |what: &str| Error::data(path, format!("line {}: {what}", i + 1));
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 9 {
                return Err(bad(&format!("expected 9 fields, found {}", f.len())));
            }
            let num = |k: usize| {
                f[k].parse::<f64>()
                    .map_err(|_| bad(&format!("`{}` is not a number", f[k])))
            };
            Ok(EpochMetrics {
                epoch: f[0]
                    .parse()
                    .map_err(|_| bad(&format!("`{}` is not an epoch number", f[0])))?,
                train_loss: num(1)?,
                train_accuracy: num(2)?,
                test_loss: num(3)?,
                test_accuracy: num(4)?,
                lr: num(5)?,
                images_per_sec: num(6)?,
                epoch_seconds: num(7)?,
                elapsed_seconds: num(8)?,
            })
        })
        .collect()
}

/// A confusion matrix (rows = true class, columns = predicted) as CSV text, the classes named
/// by `classes` (a name with a comma or a quote is quoted, as CSV does).
pub fn confusion_csv(confusion: &[Vec<u64>], classes: &[String]) -> String {
    let name = |i: usize| {
        let n = classes.get(i).cloned().unwrap_or_else(|| i.to_string());
        if n.contains([',', '"', '\n']) {
            format!("\"{}\"", n.replace('"', "\"\""))
        } else {
            n
        }
    };
    let mut s = String::from("true\\predicted");
    for c in 0..confusion.len() {
        s.push(',');
        s.push_str(&name(c));
    }
    s.push('\n');
    for (r, row) in confusion.iter().enumerate() {
        s.push_str(&name(r));
        for v in row {
            s.push_str(&format!(",{v}"));
        }
        s.push('\n');
    }
    s
}

/// Per-image class scores as CSV: `label,predicted,<one column per class>`, the classes named
/// by `classes`; the scores in Rust's shortest round-trip form.
pub fn scores_csv(labels: &[u32], scores: &[Vec<f32>], classes: &[String]) -> String {
    let mut s = String::from("label,predicted");
    for c in classes {
        s.push(',');
        s.push_str(&c.replace(',', ";"));
    }
    s.push('\n');
    for (label, row) in labels.iter().zip(scores) {
        let best = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(k, _)| k);
        s.push_str(&format!("{label},{best}"));
        for v in row {
            s.push_str(&format!(",{v}"));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 0.5,
            train_accuracy: 0.9,
            test_loss: 0.25,
            test_accuracy: 0.95,
            lr: 1e-3,
            images_per_sec: 1234.5,
            epoch_seconds: 2.0,
            elapsed_seconds: 2.0 * epoch as f64,
        }
    }

    #[test]
    fn csv_and_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let h = vec![row(1), row(2)];
        let run = crate::app::train::RunDir::create(dir.path()).unwrap();
        run.write_history(&h).unwrap();
        let back: Vec<EpochMetrics> =
            crate::app::fsio::read_json(&dir.path().join("metrics.json")).unwrap();
        assert_eq!(back, h);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "1,0.500000,0.900000,0.250000,0.950000,1.000000e-3,1234.5,2.000,2.000"
        );
        let exact = to_exact(&h);
        assert_eq!(parse_exact(Path::new("h"), &exact).unwrap(), h);
        let third = EpochMetrics {
            train_accuracy: 0.233_333_333_333_333_34,
            ..row(3)
        };
        assert_eq!(
            parse_exact(Path::new("h"), &to_exact(std::slice::from_ref(&third))).unwrap(),
            vec![third]
        );
        let err = parse_exact(Path::new("h"), "1 2 x 4 5 6 7 8 9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1: `x` is not a number"), "{err}");
        assert!(
            row(3)
                .line(5)
                .starts_with("epoch  3/5  train loss 0.5000 acc  90.00%")
        );
    }

    #[test]
    fn scores_as_csv() {
        let classes: Vec<String> = vec!["a".into(), "b,c".into()];
        assert_eq!(
            scores_csv(&[1, 0], &[vec![0.5, 2.25], vec![-1.0, -3.0]], &classes),
            "label,predicted,a,b;c\n1,1,0.5,2.25\n0,0,-1,-3\n"
        );
    }

    #[test]
    fn confusion_as_csv() {
        let digits: Vec<String> = vec!["0".into(), "1".into()];
        assert_eq!(
            confusion_csv(&[vec![5, 1], vec![0, 4]], &digits),
            "true\\predicted,0,1\n0,5,1\n1,0,4\n"
        );
        let named: Vec<String> = vec!["ankle boot".into(), "shirt, t".into()];
        assert_eq!(
            confusion_csv(&[vec![5, 1], vec![0, 4]], &named),
            "true\\predicted,ankle boot,\"shirt, t\"\nankle boot,5,1\n\"shirt, t\",0,4\n"
        );
    }
}
