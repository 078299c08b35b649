//! 2D pooling, max or average, with square or rectangular windows, stride and padding.
//!
//! The 1D layer's rules ([`super::pool1d`]) along each axis: **no learnable parameters**,
//! the **channel count unchanged**, and each side of the output given by
//! [`window_output_len`]: `floor((L + 2P − K) / S) + 1`. MNIST's 26×26 feature maps through a
//! 2×2 window with stride 2 give 13×13.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::functional::pool::{PoolKind, check_pool_window};
use crate::functional::window::window_output_len;
use crate::kernels::{Pool2dSpec, pool2d};

/// Configuration of a [`Pool2d`] layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool2dConfig {
    /// Max or average.
    pub kind: PoolKind,
    /// Window `[K_h, K_w]`.
    pub kernel: [usize; 2],
    /// Step `[S_h, S_w]`; defaults to the window (non-overlapping).
    #[serde(default)]
    pub stride: Option<[usize; 2]>,
    /// Padding `[P_h, P_w]` on each side.
    #[serde(default)]
    pub padding: [usize; 2],
}

impl Pool2dConfig {
    /// A pool of window `kernel` with stride = kernel and no padding.
    pub fn new(kind: PoolKind, kernel: [usize; 2]) -> Self {
        Self {
            kind,
            kernel,
            stride: None,
            padding: [0, 0],
        }
    }
    /// Checks the window along both axes, naming `layer` in the error.
    pub(crate) fn validate(&self, layer: &str) -> Result<[usize; 2]> {
        let stride = self.stride.unwrap_or(self.kernel);
        for ((k, s), p) in self.kernel.iter().zip(stride).zip(self.padding) {
            check_pool_window(layer, *k, s, p)?;
        }
        Ok(stride)
    }
    /// Builds the layer, checking the window. Pooling has no parameters: nothing is put on
    /// `device`, which is taken for the same `init(&device)` as every layer.
    pub fn init(&self, device: &Device) -> Result<Pool2d> {
        let _ = device;
        let stride = self.validate("pool2d")?;
        Ok(Pool2d {
            kind: self.kind,
            kernel: self.kernel,
            stride,
            padding: self.padding,
        })
    }
}

setters!(Pool2dConfig {
    /// Sets the stride (the window's size by default).
    with_stride(stride: [usize; 2]) => Some;
    /// Sets the padding on each side.
    with_padding(padding: [usize; 2]);
});

/// 2D max or average pooling over `[N, C, H, W]`.
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::{Pool2dConfig, PoolKind};
/// let (_, device) = netcalc::select_device(None)?;
/// let pool = Pool2dConfig::new(PoolKind::Max, [2, 2]).init(&device)?;
/// assert_eq!(pool.output_hw([26, 26])?, [13, 13]); // (26 − 2) / 2 + 1
/// let x = Tensor::<1>::from_floats(
///     [1.0, 2.0, 5.0, 6.0, 3.0, 4.0, 7.0, 8.0, 9.0, 10.0, 13.0, 14.0, 11.0, 12.0, 15.0, 16.0],
///     &device,
/// )
/// .reshape([1, 1, 4, 4]);
/// let y = pool.forward(x);
/// assert_eq!(y.dims(), [1, 1, 2, 2]);
/// assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), [4.0, 8.0, 12.0, 16.0]);
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Pool2d {
    /// Max or average.
    #[module(skip)]
    pub kind: PoolKind,
    /// Window `[K_h, K_w]`.
    pub kernel: [usize; 2],
    /// Step `[S_h, S_w]`.
    pub stride: [usize; 2],
    /// Padding `[P_h, P_w]`.
    pub padding: [usize; 2],
}

impl Pool2d {
    /// The output `[H_out, W_out]` for an input of `[H, W]`.
    pub fn output_hw(&self, hw: [usize; 2]) -> Result<[usize; 2]> {
        Ok([
            window_output_len(hw[0], self.kernel[0], self.stride[0], self.padding[0])
                .map_err(|e| e.within("pool2d.height"))?,
            window_output_len(hw[1], self.kernel[1], self.stride[1], self.padding[1])
                .map_err(|e| e.within("pool2d.width"))?,
        ])
    }

    /// What the layer computes, for the kernels.
    pub fn spec(&self) -> Pool2dSpec {
        Pool2dSpec {
            kind: self.kind,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
        }
    }

    /// Pools each channel ([`crate::kernels::pool2d`]).
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]`
    /// - output: `[N, C, H_out, W_out]`, each by [`window_output_len`]
    ///
    /// # Panics
    /// If the window does not fit in the input; [`Pool2d::try_forward`] returns an error instead.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        pool2d(x, &self.spec())
    }

    /// [`Pool2d::forward`] after checking that the window fits.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]`
    /// - output: `[N, C, H_out, W_out]`
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let [_, _, h, w] = x.dims();
        self.output_hw([h, w])?;
        Ok(self.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, values};

    fn four_by_four_to_two_by_two(d: Device) {
        let x = Tensor::<2>::from_floats(
            [
                [1.0, 2.0, 5.0, 6.0],
                [3.0, 4.0, 7.0, 8.0],
                [9.0, 10.0, 13.0, 14.0],
                [11.0, 12.0, 15.0, 16.0],
            ],
            &d,
        )
        .reshape([1, 1, 4, 4]);
        let max = Pool2dConfig::new(PoolKind::Max, [2, 2]).init(&d).unwrap();
        let out = max.forward(x.clone());
        assert_eq!(out.dims(), [1, 1, 2, 2]);
        // quadrants {1,2,3,4} {5,6,7,8} {9,10,11,12} {13,14,15,16}
        assert_close(&values(out), &[4.0, 8.0, 12.0, 16.0], 1e-6);
        let avg = Pool2dConfig::new(PoolKind::Avg, [2, 2]).init(&d).unwrap();
        // means 10/4 26/4 42/4 58/4
        assert_close(&values(avg.forward(x)), &[2.5, 6.5, 10.5, 14.5], 1e-6);
    }

    fn pooling_has_no_parameters_and_keeps_channels(d: Device) {
        let p2 = Pool2dConfig::new(PoolKind::Max, [2, 2]).init(&d).unwrap();
        assert_eq!(p2.num_params(), 0);
        let x = Tensor::<4>::ones([2, 7, 10, 9], &d);
        let y = p2.forward(x);
        // channels 7 stay 7; 10 -> 5, 9 -> floor(7/2)+1 = 4
        assert_eq!(y.dims(), [2, 7, 5, 4]);
        assert_eq!(p2.output_hw([10, 9]).unwrap(), [5, 4]);
    }

    fn bad_windows_are_errors(d: Device) {
        assert!(
            Pool2dConfig::new(PoolKind::Avg, [2, 2])
                .with_stride([0, 1])
                .init(&d)
                .is_err()
        );
        // found by fuzzing: `2 * padding` overflowed (a panic with overflow checks; 2^63
        // wrapped to 0 and was accepted without them)
        for padding in [1 << 63, usize::MAX] {
            let err = Pool2dConfig::new(PoolKind::Max, [3, 3])
                .with_padding([0, padding])
                .init(&d)
                .unwrap_err();
            assert!(
                err.to_string().contains("more than half the kernel 3"),
                "{err}"
            );
        }
        let p = Pool2dConfig::new(PoolKind::Max, [3, 3]).init(&d).unwrap();
        let err = p
            .try_forward(Tensor::<4>::ones([1, 1, 2, 5], &d))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("pool2d.height.window: kernel 3 is larger"),
            "{err}"
        );
    }

    crate::test_on_backends!(
        four_by_four_to_two_by_two,
        pooling_has_no_parameters_and_keeps_channels,
        bad_windows_are_errors,
    );
}
