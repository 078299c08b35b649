//! 1D pooling, max or average, with kernel, stride and padding.
//!
//! A pooling layer slides a window of `K` values with step `S` over an input of length `L`
//! (padded by `P` on each side) and keeps the window's maximum or mean. It has **no learnable
//! parameters** and works on each channel separately, so the **channel count is unchanged**.
//! The output length is [`window_output_len`]: `floor((L + 2P − K) / S) + 1`.

use burn::module::Module;
use burn::tensor::module::{avg_pool1d, max_pool1d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::functional::pool::{PoolKind, check_pool_window};
use crate::functional::window::window_output_len;

/// Configuration of a [`Pool1d`] layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool1dConfig {
    /// Max or average.
    pub kind: PoolKind,
    /// Window size `K`.
    pub kernel: usize,
    /// Step `S`; defaults to the window size (non-overlapping windows).
    #[serde(default)]
    pub stride: Option<usize>,
    /// Zero (avg) / −∞ (max) padding `P` on each side.
    #[serde(default)]
    pub padding: usize,
}

impl Pool1dConfig {
    /// A pool of window `kernel` with stride = kernel and no padding.
    pub fn new(kind: PoolKind, kernel: usize) -> Self {
        Self {
            kind,
            kernel,
            stride: None,
            padding: 0,
        }
    }
    /// Builds the layer, checking the window. Pooling has no parameters: nothing is put on
    /// `device`, which is taken for the same `init(&device)` as every layer.
    pub fn init(&self, device: &Device) -> Result<Pool1d> {
        let _ = device;
        let stride = self.stride.unwrap_or(self.kernel);
        check_pool_window("pool1d", self.kernel, stride, self.padding)?;
        Ok(Pool1d {
            kind: self.kind,
            kernel: self.kernel,
            stride,
            padding: self.padding,
        })
    }
}

setters!(Pool1dConfig {
    /// Sets the stride (the window's size by default).
    with_stride(stride: usize) => Some;
    /// Sets the padding on each side.
    with_padding(padding: usize);
});

/// 1D max or average pooling over `[N, C, L]`.
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::{Pool1dConfig, PoolKind};
/// let (_, device) = netcalc::select_device(None)?;
/// // a window of 3 sliding one step at a time over 6 values: 4 outputs
/// let pool = Pool1dConfig::new(PoolKind::Max, 3).with_stride(1).init(&device)?;
/// assert_eq!(pool.output_len(6)?, 4); // (6 − 3) / 1 + 1
/// let x = Tensor::<1>::from_floats([1.0, 3.0, 2.0, 5.0, 4.0, 0.0], &device).reshape([1, 1, 6]);
/// let y = pool.forward(x).into_data().try_to_vec::<f32>().unwrap();
/// assert_eq!(y, [3.0, 5.0, 5.0, 5.0]); // max of (1,3,2) (3,2,5) (2,5,4) (5,4,0)
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Pool1d {
    /// Max or average.
    #[module(skip)]
    pub kind: PoolKind,
    /// Window size.
    pub kernel: usize,
    /// Step.
    pub stride: usize,
    /// Padding on each side.
    pub padding: usize,
}

impl Pool1d {
    /// The output length for an input of length `len`.
    pub fn output_len(&self, len: usize) -> Result<usize> {
        window_output_len(len, self.kernel, self.stride, self.padding)
            .map_err(|e| e.within("pool1d"))
    }

    /// Pools each channel.
    ///
    /// # Shapes
    /// - input: `[N, C, L]`
    /// - output: `[N, C, floor((L + 2P − K) / S) + 1]`
    ///
    /// # Panics
    /// If the window does not fit in the input; [`Pool1d::try_forward`] returns an error instead.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self.kind {
            PoolKind::Max => max_pool1d(
                x,
                MaxPoolOptions::new([self.kernel])
                    .with_stride([self.stride])
                    .with_padding([self.padding]),
            ),
            PoolKind::Avg => avg_pool1d(
                x,
                AvgPoolOptions::new([self.kernel])
                    .with_stride([self.stride])
                    .with_padding([self.padding]),
            ),
        }
    }

    /// [`Pool1d::forward`] after checking that the window fits.
    ///
    /// # Shapes
    /// - input: `[N, C, L]`
    /// - output: `[N, C, L_out]`
    pub fn try_forward(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        self.output_len(x.dims()[2])?;
        Ok(self.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, values};

    fn sliding_window_1d_stride_1(d: Device) {
        // the classic example: a window of 3 sliding one step at a time over 6 values
        let x = Tensor::<1>::from_floats([1.0, 3.0, 2.0, 5.0, 4.0, 0.0], &d).reshape([1, 1, 6]);
        let pool = |kind, stride, padding| {
            Pool1dConfig::new(kind, 3)
                .with_stride(stride)
                .with_padding(padding)
                .init(&d)
                .unwrap()
        };
        // windows (1,3,2) (3,2,5) (2,5,4) (5,4,0) -> max 3 5 5 5
        let max = pool(PoolKind::Max, 1, 0);
        assert_close(&values(max.forward(x.clone())), &[3.0, 5.0, 5.0, 5.0], 1e-6);
        // means 6/3 10/3 11/3 9/3
        let avg = pool(PoolKind::Avg, 1, 0);
        assert_close(
            &values(avg.forward(x.clone())),
            &[2.0, 10.0 / 3.0, 11.0 / 3.0, 3.0],
            1e-5,
        );
        // stride 2, padding 1: padded (pad 1 3 2 5 4 0 pad); windows at 0, 2, 4 -> 3 outputs
        // (-inf,1,3) (3,2,5) (5,4,0) -> 3 5 5
        let max_p = pool(PoolKind::Max, 2, 1);
        assert_close(&values(max_p.forward(x.clone())), &[3.0, 5.0, 5.0], 1e-6);
        // (0,1,3)/3 (3,2,5)/3 (5,4,0)/3, padding counted
        let avg_p = pool(PoolKind::Avg, 2, 1);
        assert_close(
            &values(avg_p.forward(x)),
            &[4.0 / 3.0, 10.0 / 3.0, 3.0],
            1e-5,
        );
    }

    fn no_parameters_and_channels_kept(d: Device) {
        let p1 = Pool1dConfig::new(PoolKind::Avg, 2).init(&d).unwrap();
        assert_eq!(p1.num_params(), 0);
        let y1 = p1.forward(Tensor::<3>::ones([3, 5, 8], &d));
        assert_eq!(y1.dims(), [3, 5, 4]);
    }

    fn formula_matches_real_output_shapes(d: Device) {
        for (len, k, s, p) in [
            (10, 3, 1, 0),
            (10, 3, 2, 1),
            (9, 2, 2, 0),
            (8, 4, 3, 2),
            (5, 5, 1, 0),
        ] {
            for kind in [PoolKind::Max, PoolKind::Avg] {
                let pool = Pool1dConfig::new(kind, k)
                    .with_stride(s)
                    .with_padding(p)
                    .init(&d)
                    .unwrap();
                let y = pool.forward(Tensor::<3>::ones([1, 2, len], &d));
                assert_eq!(
                    y.dims()[2],
                    window_output_len(len, k, s, p).unwrap(),
                    "{len} {k} {s} {p}"
                );
                assert_eq!(pool.output_len(len).unwrap(), y.dims()[2]);
            }
        }
    }

    fn bad_windows_are_errors(d: Device) {
        assert!(Pool1dConfig::new(PoolKind::Max, 0).init(&d).is_err());
        let err = Pool1dConfig::new(PoolKind::Max, 2)
            .with_padding(2)
            .init(&d)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pool1d: padding 2 is more than half the kernel 2"),
            "{err}"
        );
        // found by fuzzing: `2 * padding` overflowed
        for padding in [1 << 63, usize::MAX] {
            assert!(
                Pool1dConfig::new(PoolKind::Avg, 3)
                    .with_padding(padding)
                    .init(&d)
                    .is_err()
            );
        }
        let p = Pool1dConfig::new(PoolKind::Max, 3).init(&d).unwrap();
        let err = p
            .try_forward(Tensor::<3>::ones([1, 1, 2], &d))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pool1d.window") && err.contains("kernel 3 is larger"),
            "{err}"
        );
    }

    crate::test_on_backends!(
        sliding_window_1d_stride_1,
        no_parameters_and_channels_kept,
        formula_matches_real_output_shapes,
        bad_windows_are_errors,
    );
}
