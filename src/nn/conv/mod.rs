//! Convolution blocks, 1D and 2D: convolution → activation → optional pooling.
//!
//! A 2D convolution with `C_out` filters of size `K×K` over `C_in` channels has
//! `K·K·C_in·C_out` weights and `C_out` biases; its output side is
//! `floor((L + 2P − K) / S) + 1` ([`crate::window_output_len`]).

pub mod conv1d;
pub mod conv2d;

pub use conv1d::{Conv1dBlock, Conv1dBlockConfig};
pub use conv2d::{Conv2dBlock, Conv2dBlockConfig};

use crate::error::{Error, Result};
use crate::functional::window::{check_window, window_output_len};

/// `K·K·C_in·C_out + C_out`: the parameters of a 2D convolution with bias.
///
/// Saturates at `usize::MAX` instead of overflowing; configs are checked against
/// [`crate::functional::window::MAX_ELEMENTS`] long before that.
///
/// # Examples
/// ```
/// // MNIST's first convolution: 32 filters of 3×3 over 1 channel
/// assert_eq!(netcalc::nn::conv::conv2d_params(3, 1, 32), 3 * 3 * 1 * 32 + 32); // 320
/// ```
pub fn conv2d_params(kernel: usize, c_in: usize, c_out: usize) -> usize {
    kernel
        .saturating_mul(kernel)
        .saturating_mul(c_in)
        .saturating_mul(c_out)
        .saturating_add(c_out)
}

/// `K·C_in·C_out + C_out`: the parameters of a 1D convolution with bias.
///
/// Saturates at `usize::MAX` instead of overflowing.
pub fn conv1d_params(kernel: usize, c_in: usize, c_out: usize) -> usize {
    kernel
        .saturating_mul(c_in)
        .saturating_mul(c_out)
        .saturating_add(c_out)
}

/// The checks every convolution makes of its config: at least one filter, one input channel,
/// and a window of at least 1 ([`check_window`]).
fn check_conv(
    layer: &str,
    in_channels: usize,
    filters: usize,
    kernel: usize,
    stride: usize,
) -> Result<()> {
    if filters == 0 {
        return Err(Error::config(layer, "filters must be at least 1, got 0"));
    }
    if in_channels == 0 {
        return Err(Error::config(
            layer,
            "input channels must be at least 1, got 0",
        ));
    }
    check_window(layer, kernel, stride)
}

/// [`window_output_len`] with the layer's name in front of the error.
fn conv_out(
    layer: &str,
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<usize> {
    window_output_len(len, kernel, stride, padding).map_err(|e| e.within(layer))
}

fn default_stride() -> usize {
    1
}
