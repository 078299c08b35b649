//! Convolution blocks, 1D and 2D: convolution → activation → optional pooling.
//!
//! A 2D convolution with `C_out` filters of size `K×K` over `C_in` channels has
//! `K·K·C_in·C_out` weights and `C_out` biases; its output side is
//! `floor((L + 2P − K) / S) + 1` ([`crate::window::window_output_len`]).

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::{PaddingConfig1d, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::pool::{Pool1d, Pool1dConfig, Pool2d, Pool2dConfig, PoolKind};
use crate::window::{checked_elements, window_output_len};

fn default_stride() -> usize {
    1
}

/// `K·K·C_in·C_out + C_out`: the parameters of a 2D convolution with bias.
///
/// Saturates at `usize::MAX` instead of overflowing; configs are checked against
/// [`crate::window::MAX_ELEMENTS`] long before that.
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

fn conv_out(
    layer: &str,
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<usize> {
    window_output_len(len, kernel, stride, padding).map_err(|e| e.within(layer))
}

fn check_conv(layer: &str, filters: usize, kernel: usize, stride: usize) -> Result<()> {
    if filters == 0 || kernel == 0 || stride == 0 {
        return Err(Error::config(
            layer,
            format!(
                "filters ({filters}), kernel ({kernel}) and stride ({stride}) must all be at least 1"
            ),
        ));
    }
    Ok(())
}

/// Configuration of a [`Conv2dBlock`]: square `kernel × kernel` convolution with `filters`
/// outputs, then `activation`, then an optional pooling layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dBlockConfig {
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
    /// Activation after the convolution.
    #[serde(default)]
    pub activation: Activation,
    /// Optional pooling after the activation.
    #[serde(default)]
    pub pool: Option<Pool2dConfig>,
}

impl Conv2dBlockConfig {
    /// `filters` filters of `kernel × kernel`, stride 1, no padding, ReLU, no pooling.
    pub fn new(filters: usize, kernel: usize) -> Self {
        Self {
            filters,
            kernel,
            stride: 1,
            padding: 0,
            activation: Activation::Relu,
            pool: None,
        }
    }
    /// Sets the padding.
    pub fn with_padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }
    /// Sets the stride.
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
    /// Sets the activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
    /// Adds a pooling layer after the activation.
    pub fn with_pool(mut self, pool: Pool2dConfig) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Output `[C_out, H_out, W_out]` of the convolution alone, for an input `[C_in, H, W]`.
    pub fn conv_output_shape(&self, layer: &str, input: [usize; 3]) -> Result<[usize; 3]> {
        check_conv(layer, self.filters, self.kernel, self.stride)?;
        let [_, h, w] = input;
        Ok([
            self.filters,
            conv_out(layer, h, self.kernel, self.stride, self.padding)?,
            conv_out(layer, w, self.kernel, self.stride, self.padding)?,
        ])
    }

    /// Output `[C_out, H_out, W_out]` of the whole block (after pooling). Also checks that the
    /// block's weights and its output stay within [`crate::window::MAX_ELEMENTS`].
    pub fn output_shape(&self, layer: &str, input: [usize; 3]) -> Result<[usize; 3]> {
        let [c, h, w] = self.conv_output_shape(layer, input)?;
        checked_elements(
            layer,
            "the weights",
            &[self.kernel, self.kernel, input[0], self.filters],
        )?;
        checked_elements(layer, "the output", &[c, h, w])?;
        match &self.pool {
            None => Ok([c, h, w]),
            Some(p) => {
                let pool = p.init().map_err(|e| rename(e, &format!("{layer}.pool")))?;
                let [h, w] = pool
                    .output_hw([h, w])
                    .map_err(|e| rename(e, &format!("{layer}.pool")))?;
                Ok([c, h, w])
            }
        }
    }

    /// Parameters for `c_in` input channels: `K·K·C_in·C_out + C_out` (pooling adds none).
    pub fn num_params(&self, c_in: usize) -> usize {
        conv2d_params(self.kernel, c_in, self.filters)
    }

    /// Builds the block for `c_in` input channels.
    pub fn init(&self, c_in: usize, device: &Device) -> Result<Conv2dBlock> {
        check_conv("conv2d", self.filters, self.kernel, self.stride)?;
        if c_in == 0 {
            return Err(Error::config(
                "conv2d",
                "input channels must be at least 1, got 0",
            ));
        }
        checked_elements(
            "conv2d",
            "the weights",
            &[self.kernel, self.kernel, c_in, self.filters],
        )?;
        let p = self.padding;
        let conv = Conv2dConfig::new([c_in, self.filters], [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init(device);
        let pool = self.pool.as_ref().map(|p| p.init()).transpose()?;
        Ok(Conv2dBlock {
            conv,
            activation: self.activation,
            pool,
        })
    }
}

pub(crate) fn rename(e: Error, layer: &str) -> Error {
    match e {
        Error::InvalidConfig { message, .. } => Error::config(layer, message),
        other => other,
    }
}

/// Convolution 2D → activation → optional pooling.
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
    /// Convolution, activation, pooling.
    ///
    /// The convolution is [`crate::fastops::conv2d`] (burn's `Conv2d`, through netcalc's CPU
    /// kernels on flex and ndarray). With max pooling after ReLU (or no activation) the pooling
    /// runs first: max and ReLU commute (ReLU never decreases), so the outputs and gradients are
    /// the same and ReLU touches a quarter of the values. On flex and ndarray that block
    /// (convolution, max pooling with windows that tile, ReLU) is one pass,
    /// [`crate::fastops::conv2d_max_pool`], whose convolution output stays in cache.
    ///
    /// # Shapes
    /// - input: `[N, C_in, H, W]`
    /// - output: `[N, C_out, H_out, W_out]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.pool {
            Some(p)
                if p.kind == PoolKind::Max
                    && matches!(self.activation, Activation::Relu | Activation::Identity) =>
            {
                crate::fastops::conv2d_max_pool(
                    &self.conv,
                    x,
                    p.kernel,
                    p.stride,
                    p.padding,
                    self.activation == Activation::Relu,
                )
            }
            _ => self.after_conv(crate::fastops::conv2d(&self.conv, x), None),
        }
    }

    /// Activation and pooling of the convolution's output `z`, exactly as [`Self::forward`]
    /// does them; `activated` is `activation(z)` when the caller already has it.
    pub(crate) fn after_conv(&self, z: Tensor<4>, activated: Option<Tensor<4>>) -> Tensor<4> {
        match &self.pool {
            Some(p)
                if p.kind == PoolKind::Max
                    && matches!(self.activation, Activation::Relu | Activation::Identity) =>
            {
                self.activation.forward(p.forward(z))
            }
            Some(p) => p.forward(activated.unwrap_or_else(|| self.activation.forward(z))),
            None => activated.unwrap_or_else(|| self.activation.forward(z)),
        }
    }
}

/// Configuration of a [`Conv1dBlock`]: 1D convolution → activation → optional 1D pooling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv1dBlockConfig {
    /// Number of filters `C_out`.
    pub filters: usize,
    /// Kernel length `K`.
    pub kernel: usize,
    /// Step `S` (default 1).
    #[serde(default = "default_stride")]
    pub stride: usize,
    /// Zero padding `P` on each side.
    #[serde(default)]
    pub padding: usize,
    /// Activation after the convolution.
    #[serde(default)]
    pub activation: Activation,
    /// Optional pooling after the activation.
    #[serde(default)]
    pub pool: Option<Pool1dConfig>,
}

impl Conv1dBlockConfig {
    /// `filters` filters of length `kernel`, stride 1, no padding, ReLU, no pooling.
    pub fn new(filters: usize, kernel: usize) -> Self {
        Self {
            filters,
            kernel,
            stride: 1,
            padding: 0,
            activation: Activation::Relu,
            pool: None,
        }
    }
    /// Sets the activation.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
    /// Sets the padding.
    pub fn with_padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }
    /// Adds a pooling layer after the activation.
    pub fn with_pool(mut self, pool: Pool1dConfig) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Output `[C_out, L_out]` of the block for an input `[C_in, L]`.
    pub fn output_shape(&self, input: [usize; 2]) -> Result<[usize; 2]> {
        check_conv("conv1d", self.filters, self.kernel, self.stride)?;
        let len = conv_out("conv1d", input[1], self.kernel, self.stride, self.padding)?;
        let len = match &self.pool {
            None => len,
            Some(p) => p
                .init()?
                .output_len(len)
                .map_err(|e| rename(e, "conv1d.pool"))?,
        };
        Ok([self.filters, len])
    }

    /// Parameters for `c_in` input channels: `K·C_in·C_out + C_out`.
    pub fn num_params(&self, c_in: usize) -> usize {
        conv1d_params(self.kernel, c_in, self.filters)
    }

    /// Builds the block for `c_in` input channels.
    pub fn init(&self, c_in: usize, device: &Device) -> Result<Conv1dBlock> {
        check_conv("conv1d", self.filters, self.kernel, self.stride)?;
        if c_in == 0 {
            return Err(Error::config(
                "conv1d",
                "input channels must be at least 1, got 0",
            ));
        }
        checked_elements("conv1d", "the weights", &[self.kernel, c_in, self.filters])?;
        let conv = Conv1dConfig::new(c_in, self.filters, self.kernel)
            .with_stride(self.stride)
            .with_padding(PaddingConfig1d::Explicit(self.padding, self.padding))
            .init(device);
        let pool = self.pool.as_ref().map(|p| p.init()).transpose()?;
        Ok(Conv1dBlock {
            conv,
            activation: self.activation,
            pool,
        })
    }
}

/// Convolution 1D → activation → optional pooling.
#[derive(Module, Debug)]
pub struct Conv1dBlock {
    /// The convolution (burn's `Conv1d`): weight `[C_out, C_in, K]`, bias `[C_out]`.
    pub conv: Conv1d,
    /// The activation.
    #[module(skip)]
    pub activation: Activation,
    /// The optional pooling layer.
    pub pool: Option<Pool1d>,
}

impl Conv1dBlock {
    /// # Shapes
    /// - input: `[N, C_in, L]`
    /// - output: `[N, C_out, L_out]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = self.activation.forward(self.conv.forward(x));
        match &self.pool {
            Some(p) => p.forward(y),
            None => y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::PoolKind;
    use crate::testing::{assert_close, values};
    use burn::module::Param;
    use burn::tensor::Device;

    fn parameter_counts(d: Device) {
        // K·K·C_in·C_out + C_out
        assert_eq!(conv2d_params(3, 1, 32), 320); // 9·1·32 + 32
        assert_eq!(conv2d_params(3, 32, 64), 18_496); // 9·32·64 + 64
        assert_eq!(conv1d_params(5, 4, 8), 168); // 5·4·8 + 8
        let block = Conv2dBlockConfig::new(32, 3).init(1, &d).unwrap();
        assert_eq!(block.num_params(), 320);
        assert_eq!(block.conv.weight.dims(), [32, 1, 3, 3]);
        let b1 = Conv1dBlockConfig::new(8, 5).init(4, &d).unwrap();
        assert_eq!(b1.num_params(), 168);
    }

    fn output_shapes_match_the_formula(d: Device) {
        let cfg = Conv2dBlockConfig::new(4, 3).with_pool(Pool2dConfig::new(PoolKind::Max, [2, 2]));
        // 28 -> conv 26 -> pool 13
        assert_eq!(cfg.output_shape("b", [1, 28, 28]).unwrap(), [4, 13, 13]);
        let y = cfg
            .init(1, &d)
            .unwrap()
            .forward(Tensor::zeros([2, 1, 28, 28], &d));
        assert_eq!(y.dims(), [2, 4, 13, 13]);
        // stride 2, padding 1: (9 + 2 - 3)/2 + 1 = 5
        let cfg = Conv2dBlockConfig::new(3, 3).with_stride(2).with_padding(1);
        assert_eq!(cfg.output_shape("b", [2, 9, 9]).unwrap(), [3, 5, 5]);
        let y = cfg
            .init(2, &d)
            .unwrap()
            .forward(Tensor::zeros([1, 2, 9, 9], &d));
        assert_eq!(y.dims(), [1, 3, 5, 5]);
        let c1 = Conv1dBlockConfig::new(2, 3).with_pool(Pool1dConfig::new(PoolKind::Avg, 2));
        assert_eq!(c1.output_shape([1, 10]).unwrap(), [2, 4]);
        let y = c1
            .init(1, &d)
            .unwrap()
            .forward(Tensor::zeros([1, 1, 10], &d));
        assert_eq!(y.dims(), [1, 2, 4]);
    }

    fn conv2d_values_by_hand(d: Device) {
        let mut block = Conv2dBlockConfig::new(1, 2)
            .with_activation(Activation::Identity)
            .init(1, &d)
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
        assert_close(&values(block.forward(x)), &[0.0; 4], 1e-6);
    }

    fn conv1d_values_by_hand(d: Device) {
        let mut block = Conv1dBlockConfig::new(1, 3)
            .with_activation(Activation::Identity)
            .init(1, &d)
            .unwrap();
        // moving sum of 3 with weights (1, 2, 1), bias -1
        block.conv.weight =
            Param::from_tensor(Tensor::<1>::from_floats([1.0, 2.0, 1.0], &d).reshape([1, 1, 3]));
        block.conv.bias = Some(Param::from_tensor(Tensor::from_floats([-1.0], &d)));
        let x = Tensor::<1>::from_floats([1.0, 0.0, 2.0, 1.0], &d).reshape([1, 1, 4]);
        // 1+0+2-1 = 2; 0+4+1-1 = 4
        assert_close(&values(block.forward(x)), &[2.0, 4.0], 1e-5);
    }

    fn impossible_convolutions_are_errors(d: Device) {
        let cfg = Conv2dBlockConfig::new(8, 5);
        let err = cfg
            .output_shape("features.blocks[0]", [1, 4, 4])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("features.blocks[0]") && err.contains("kernel 5"),
            "{err}"
        );
        assert!(
            Conv2dBlockConfig::new(0, 3)
                .output_shape("b", [1, 8, 8])
                .is_err()
        );
        assert!(Conv2dBlockConfig::new(2, 3).init(0, &d).is_err());
        assert!(Conv1dBlockConfig::new(2, 9).output_shape([1, 4]).is_err());
    }

    crate::test_on_backends!(
        parameter_counts,
        output_shapes_match_the_formula,
        conv2d_values_by_hand,
        conv1d_values_by_hand,
        impossible_convolutions_are_errors,
    );
}
