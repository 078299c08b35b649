//! Losses: binary cross-entropy, categorical cross-entropy (index, one-hot and probability
//! targets) and mean squared error, on burn's own loss modules where burn has them.
//!
//! Every function checks shapes first and returns [`Error::Shape`] instead of panicking inside
//! burn, and returns the mean over the batch as a one-element tensor.

use burn::nn::loss::{BinaryCrossEntropyLossConfig, CrossEntropyLossConfig, MseLoss, Reduction};
use burn::tensor::{Int, Tensor};

use crate::error::{Error, Result};
use crate::functional::prob::log_softmax;

fn check_same<const D: usize>(what: &str, a: [usize; D], b: [usize; D]) -> Result<()> {
    if a != b {
        return Err(Error::Shape {
            what: what.into(),
            message: format!("predictions have shape {a:?}, targets {b:?}"),
        });
    }
    Ok(())
}

fn check_rows(what: &str, scores: [usize; 2], targets: [usize; 1]) -> Result<()> {
    if scores[0] != targets[0] || scores[1] == 0 {
        return Err(Error::Shape {
            what: what.into(),
            message: format!(
                "scores have shape {scores:?} ([batch, classes]), targets {targets:?} ([batch])"
            ),
        });
    }
    Ok(())
}

/// Binary cross-entropy from probabilities: `-mean(y ln p + (1 - y) ln(1 - p))`, with burn's
/// [`BinaryCrossEntropyLoss`](burn::nn::loss::BinaryCrossEntropyLoss) (logs clamped at -100).
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::{Int, Tensor};
/// use netcalc::functional::loss::binary_cross_entropy;
/// let (_, device) = netcalc::select_device(None)?;
/// let p = Tensor::<1>::from_floats([0.9, 0.2, 0.6], &device);
/// let y = Tensor::<1, Int>::from_ints([1, 0, 1], &device);
/// // −(ln 0.9 + ln 0.8 + ln 0.6) / 3 = 0.279777
/// let loss = binary_cross_entropy(p, y)?.into_scalar::<f32>();
/// assert!((loss - 0.279_777).abs() < 1e-5);
/// # Ok::<(), netcalc::Error>(())
/// ```
///
/// # Shapes
/// - probs: `[..]`, values in [0, 1]
/// - targets: the same shape, labels 0 or 1
/// - output: `[1]`
pub fn binary_cross_entropy<const D: usize>(
    probs: Tensor<D>,
    targets: Tensor<D, Int>,
) -> Result<Tensor<1>> {
    check_same("binary_cross_entropy", probs.dims(), targets.dims())?;
    let loss = BinaryCrossEntropyLossConfig::new().init(&probs.device());
    Ok(loss.forward(probs, targets))
}

/// Binary cross-entropy from logits, `-mean(y ln σ(z) + (1 - y) ln(1 - σ(z)))`, computed stably
/// with log-sigmoid (burn's loss with `logits = true`).
///
/// # Shapes
/// - logits: `[..]`
/// - targets: the same shape, labels 0 or 1
/// - output: `[1]`
pub fn binary_cross_entropy_with_logits<const D: usize>(
    logits: Tensor<D>,
    targets: Tensor<D, Int>,
) -> Result<Tensor<1>> {
    check_same(
        "binary_cross_entropy_with_logits",
        logits.dims(),
        targets.dims(),
    )?;
    let loss = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&logits.device());
    Ok(loss.forward(logits, targets))
}

/// Categorical cross-entropy from logits and class indices, `-mean(log_softmax(z)[y])`, with
/// burn's [`CrossEntropyLoss`](burn::nn::loss::CrossEntropyLoss): what training uses.
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::{Int, Tensor};
/// use netcalc::functional::loss::cross_entropy;
/// let (_, device) = netcalc::select_device(None)?;
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], &device);
/// let classes = Tensor::<1, Int>::from_ints([2, 0], &device);
/// // row 0: ln(e + e² + e³) − 3 = 0.407606; row 1: ln 3 = 1.098612; mean 0.753109
/// let loss = cross_entropy(logits, classes)?.into_scalar::<f32>();
/// assert!((loss - 0.753_109).abs() < 1e-5);
/// // shapes that do not match are an error, not a panic
/// let bad = cross_entropy(Tensor::zeros([2, 3], &device), Tensor::zeros([3], &device));
/// assert!(bad.is_err());
/// # Ok::<(), netcalc::Error>(())
/// ```
///
/// # Shapes
/// - logits: `[N, C]`
/// - targets: `[N]`, class indices in `0..C`
/// - output: `[1]`
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
    check_rows("cross_entropy", logits.dims(), targets.dims())?;
    let loss = CrossEntropyLossConfig::new().init(&logits.device());
    Ok(loss.forward(logits, targets))
}

/// Categorical cross-entropy from predicted probabilities and class indices, `-mean(ln p[y])`
/// (burn's loss with `logits = false`; probabilities are clamped away from 0).
///
/// # Shapes
/// - probs: `[N, C]`, rows summing to 1
/// - targets: `[N]`
/// - output: `[1]`
pub fn cross_entropy_from_probs(probs: Tensor<2>, targets: Tensor<1, Int>) -> Result<Tensor<1>> {
    check_rows("cross_entropy_from_probs", probs.dims(), targets.dims())?;
    let loss = CrossEntropyLossConfig::new()
        .with_logits(false)
        .init(&probs.device());
    Ok(loss.forward(probs, targets))
}

/// Categorical cross-entropy from logits and one-hot (or any probability) targets,
/// `-mean_n sum_c t[n,c] · log_softmax(z)[n,c]`. burn's loss takes indices only, so this is
/// written with [`log_softmax`]; for one-hot targets it equals [`cross_entropy`].
///
/// # Shapes
/// - logits: `[N, C]`
/// - targets: `[N, C]`, rows summing to 1
/// - output: `[1]`
pub fn cross_entropy_one_hot(logits: Tensor<2>, targets: Tensor<2>) -> Result<Tensor<1>> {
    check_same("cross_entropy_one_hot", logits.dims(), targets.dims())?;
    let per_row = (targets * log_softmax(logits, 1)).sum_dim(1).neg();
    Ok(per_row.mean())
}

/// Mean squared error, `mean((ŷ - y)²)`, with burn's `MseLoss`.
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::functional::loss::mse;
/// let (_, device) = netcalc::select_device(None)?;
/// let pred = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &device);
/// let target = Tensor::<1>::from_floats([1.5, 2.0, 2.0, 6.0], &device);
/// // (0.25 + 0 + 1 + 4) / 4
/// assert_eq!(mse(pred, target)?.into_scalar::<f32>(), 1.3125);
/// # Ok::<(), netcalc::Error>(())
/// ```
///
/// # Shapes
/// - predictions: `[..]`
/// - targets: the same shape
/// - output: `[1]`
pub fn mse<const D: usize>(predictions: Tensor<D>, targets: Tensor<D>) -> Result<Tensor<1>> {
    check_same("mse", predictions.dims(), targets.dims())?;
    Ok(MseLoss::new().forward(predictions, targets, Reduction::Mean))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, values};
    use burn::tensor::Device;

    fn bce_from_probabilities_by_hand(d: Device) {
        let p = Tensor::<1>::from_floats([0.9, 0.2, 0.6], &d);
        let y = Tensor::<1, Int>::from_ints([1, 0, 1], &d);
        // -(ln 0.9 + ln 0.8 + ln 0.6) / 3 = (0.105361 + 0.223144 + 0.510826) / 3 = 0.279777
        assert_close(
            &values(binary_cross_entropy(p, y).unwrap()),
            &[0.279_777],
            1e-5,
        );
    }

    fn bce_from_logits_by_hand(d: Device) {
        let z = Tensor::<1>::from_floats([2.0, -1.0, 0.0], &d);
        let y = Tensor::<1, Int>::from_ints([1, 0, 1], &d);
        // y=1: ln(1+e^-z); y=0: ln(1+e^z): ln(1+e^-2)=0.126928, ln(1+e^-1)=0.313262, ln 2=0.693147
        // mean = 1.133337 / 3 = 0.377779
        let from_logits = values(binary_cross_entropy_with_logits(z.clone(), y.clone()).unwrap());
        assert_close(&from_logits, &[0.377_779], 1e-5);
        // the same as BCE on sigmoid(z)
        let from_probs =
            values(binary_cross_entropy(crate::functional::prob::sigmoid(z), y).unwrap());
        assert_close(&from_logits, &from_probs, 1e-5);
    }

    fn cross_entropy_from_indices_and_one_hot_by_hand(d: Device) {
        let logits = || Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], &d);
        // row 0, class 2: -(3 - ln(e + e^2 + e^3)) = -(3 - 3.407606) = 0.407606
        // row 1, class 0: uniform over 3 classes: ln 3 = 1.098612; mean 0.753109
        let idx = Tensor::<1, Int>::from_ints([2, 0], &d);
        assert_close(
            &values(cross_entropy(logits(), idx).unwrap()),
            &[0.753_109],
            1e-5,
        );
        let one_hot = Tensor::<2>::from_floats([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], &d);
        assert_close(
            &values(cross_entropy_one_hot(logits(), one_hot).unwrap()),
            &[0.753_109],
            1e-5,
        );
        // soft targets: row 0 half on class 1 and half on class 2:
        // -(0.5 (2 - 3.407606) + 0.5 (3 - 3.407606)) = 0.907606; row 1 uniform target: ln 3
        let soft =
            Tensor::<2>::from_floats([[0.0, 0.5, 0.5], [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]], &d);
        assert_close(
            &values(cross_entropy_one_hot(logits(), soft).unwrap()),
            &[(0.907_606 + 1.098_612) / 2.0],
            1e-5,
        );
    }

    fn cross_entropy_from_probabilities_by_hand(d: Device) {
        let p = Tensor::<2>::from_floats([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], &d);
        let y = Tensor::<1, Int>::from_ints([0, 2], &d);
        // -(ln 0.7 + ln 0.8) / 2 = (0.356675 + 0.223144) / 2 = 0.289909
        assert_close(
            &values(cross_entropy_from_probs(p, y).unwrap()),
            &[0.289_909],
            1e-5,
        );
    }

    fn mse_by_hand(d: Device) {
        let pred = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &d);
        let target = Tensor::<1>::from_floats([1.5, 2.0, 2.0, 6.0], &d);
        // differences -0.5, 0, 1, -2 -> squares 0.25, 0, 1, 4 -> mean 5.25 / 4 = 1.3125
        assert_close(&values(mse(pred, target).unwrap()), &[1.3125], 1e-6);
    }

    fn mismatched_shapes_are_errors_not_panics(d: Device) {
        let logits = Tensor::<2>::zeros([2, 3], &d);
        let err = cross_entropy(logits.clone(), Tensor::<1, Int>::zeros([3], &d))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[2, 3]") && err.contains("[3]"), "{err}");
        assert!(mse(Tensor::<1>::zeros([2], &d), Tensor::<1>::zeros([3], &d)).is_err());
        assert!(cross_entropy_one_hot(logits, Tensor::<2>::zeros([2, 4], &d)).is_err());
    }

    crate::test_on_backends!(
        bce_from_probabilities_by_hand,
        bce_from_logits_by_hand,
        cross_entropy_from_indices_and_one_hot_by_hand,
        cross_entropy_from_probabilities_by_hand,
        mse_by_hand,
        mismatched_shapes_are_errors_not_panics,
    );
}
