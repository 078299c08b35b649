//! Pooling's vocabulary: which statistic a window keeps, and global pooling (one window over
//! the whole signal or image). The sliding-window layers are [`crate::nn::pool`].

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::functional::window::check_window;

/// Which statistic a pooling window keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// The window's maximum (padding counts as −∞).
    Max,
    /// The window's mean (padding counts as 0 and is included in the divisor, as in PyTorch's
    /// and Keras' default).
    Avg,
}

/// An error naming `layer` unless a pooling window along one axis works: kernel and stride
/// at least 1 ([`check_window`]), and padding at most half the kernel, so that every window
/// holds at least one real value (PyTorch and burn require the same).
pub fn check_pool_window(layer: &str, kernel: usize, stride: usize, padding: usize) -> Result<()> {
    check_window(layer, kernel, stride)?;
    // `padding > kernel / 2` is `2P > K` without overflowing for any P.
    if padding > kernel / 2 {
        return Err(Error::config(
            layer,
            format!("padding {padding} is more than half the kernel {kernel}"),
        ));
    }
    Ok(())
}

/// Global pooling over the spatial axes: one value per channel.
///
/// # Shapes
/// - input: `[N, C, H, W]`
/// - output: `[N, C]`
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::functional::pool::{PoolKind, global_pool2d};
/// let (_, device) = netcalc::select_device(None)?;
/// // one image, two 2×2 channels: (1, 2, 3, 4) and (−1, −5, 2, 0)
/// let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, -1.0, -5.0, 2.0, 0.0], &device)
///     .reshape([1, 2, 2, 2]);
/// let max = global_pool2d(PoolKind::Max, x.clone()).into_data().try_to_vec::<f32>().unwrap();
/// let avg = global_pool2d(PoolKind::Avg, x).into_data().try_to_vec::<f32>().unwrap();
/// assert_eq!(max, [4.0, 2.0]);
/// assert_eq!(avg, [2.5, -1.0]); // 10 / 4 and −4 / 4
/// # Ok::<(), netcalc::Error>(())
/// ```
pub fn global_pool2d(kind: PoolKind, x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    let flat = x.reshape([n, c, h * w]);
    global_pool1d(kind, flat)
}

/// Global pooling over the length axis: one value per channel.
///
/// # Shapes
/// - input: `[N, C, L]`
/// - output: `[N, C]`
pub fn global_pool1d(kind: PoolKind, x: Tensor<3>) -> Tensor<2> {
    let [n, c, _] = x.dims();
    let pooled = match kind {
        PoolKind::Max => x.max_dim(2),
        PoolKind::Avg => x.mean_dim(2),
    };
    pooled.reshape([n, c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, values};
    use burn::tensor::Device;

    fn global_pooling(d: Device) {
        // channel 0: 1..4, channel 1: -1, -5, 2, 0
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, -1.0, -5.0, 2.0, 0.0], &d)
            .reshape([1, 2, 2, 2]);
        assert_close(
            &values(global_pool2d(PoolKind::Max, x.clone())),
            &[4.0, 2.0],
            1e-6,
        );
        assert_close(
            &values(global_pool2d(PoolKind::Avg, x.clone())),
            &[2.5, -1.0],
            1e-6,
        );
        let g = global_pool1d(PoolKind::Max, x.reshape([1, 2, 4]));
        assert_eq!(g.dims(), [1, 2]);
        assert_close(&values(g), &[4.0, 2.0], 1e-6);
    }

    crate::test_on_backends!(global_pooling);
}
