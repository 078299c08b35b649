//! Probabilities and scores: odds, logit, sigmoid (the logit's inverse), softmax, log-softmax.
//!
//! For a probability `p`: `odds(p) = p / (1 - p)`, `logit(p) = ln(odds(p))`, and
//! `sigmoid(logit(p)) = p`. A classifier's raw scores are logits; softmax turns a vector of them
//! into probabilities, and for two classes `softmax([z0, z1])[1] = sigmoid(z1 - z0)`.

use burn::tensor::{Tensor, activation};

/// `p / (1 - p)`: how many times likelier the event is than not. `odds(0.8) = 4`.
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::functional::prob::odds;
/// let (_, device) = netcalc::select_device(None)?;
/// let p = Tensor::<1>::from_floats([0.5, 0.8, 0.2], &device);
/// let o = odds(p).into_data().try_to_vec::<f32>().unwrap();
/// // 0.5 / 0.5, 0.8 / 0.2, 0.2 / 0.8
/// assert!((o[0] - 1.0).abs() < 1e-6 && (o[1] - 4.0).abs() < 1e-5 && (o[2] - 0.25).abs() < 1e-6);
/// # Ok::<(), netcalc::Error>(())
/// ```
///
/// # Shapes
/// - input: any `[..]` of probabilities in [0, 1)
/// - output: the same shape
pub fn odds<const D: usize>(p: Tensor<D>) -> Tensor<D> {
    p.clone().div(p.neg().add_scalar(1.0))
}

/// `ln(p / (1 - p))`, the log-odds; the inverse of [`sigmoid`]. `logit(0.5) = 0`.
///
/// Computed as `ln(p) - ln(1 - p)` (with `log1p`) for accuracy near 0 and 1.
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::functional::prob::{logit, sigmoid};
/// let (_, device) = netcalc::select_device(None)?;
/// let p = Tensor::<1>::from_floats([0.5, 0.8], &device);
/// let z = logit(p.clone());
/// // ln(1) = 0, ln(4) = 1.386294
/// let zs = z.clone().into_data().try_to_vec::<f32>().unwrap();
/// assert!(zs[0].abs() < 1e-6 && (zs[1] - 1.386_294).abs() < 1e-5);
/// // sigmoid undoes it
/// let back = sigmoid(z).into_data().try_to_vec::<f32>().unwrap();
/// assert!((back[1] - 0.8).abs() < 1e-6);
/// # Ok::<(), netcalc::Error>(())
/// ```
///
/// # Shapes
/// - input: any `[..]` of probabilities in (0, 1)
/// - output: the same shape
pub fn logit<const D: usize>(p: Tensor<D>) -> Tensor<D> {
    p.clone().log() - p.neg().log1p()
}

/// `1 / (1 + e^-z)`: maps a logit to a probability; the inverse of [`logit`].
///
/// # Shapes
/// - input: any `[..]`
/// - output: the same shape, values in (0, 1)
pub fn sigmoid<const D: usize>(z: Tensor<D>) -> Tensor<D> {
    activation::sigmoid(z)
}

/// `e^(z_i) / sum_j e^(z_j)` along `dim`, computed stably (the maximum is subtracted first, so
/// logits of ±1000 give finite results).
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::functional::prob::softmax;
/// let (_, device) = netcalc::select_device(None)?;
/// // e^1, e^2, e^3 over their sum 30.192875
/// let scores = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// let p = softmax(scores, 1).into_data().try_to_vec::<f32>().unwrap();
/// assert!((p[0] - 0.090_031).abs() < 1e-5 && (p[2] - 0.665_241).abs() < 1e-5);
/// assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// # Ok::<(), netcalc::Error>(())
/// ```
///
/// # Shapes
/// - input: any `[..]`
/// - output: the same shape; each slice along `dim` sums to 1
pub fn softmax<const D: usize>(z: Tensor<D>, dim: usize) -> Tensor<D> {
    activation::softmax(z, dim)
}

/// `ln(softmax(z))` along `dim`, computed as `z - logsumexp(z)` without forming the softmax.
///
/// # Shapes
/// - input: any `[..]`
/// - output: the same shape
pub fn log_softmax<const D: usize>(z: Tensor<D>, dim: usize) -> Tensor<D> {
    activation::log_softmax(z, dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, values};
    use burn::tensor::Device;

    fn odds_and_logit_by_hand(d: Device) {
        let p = || Tensor::<1>::from_floats([0.5, 0.8, 0.2, 0.9], &d);
        // 0.5/0.5 = 1, 0.8/0.2 = 4, 0.2/0.8 = 0.25, 0.9/0.1 = 9
        assert_close(&values(odds(p())), &[1.0, 4.0, 0.25, 9.0], 1e-5);
        // ln 1 = 0, ln 4 = 1.386294, ln 0.25 = -1.386294, ln 9 = 2.197225
        assert_close(
            &values(logit(p())),
            &[0.0, 1.386_294, -1.386_294, 2.197_225],
            1e-5,
        );
    }

    fn sigmoid_inverts_logit(d: Device) {
        let ps = [0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999];
        let p = Tensor::<1>::from_floats(ps, &d);
        assert_close(&values(sigmoid(logit(p))), &ps, 1e-6);
        // and the other way round: logit(sigmoid(z)) = z
        let zs = [-5.0, -1.0, 0.0, 2.5];
        let z = Tensor::<1>::from_floats(zs, &d);
        assert_close(&values(logit(sigmoid(z))), &zs, 1e-4);
    }

    fn softmax_by_hand(d: Device) {
        // e^1, e^2, e^3 = 2.718282, 7.389056, 20.085537; sum 30.192875
        let z = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &d);
        assert_close(
            &values(softmax(z.clone(), 1)),
            &[0.090_031, 0.244_728, 0.665_241],
            1e-5,
        );
        // log-softmax = z - ln(30.192875) = z - 3.407606
        assert_close(
            &values(log_softmax(z, 1)),
            &[-2.407_606, -1.407_606, -0.407_606],
            1e-5,
        );
    }

    fn two_class_softmax_is_sigmoid_of_the_logit_difference(d: Device) {
        let z = Tensor::<2>::from_floats([[0.3, 1.7], [2.0, -1.0], [5.0, 5.0]], &d);
        let p1 = softmax(z.clone(), 1).slice([0..3, 1..2]).flatten::<1>(0, 1);
        let diff = (z.clone().slice([0..3, 1..2]) - z.slice([0..3, 0..1])).flatten::<1>(0, 1);
        assert_close(&values(p1), &values(sigmoid(diff)), 1e-6);
    }

    fn softmax_is_shift_invariant_and_stable(d: Device) {
        let z = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &d);
        let shifted = z.clone().add_scalar(100.0);
        assert_close(&values(softmax(z, 1)), &values(softmax(shifted, 1)), 1e-6);
        // logits of +-1000 overflow a naive e^z; the stable form gives [0, 1] and [0.5, 0.5]
        let big = Tensor::<2>::from_floats([[-1000.0, 1000.0], [1000.0, 1000.0]], &d);
        let p = values(softmax(big.clone(), 1));
        assert!(p.iter().all(|v| v.is_finite()), "{p:?}");
        assert_close(&p, &[0.0, 1.0, 0.5, 0.5], 1e-6);
        let lp = values(log_softmax(big, 1));
        assert!(lp.iter().all(|v| v.is_finite()), "{lp:?}");
        // ln softmax: [-2000, 0] and [-ln 2, -ln 2]
        let ln2 = std::f32::consts::LN_2;
        assert_close(&lp, &[-2000.0, 0.0, -ln2, -ln2], 1e-3);
    }

    crate::test_on_backends!(
        odds_and_logit_by_hand,
        sigmoid_inverts_logit,
        softmax_by_hand,
        two_class_softmax_is_sigmoid_of_the_logit_difference,
        softmax_is_shift_invariant_and_stable,
    );
}
