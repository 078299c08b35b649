//! A model on a held-out split: loss, accuracy, confusion matrix, and every image's class
//! scores.

use burn::tensor::Device;

use crate::app::data::Split;
use crate::error::{Error, Result};
use crate::model::Cnn;
use burn::nn::loss::CrossEntropyLossConfig;

/// Loss, accuracy and confusion matrix on a split.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

/// Input values per evaluation batch: 1,000 MNIST digits (784 values each).
pub const EVAL_BATCH_VALUES: usize = 784_000;

/// The evaluation batch for images of `shape`: as many as make [`EVAL_BATCH_VALUES`] input
/// values, between 16 and 1,000, so that the activations of an evaluation batch (the peak of
/// a run's memory) do not grow with the image size: 1,000 images of 1×28×28, 63 of 3×64×64,
/// 16 of 3×224×224.
pub fn eval_batch_size(shape: [usize; 3]) -> usize {
    let values = shape.iter().product::<usize>().max(1);
    (EVAL_BATCH_VALUES / values).clamp(16, 1000)
}

/// Cross-entropy, accuracy and confusion matrix of `model` on `split`, in batches of
/// `batch_size`. A label outside the model's classes, an empty split or a zero batch size is
/// an error.
pub fn evaluate(
    model: &Cnn,
    split: &Split,
    device: &Device,
    batch_size: usize,
) -> Result<Evaluation> {
    let classes = model.num_classes();
    if classes == 0 {
        return Err(Error::config(
            "classifier",
            "the model has no output classes",
        ));
    }
    if batch_size == 0 {
        return Err(Error::setting("batch-size", "must be at least 1"));
    }
    if split.is_empty() {
        return Err(Error::setting("data", "cannot evaluate on an empty split"));
    }
    if let Some(&l) = split.labels.iter().find(|&&l| l as usize >= classes) {
        return Err(Error::setting(
            "data",
            format!("label {l} is outside the model's {classes} classes"),
        ));
    }
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let n = split.len();
    let mut confusion = vec![vec![0u64; classes]; classes];
    let mut loss_sum = 0.0;
    let mut correct = 0u64;
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(batch_size) {
        let b = split.batch(chunk, device, None);
        let logits = model.forward(b.images);
        let loss = loss_fn.forward(logits.clone(), b.labels);
        loss_sum += loss.into_scalar::<f64>() * chunk.len() as f64;
        let preds: Vec<i64> = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap_or_default();
        for (&i, &p) in chunk.iter().zip(&preds) {
            let t = split.labels[i] as usize;
            let p = (p.max(0) as usize).min(classes - 1);
            confusion[t][p] += 1;
            correct += (t == p) as u64;
        }
    }
    Ok(Evaluation {
        loss: loss_sum / n as f64,
        accuracy: correct as f64 / n as f64,
        confusion,
    })
}

/// The class scores (logits) of every image of `split`, in batches of `batch_size`.
///
/// # Shapes
/// - output: `split.len()` rows of `classes` scores
pub fn class_scores(
    model: &Cnn,
    split: &Split,
    device: &Device,
    batch_size: usize,
) -> Result<Vec<Vec<f32>>> {
    if batch_size == 0 {
        return Err(Error::setting("batch-size", "must be at least 1"));
    }
    let indices: Vec<usize> = (0..split.len()).collect();
    let mut out = Vec::with_capacity(split.len());
    for chunk in indices.chunks(batch_size) {
        let logits = model.try_forward(split.batch(chunk, device, None).images)?;
        let [_, c] = logits.dims();
        let v: Vec<f32> = logits
            .into_data()
            .convert::<f32>()
            .try_to_vec()
            .unwrap_or_default();
        out.extend(v.chunks_exact(c.max(1)).map(<[f32]>::to_vec));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_evaluation_batch_holds_a_thousand_digits_of_values() {
        assert_eq!(eval_batch_size([1, 28, 28]), 1000);
        assert_eq!(eval_batch_size([3, 64, 64]), 63);
        assert_eq!(eval_batch_size([3, 224, 224]), 16);
        assert_eq!(eval_batch_size([1, 8, 8]), 1000);
    }
}
