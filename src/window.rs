//! Sliding windows: the output-length formula that convolution and pooling share.

use crate::error::{Error, Result};

/// `floor((L + 2P − K) / S) + 1`: how many positions a window of size `kernel` takes with step
/// `stride` over an input of length `len` padded by `padding` on each side — the output length
/// of a convolution or a pooling layer along one axis.
///
/// Errors (layer `window`; callers put their own layer name in front with
/// [`Error::within`]) when `K` or `S` is 0 or the window does not fit (`K > L + 2P`).
pub fn window_output_len(
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<usize> {
    if kernel == 0 || stride == 0 {
        return Err(Error::config(
            "window",
            format!("kernel ({kernel}) and stride ({stride}) must be at least 1"),
        ));
    }
    let padded = padding
        .checked_mul(2)
        .and_then(|p| p.checked_add(len))
        .ok_or_else(|| Error::config("window", format!("padding {padding} is too large")))?;
    if kernel > padded {
        return Err(Error::config(
            "window",
            format!(
                "kernel {kernel} is larger than the padded input (length {len} + 2·{padding} = {padded})"
            ),
        ));
    }
    Ok((padded - kernel) / stride + 1)
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
