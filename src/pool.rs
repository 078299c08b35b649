//! Pooling: 1D and 2D, max and average, with kernel, stride and padding; global pooling.
//!
//! A pooling layer slides a window of `K` values with step `S` over an input of length `L`
//! (padded by `P` on each side) and keeps the window's maximum or mean. It has **no learnable
//! parameters** and works on each channel separately, so the **channel count is unchanged**.
//! The output length is [`window_output_len`]: `floor((L + 2P − K) / S) + 1`.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::module::{avg_pool1d, avg_pool2d, max_pool1d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::window::window_output_len;

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

fn check_window(layer: &str, kernel: usize, stride: usize, padding: usize) -> Result<()> {
    if kernel == 0 || stride == 0 {
        return Err(Error::config(
            layer,
            format!("kernel ({kernel}) and stride ({stride}) must be at least 1"),
        ));
    }
    // PyTorch and burn require P <= K/2: a window must always hold one real value.
    // (`padding > kernel / 2` is `2P > K` without overflowing for any P.)
    if padding > kernel / 2 {
        return Err(Error::config(
            layer,
            format!("padding {padding} is more than half the kernel {kernel}"),
        ));
    }
    Ok(())
}

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
    /// Sets the stride.
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = Some(stride);
        self
    }
    /// Sets the padding.
    pub fn with_padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }
    /// Builds the layer, checking the window.
    pub fn init(&self) -> Result<Pool1d> {
        let stride = self.stride.unwrap_or(self.kernel);
        check_window("pool1d", self.kernel, stride, self.padding)?;
        Ok(Pool1d {
            kind: self.kind,
            kernel: self.kernel,
            stride,
            padding: self.padding,
        })
    }
}

/// 1D max or average pooling over `[N, C, L]`.
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

/// Configuration of a [`Pool2d`] layer (square or rectangular windows).
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
    /// Sets the stride.
    pub fn with_stride(mut self, stride: [usize; 2]) -> Self {
        self.stride = Some(stride);
        self
    }
    /// Sets the padding.
    pub fn with_padding(mut self, padding: [usize; 2]) -> Self {
        self.padding = padding;
        self
    }
    /// Builds the layer, checking the window.
    pub fn init(&self) -> Result<Pool2d> {
        let stride = self.stride.unwrap_or(self.kernel);
        for ((k, s), p) in self.kernel.iter().zip(stride).zip(self.padding) {
            check_window("pool2d", *k, s, p)?;
        }
        Ok(Pool2d {
            kind: self.kind,
            kernel: self.kernel,
            stride,
            padding: self.padding,
        })
    }
}

/// 2D max or average pooling over `[N, C, H, W]`.
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

    /// Pools each channel.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]`
    /// - output: `[N, C, H_out, W_out]`, each by [`window_output_len`]
    ///
    /// # Panics
    /// If the window does not fit in the input; [`Pool2d::try_forward`] returns an error instead.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self.kind {
            PoolKind::Max => crate::fastops::max_pool2d(x, self.kernel, self.stride, self.padding),
            PoolKind::Avg => avg_pool2d(
                x,
                AvgPoolOptions::new(self.kernel)
                    .with_stride(self.stride)
                    .with_padding(self.padding),
            ),
        }
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

/// Global pooling over the spatial axes: one value per channel.
///
/// # Shapes
/// - input: `[N, C, H, W]`
/// - output: `[N, C]`
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
    }

    fn sliding_window_1d_stride_1(d: Device) {
        // the classic example: a window of 3 sliding one step at a time over 6 values
        let x = Tensor::<1>::from_floats([1.0, 3.0, 2.0, 5.0, 4.0, 0.0], &d).reshape([1, 1, 6]);
        let max = Pool1dConfig::new(PoolKind::Max, 3)
            .with_stride(1)
            .init()
            .unwrap();
        // windows (1,3,2) (3,2,5) (2,5,4) (5,4,0) -> max 3 5 5 5
        assert_close(&values(max.forward(x.clone())), &[3.0, 5.0, 5.0, 5.0], 1e-6);
        let avg = Pool1dConfig::new(PoolKind::Avg, 3)
            .with_stride(1)
            .init()
            .unwrap();
        // means 6/3 10/3 11/3 9/3
        assert_close(
            &values(avg.forward(x.clone())),
            &[2.0, 10.0 / 3.0, 11.0 / 3.0, 3.0],
            1e-5,
        );
        // stride 2, padding 1: padded (pad 1 3 2 5 4 0 pad); windows at 0, 2, 4 -> 3 outputs
        let max_p = Pool1dConfig::new(PoolKind::Max, 3)
            .with_stride(2)
            .with_padding(1)
            .init()
            .unwrap();
        // (-inf,1,3) (3,2,5) (5,4,0) -> 3 5 5
        assert_close(&values(max_p.forward(x.clone())), &[3.0, 5.0, 5.0], 1e-6);
        let avg_p = Pool1dConfig::new(PoolKind::Avg, 3)
            .with_stride(2)
            .with_padding(1)
            .init()
            .unwrap();
        // (0,1,3)/3 (3,2,5)/3 (5,4,0)/3, padding counted
        assert_close(
            &values(avg_p.forward(x)),
            &[4.0 / 3.0, 10.0 / 3.0, 3.0],
            1e-5,
        );
    }

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
        let max = Pool2dConfig::new(PoolKind::Max, [2, 2]).init().unwrap();
        let out = max.forward(x.clone());
        assert_eq!(out.dims(), [1, 1, 2, 2]);
        // quadrants {1,2,3,4} {5,6,7,8} {9,10,11,12} {13,14,15,16}
        assert_close(&values(out), &[4.0, 8.0, 12.0, 16.0], 1e-6);
        let avg = Pool2dConfig::new(PoolKind::Avg, [2, 2]).init().unwrap();
        // means 10/4 26/4 42/4 58/4
        assert_close(&values(avg.forward(x)), &[2.5, 6.5, 10.5, 14.5], 1e-6);
    }

    fn pooling_has_no_parameters_and_keeps_channels(d: Device) {
        let p2 = Pool2dConfig::new(PoolKind::Max, [2, 2]).init().unwrap();
        assert_eq!(p2.num_params(), 0);
        let p1 = Pool1dConfig::new(PoolKind::Avg, 2).init().unwrap();
        assert_eq!(p1.num_params(), 0);
        let x = Tensor::<4>::ones([2, 7, 10, 9], &d);
        let y = p2.forward(x);
        // channels 7 stay 7; 10 -> 5, 9 -> floor(7/2)+1 = 4
        assert_eq!(y.dims(), [2, 7, 5, 4]);
        assert_eq!(p2.output_hw([10, 9]).unwrap(), [5, 4]);
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
                    .init()
                    .unwrap();
                let y = pool.forward(Tensor::<3>::ones([1, 2, len], &d));
                assert_eq!(
                    y.dims()[2],
                    window_output_len(len, k, s, p).unwrap(),
                    "{len} {k} {s} {p}"
                );
            }
        }
    }

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
    }

    fn bad_windows_are_errors(d: Device) {
        assert!(Pool1dConfig::new(PoolKind::Max, 0).init().is_err());
        assert!(
            Pool1dConfig::new(PoolKind::Max, 2)
                .with_padding(2)
                .init()
                .is_err()
        );
        assert!(
            Pool2dConfig::new(PoolKind::Avg, [2, 2])
                .with_stride([0, 1])
                .init()
                .is_err()
        );
        // found by fuzzing: `2 * padding` overflowed (a panic with overflow checks; 2^63
        // wrapped to 0 and was accepted without them)
        for padding in [1 << 63, usize::MAX] {
            let err = Pool2dConfig::new(PoolKind::Max, [3, 3])
                .with_padding([0, padding])
                .init()
                .unwrap_err();
            assert!(
                err.to_string().contains("more than half the kernel 3"),
                "{err}"
            );
            assert!(
                Pool1dConfig::new(PoolKind::Avg, 3)
                    .with_padding(padding)
                    .init()
                    .is_err()
            );
        }
        let p = Pool2dConfig::new(PoolKind::Max, [3, 3]).init().unwrap();
        let err = p
            .try_forward(Tensor::<4>::ones([1, 1, 2, 5], &d))
            .unwrap_err();
        assert!(err.to_string().contains("kernel 3 is larger"), "{err}");
    }

    crate::test_on_backends!(
        sliding_window_1d_stride_1,
        four_by_four_to_two_by_two,
        pooling_has_no_parameters_and_keeps_channels,
        formula_matches_real_output_shapes,
        global_pooling,
        bad_windows_are_errors,
    );
}
