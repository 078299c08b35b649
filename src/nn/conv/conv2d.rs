//! The 2D convolution block: a `K×K` convolution with `C_out` filters over `C_in` channels,
//! an activation, and optional pooling. `K·K·C_in·C_out + C_out` parameters; each side of the
//! output is `floor((L + 2P − K) / S) + 1`, then the pooling's formula.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{check_conv, conv_out, conv2d_params, default_stride};
use crate::error::{Error, Result};
use crate::functional::activation::Activation;
use crate::functional::window::{checked_elements, window_output_len};
use crate::kernels::{BlockOutput, Conv2dBlockSpec, Conv2dSpec, conv2d_block_traced};
use crate::nn::pool::{Pool2d, Pool2dConfig};

/// Configuration of a [`Conv2dBlock`]: a square `kernel × kernel` convolution from
/// `in_channels` to `filters` channels, then `activation`, then an optional pooling layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dBlockConfig {
    /// Input channels `C_in`. In a [`crate::FeatureExtractorConfig`] it may be left out: it is
    /// then the previous block's `filters` (the image's channels for the first block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<usize>,
    /// Number of filters `C_out`.
    pub filters: usize,
    /// Kernel side `K`.
    pub kernel: usize,
    /// Step `S` (default 1).
    #[serde(default = "default_stride")]
    pub stride: usize,
    /// Zero padding `P` on each side (0 = Keras' "valid"; `K/2` with stride 1 = "same").
    #[serde(default)]
    pub padding: usize,
    /// Activation after the convolution (default ReLU).
    #[serde(default)]
    pub activation: Activation,
    /// Optional pooling after the activation.
    #[serde(default)]
    pub pool: Option<Pool2dConfig>,
}

impl Conv2dBlockConfig {
    /// `filters` filters of `kernel × kernel` over `in_channels` channels, stride 1, no padding,
    /// ReLU, no pooling.
    pub fn new(in_channels: usize, filters: usize, kernel: usize) -> Self {
        Self {
            in_channels: Some(in_channels),
            filters,
            kernel,
            stride: 1,
            padding: 0,
            activation: Activation::Relu,
            pool: None,
        }
    }
    /// The input channels, or an error naming `layer` when they are not set.
    fn channels(&self, layer: &str) -> Result<usize> {
        self.in_channels.ok_or_else(|| {
            Error::config(
                format!("{layer}.in_channels"),
                "is not set (only a feature extractor fills it in, from the block before)",
            )
        })
    }

    /// Checks the sizes, the weights' size limit and the pooling window; `layer` names the
    /// block in errors.
    pub fn validate(&self, layer: &str) -> Result<()> {
        let c_in = self.channels(layer)?;
        check_conv(layer, c_in, self.filters, self.kernel, self.stride)?;
        checked_elements(
            layer,
            "the weights",
            &[self.kernel, self.kernel, c_in, self.filters],
        )?;
        if let Some(p) = &self.pool {
            p.validate(&format!("{layer}.pool"))?;
        }
        Ok(())
    }

    /// Output `[C_out, H_out, W_out]` of the convolution alone, for an input `[C_in, H, W]`.
    pub fn conv_output_shape(&self, layer: &str, input: [usize; 3]) -> Result<[usize; 3]> {
        self.validate(layer)?;
        let [c, h, w] = input;
        let c_in = self.channels(layer)?;
        if c != c_in {
            return Err(Error::config(
                format!("{layer}.in_channels"),
                format!("is {c_in} but its input has {c} channels"),
            ));
        }
        Ok([
            self.filters,
            conv_out(layer, h, self.kernel, self.stride, self.padding)?,
            conv_out(layer, w, self.kernel, self.stride, self.padding)?,
        ])
    }

    /// Output `[C_out, H_out, W_out]` of the whole block (after pooling), for an input
    /// `[C_in, H, W]`. Also checks that the output stays within
    /// [`crate::functional::window::MAX_ELEMENTS`].
    pub fn output_shape(&self, layer: &str, input: [usize; 3]) -> Result<[usize; 3]> {
        let [c, h, w] = self.conv_output_shape(layer, input)?;
        checked_elements(layer, "the output", &[c, h, w])?;
        match &self.pool {
            None => Ok([c, h, w]),
            Some(p) => {
                let stride = p.stride.unwrap_or(p.kernel);
                let side = |axis: usize, len: usize, name: &str| {
                    window_output_len(len, p.kernel[axis], stride[axis], p.padding[axis])
                        .map_err(|e| e.within(&format!("{layer}.pool.{name}")))
                };
                Ok([c, side(0, h, "height")?, side(1, w, "width")?])
            }
        }
    }

    /// Parameters: `K·K·C_in·C_out + C_out` (pooling adds none; `C_in` counts as 0 while
    /// `in_channels` is not set).
    pub fn num_params(&self) -> usize {
        conv2d_params(self.kernel, self.in_channels.unwrap_or(0), self.filters)
    }

    /// Builds the block.
    pub fn init(&self, device: &Device) -> Result<Conv2dBlock> {
        self.validate("conv2d")?;
        let c_in = self.channels("conv2d")?;
        let p = self.padding;
        let conv = Conv2dConfig::new([c_in, self.filters], [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init(device);
        let pool = self.pool.as_ref().map(|p| p.init(device)).transpose()?;
        Ok(Conv2dBlock {
            conv,
            activation: self.activation,
            pool,
        })
    }
}

setters!(Conv2dBlockConfig {
    /// Sets the input channels.
    with_in_channels(in_channels: usize) => Some;
    /// Sets the stride.
    with_stride(stride: usize);
    /// Sets the zero padding on each side.
    with_padding(padding: usize);
    /// Sets the activation.
    with_activation(activation: Activation);
    /// Adds a pooling layer after the activation.
    with_pool(pool: Pool2dConfig) => Some;
});

/// Convolution 2D → activation → optional pooling.
///
/// # Examples
/// ```
/// use netcalc::burn::tensor::Tensor;
/// use netcalc::{Conv2dBlockConfig, Pool2dConfig, PoolKind};
/// let (_, device) = netcalc::select_device(None)?;
/// // MNIST's first block: 32 filters of 3×3 over 1 channel, ReLU, 2×2 max pooling
/// let cfg = Conv2dBlockConfig::new(1, 32, 3).with_pool(Pool2dConfig::new(PoolKind::Max, [2, 2]));
/// assert_eq!(cfg.num_params(), 3 * 3 * 1 * 32 + 32); // 320
/// assert_eq!(cfg.output_shape("block", [1, 28, 28])?, [32, 13, 13]); // 28 → 26 → 13
/// let block = cfg.init(&device)?;
/// let y = block.forward(Tensor::zeros([2, 1, 28, 28], &device));
/// assert_eq!(y.dims(), [2, 32, 13, 13]);
/// # Ok::<(), netcalc::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct Conv2dBlock {
    /// The convolution (burn's `Conv2d`): weight `[C_out, C_in, K, K]`, bias `[C_out]`.
    pub conv: Conv2d,
    /// The activation.
    #[module(skip)]
    pub activation: Activation,
    /// The optional pooling layer.
    pub pool: Option<Pool2d>,
}

impl Conv2dBlock {
    /// What the block computes on an input of `[H, W]`, for the kernels: the convolution's
    /// weights and options (the padding of the `Conv2d`, worked out as burn does), the
    /// activation and the pooling window.
    pub fn spec(&self, [h, w]: [usize; 2]) -> Conv2dBlockSpec {
        let c = &self.conv;
        let pairs = match c.padding {
            PaddingConfig2d::Valid => [(0, 0), (0, 0)],
            PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
            PaddingConfig2d::Same => [
                same_padding(c.kernel_size[0], c.stride[0], h),
                same_padding(c.kernel_size[1], c.stride[1], w),
            ],
        };
        Conv2dBlockSpec {
            conv: Conv2dSpec {
                weight: c.weight.val(),
                bias: c.bias.as_ref().map(|b| b.val()),
                options: ConvOptions::new_with_padding(c.stride, pairs, c.dilation, c.groups),
            },
            activation: self.activation,
            pool: self.pool.as_ref().map(Pool2d::spec),
        }
    }

    /// Convolution, activation, pooling ([`crate::kernels::conv2d_block`]).
    ///
    /// # Shapes
    /// - input: `[N, C_in, H, W]`
    /// - output: `[N, C_out, H_out, W_out]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_traced(x, false).output
    }

    /// [`Conv2dBlock::forward`], also returning the feature maps after the activation, before
    /// pooling, when `keep_activated` is set (the same output, bit for bit).
    ///
    /// # Shapes
    /// - input: `[N, C_in, H, W]`
    /// - output: `[N, C_out, H_out, W_out]`; activated: `[N, C_out, H_conv, W_conv]`
    pub fn forward_traced(&self, x: Tensor<4>, keep_activated: bool) -> BlockOutput {
        let [_, _, h, w] = x.dims();
        conv2d_block_traced(x, &self.spec([h, w]), keep_activated)
    }
}

/// burn's "same" padding `(begin, end)` along one axis (the extra one at the end, as ONNX):
/// enough for `ceil(L / S)` outputs.
fn same_padding(kernel: usize, stride: usize, len: usize) -> (usize, usize) {
    let out = len.div_ceil(stride.max(1));
    let total = if out > 0 {
        ((out - 1) * stride + kernel).saturating_sub(len)
    } else {
        0
    };
    (total / 2, total - total / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functional::pool::PoolKind;
    use crate::testing::{assert_close, values};
    use burn::module::Param;

    fn parameter_counts(d: Device) {
        // K·K·C_in·C_out + C_out
        assert_eq!(conv2d_params(3, 1, 32), 320); // 9·1·32 + 32
        assert_eq!(conv2d_params(3, 32, 64), 18_496); // 9·32·64 + 64
        let cfg = Conv2dBlockConfig::new(1, 32, 3);
        assert_eq!(cfg.num_params(), 320);
        let block = cfg.init(&d).unwrap();
        assert_eq!(block.num_params(), 320);
        assert_eq!(block.conv.weight.dims(), [32, 1, 3, 3]);
    }

    fn output_shapes_match_the_formula(d: Device) {
        let cfg =
            Conv2dBlockConfig::new(1, 4, 3).with_pool(Pool2dConfig::new(PoolKind::Max, [2, 2]));
        // 28 -> conv 26 -> pool 13
        assert_eq!(cfg.output_shape("b", [1, 28, 28]).unwrap(), [4, 13, 13]);
        let y = cfg
            .init(&d)
            .unwrap()
            .forward(Tensor::zeros([2, 1, 28, 28], &d));
        assert_eq!(y.dims(), [2, 4, 13, 13]);
        // stride 2, padding 1: (9 + 2 - 3)/2 + 1 = 5
        let cfg = Conv2dBlockConfig::new(2, 3, 3)
            .with_stride(2)
            .with_padding(1);
        assert_eq!(cfg.output_shape("b", [2, 9, 9]).unwrap(), [3, 5, 5]);
        let y = cfg
            .init(&d)
            .unwrap()
            .forward(Tensor::zeros([1, 2, 9, 9], &d));
        assert_eq!(y.dims(), [1, 3, 5, 5]);
    }

    fn conv2d_values_by_hand(d: Device) {
        let mut block = Conv2dBlockConfig::new(1, 1, 2)
            .with_activation(Activation::Identity)
            .init(&d)
            .unwrap();
        // kernel [[1, 0], [0, -1]], bias 0.5: out = x[i][j] - x[i+1][j+1] + 0.5
        block.conv.weight = Param::from_tensor(
            Tensor::<1>::from_floats([1.0, 0.0, 0.0, -1.0], &d).reshape([1, 1, 2, 2]),
        );
        block.conv.bias = Some(Param::from_tensor(Tensor::from_floats([0.5], &d)));
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0], &d)
            .reshape([1, 1, 3, 3]);
        // 1-5+0.5 = -3.5, 2-6+0.5 = -3.5, 4-8+0.5 = -3.5, 5-10+0.5 = -4.5
        assert_close(
            &values(block.forward(x.clone())),
            &[-3.5, -3.5, -3.5, -4.5],
            1e-5,
        );
        block.activation = Activation::Relu;
        assert_close(&values(block.forward(x.clone())), &[0.0; 4], 1e-6);
        // the traced forward: the same output, and the maps after the activation
        let traced = block.forward_traced(x, true);
        assert_close(&values(traced.output), &[0.0; 4], 1e-6);
        assert_eq!(traced.activated.map(|a| a.dims()), Some([1, 1, 2, 2]));
    }

    fn impossible_convolutions_are_errors(d: Device) {
        let cfg = Conv2dBlockConfig::new(1, 8, 5);
        let err = cfg
            .output_shape("features.blocks[0]", [1, 4, 4])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("features.blocks[0]") && err.contains("kernel 5"),
            "{err}"
        );
        let err = Conv2dBlockConfig::new(1, 0, 3)
            .output_shape("b", [1, 8, 8])
            .unwrap_err()
            .to_string();
        assert!(err.contains("b: filters must be at least 1"), "{err}");
        assert!(Conv2dBlockConfig::new(0, 2, 3).init(&d).is_err());
        let err = Conv2dBlockConfig::new(3, 2, 3)
            .output_shape("b", [1, 8, 8])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.in_channels: is 3 but its input has 1 channels"),
            "{err}"
        );
        let mut unset = Conv2dBlockConfig::new(1, 2, 3);
        unset.in_channels = None;
        let err = unset.init(&d).unwrap_err().to_string();
        assert!(err.contains("conv2d.in_channels: is not set"), "{err}");
    }

    #[test]
    fn same_padding_as_burn() {
        // 5 inputs, kernel 3, stride 1: 1 each side; kernel 4: 1 before, 2 after
        assert_eq!(same_padding(3, 1, 5), (1, 1));
        assert_eq!(same_padding(4, 1, 5), (1, 2));
        // stride 2 over 5: 3 outputs need (3 - 1)·2 + 3 = 7, 2 of padding
        assert_eq!(same_padding(3, 2, 5), (1, 1));
    }

    crate::test_on_backends!(
        parameter_counts,
        output_shapes_match_the_formula,
        conv2d_values_by_hand,
        impossible_convolutions_are_errors,
    );
}
