//! Sliding windows: the output-length formula that convolution and pooling share, the checks
//! of a window's sizes, and the limit on how large a layer may be.

use crate::error::{Error, Result};

/// `floor((L + 2P − K) / S) + 1`: how many positions a window of size `kernel` takes with step
/// `stride` over an input of length `len` padded by `padding` on each side — the output length
/// of a convolution or a pooling layer along one axis.
///
/// Errors (layer `window`; callers put their own layer name in front with
/// [`Error::within`]) when `K` or `S` is 0 or the window does not fit (`K > L + 2P`).
///
/// # Examples
/// ```
/// use netcalc::window_output_len;
/// // 28 pixels, 3×3 convolution: (28 − 3) / 1 + 1 = 26
/// assert_eq!(window_output_len(28, 3, 1, 0)?, 26);
/// // 26 values, 2×2 pooling with step 2: (26 − 2) / 2 + 1 = 13
/// assert_eq!(window_output_len(26, 2, 2, 0)?, 13);
/// // 5 values padded by 1, window 3, step 2: (5 + 2 − 3) / 2 + 1 = 3
/// assert_eq!(window_output_len(5, 3, 2, 1)?, 3);
/// assert!(window_output_len(2, 3, 1, 0).is_err()); // the window does not fit
/// # Ok::<(), netcalc::Error>(())
/// ```
pub fn window_output_len(
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<usize> {
    check_window("window", kernel, stride)?;
    let padded = padded_len(len, padding)
        .ok_or_else(|| Error::config("window", format!("padding {padding} is too large")))?;
    window_positions(len, kernel, stride, padding).ok_or_else(|| {
        Error::config(
            "window",
            format!(
                "kernel {kernel} is larger than the padded input (length {len} + 2·{padding} = {padded})"
            ),
        )
    })
}

/// [`window_output_len`] without the error: `None` when the kernel or stride is 0, the
/// padding overflows, or the window does not fit. What the kernels use once the layer's
/// config has been checked.
pub fn window_positions(len: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = padded_len(len, padding)?;
    (kernel >= 1 && stride >= 1 && kernel <= padded).then(|| (padded - kernel) / stride + 1)
}

/// `L + 2P`, or `None` when it overflows.
fn padded_len(len: usize, padding: usize) -> Option<usize> {
    padding.checked_mul(2).and_then(|p| p.checked_add(len))
}

/// An error naming `layer` unless the window's `kernel` and `stride` are both at least 1: the
/// check every convolution and pooling layer makes of its window.
pub fn check_window(layer: &str, kernel: usize, stride: usize) -> Result<()> {
    if kernel == 0 || stride == 0 {
        return Err(Error::config(
            layer,
            format!("kernel ({kernel}) and stride ({stride}) must be at least 1"),
        ));
    }
    Ok(())
}

/// The most values one layer's parameters, or one image's activations at any stage, may hold:
/// 2^30 (4 GiB as `f32`). Configurations above it are refused when they are checked, with the
/// layer named, instead of failing to allocate (or overflowing) later.
pub const MAX_ELEMENTS: usize = 1 << 30;

/// `∏ factors`, or an error naming `layer` and `what` when it overflows or exceeds
/// [`MAX_ELEMENTS`].
pub fn checked_elements(layer: &str, what: &str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            let shown: Vec<String> = factors.iter().map(usize::to_string).collect();
            Error::config(
                layer,
                format!(
                    "{what} {} is more than the {MAX_ELEMENTS} values a layer may hold here",
                    shown.join("·")
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_length_formula() {
        // floor((L + 2P - K) / S) + 1
        assert_eq!(window_output_len(6, 3, 1, 0).unwrap(), 4); // (6 - 3)/1 + 1
        assert_eq!(window_output_len(28, 2, 2, 0).unwrap(), 14);
        assert_eq!(window_output_len(7, 2, 2, 0).unwrap(), 3); // floor(5/2) + 1
        assert_eq!(window_output_len(5, 3, 2, 1).unwrap(), 3); // (5 + 2 - 3)/2 + 1
        assert_eq!(window_output_len(26, 3, 1, 0).unwrap(), 24);
        assert!(window_output_len(2, 3, 1, 0).is_err());
        assert!(window_output_len(5, 0, 1, 0).is_err());
        assert!(window_output_len(5, 2, 0, 0).is_err());
        let err = window_output_len(5, 2, 1, usize::MAX)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is too large"), "{err}");
        assert_eq!(window_positions(5, 3, 2, 1), Some(3));
        assert_eq!(window_positions(2, 3, 1, 0), None);
        assert_eq!(window_positions(5, 2, 1, usize::MAX), None);
    }

    #[test]
    fn element_limits() {
        // the largest allowed layer is still accepted by the check
        assert!(checked_elements("x", "w", &[1 << 15, 1 << 15]).is_ok());
        let err = checked_elements("x", "w", &[(1 << 15) + 1, 1 << 15])
            .unwrap_err()
            .to_string();
        assert!(err.contains("x: w 32769·32768 is more than"), "{err}");
        assert!(checked_elements("x", "w", &[usize::MAX, 2]).is_err());
    }
}
