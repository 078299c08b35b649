//! The feature extractor: convolution + pooling blocks that turn an image into a feature
//! vector (the blocks' last output, flattened).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::stages::{Stage, StageKind};
use crate::error::{Error, Result};
use crate::functional::window::checked_elements;
use crate::nn::conv::{Conv2dBlock, Conv2dBlockConfig};

/// Configuration of a [`FeatureExtractor`]: the input image shape and the convolution blocks.
///
/// A block's `in_channels` may be left out (in JSON, or as `None`): it is the previous block's
/// `filters`, or the image's channels for the first block. Read from JSON, it is filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "FeatureExtractorJson")]
pub struct FeatureExtractorConfig {
    /// Input `[C, H, W]` (MNIST: `[1, 28, 28]`).
    pub input: [usize; 3],
    /// Convolution blocks, applied in order; none = just flatten the image (an MLP).
    pub blocks: Vec<Conv2dBlockConfig>,
}

/// The JSON form of [`FeatureExtractorConfig`] (blocks' `in_channels` optional).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureExtractorJson {
    input: [usize; 3],
    #[serde(default)]
    blocks: Vec<Conv2dBlockConfig>,
}

impl From<FeatureExtractorJson> for FeatureExtractorConfig {
    fn from(j: FeatureExtractorJson) -> Self {
        Self::new(j.input).with_blocks(j.blocks)
    }
}

impl FeatureExtractorConfig {
    /// An extractor of `[C, H, W]` images with no blocks yet (it only flattens).
    pub fn new(input: [usize; 3]) -> Self {
        Self {
            input,
            blocks: Vec::new(),
        }
    }

    /// Sets the blocks; those without `in_channels` get the channels of their input.
    pub fn with_blocks(mut self, blocks: Vec<Conv2dBlockConfig>) -> Self {
        self.blocks = blocks;
        self.blocks = self.resolved_blocks();
        self
    }

    /// The blocks with every `in_channels` filled in from the chain (a block that sets its
    /// own keeps it, for [`Self::block_shapes`] to check).
    pub(crate) fn resolved_blocks(&self) -> Vec<Conv2dBlockConfig> {
        let mut c_in = self.input[0];
        self.blocks
            .iter()
            .map(|b| {
                let b = b.clone().with_in_channels(b.in_channels.unwrap_or(c_in));
                c_in = b.filters;
                b
            })
            .collect()
    }

    /// The shape after every block, `[C, H, W]`, checking that each block fits its input.
    pub fn block_shapes(&self) -> Result<Vec<[usize; 3]>> {
        let [c, h, w] = self.input;
        if c == 0 || h == 0 || w == 0 {
            return Err(Error::config(
                "features.input",
                format!(
                    "every dimension of the input must be at least 1, got {:?}",
                    self.input
                ),
            ));
        }
        checked_elements("features.input", "the input", &self.input)?;
        let mut shape = self.input;
        let mut out = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.resolved_blocks().iter().enumerate() {
            shape = b.output_shape(&format!("features.blocks[{i}]"), shape)?;
            out.push(shape);
        }
        Ok(out)
    }

    /// `[C, H, W]` of the last block's output.
    pub fn output_shape(&self) -> Result<[usize; 3]> {
        Ok(self.block_shapes()?.last().copied().unwrap_or(self.input))
    }

    /// Length of the flattened feature vector, `C·H·W` of the output.
    pub fn feature_len(&self) -> Result<usize> {
        let [c, h, w] = self.output_shape()?;
        checked_elements("features", "the feature vector", &[c, h, w])
    }

    /// Builds the extractor.
    pub fn init(&self, device: &Device) -> Result<FeatureExtractor> {
        self.block_shapes()?;
        let blocks = self
            .resolved_blocks()
            .iter()
            .enumerate()
            .map(|(i, b)| {
                b.init(device)
                    .map_err(|e| e.within(&format!("features.blocks[{i}]")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FeatureExtractor {
            blocks,
            input: self.input,
        })
    }
}

/// Convolution blocks followed by flattening: image → feature vector.
#[derive(Module, Debug)]
pub struct FeatureExtractor {
    /// The blocks, in order.
    pub blocks: Vec<Conv2dBlock>,
    /// The expected input `[C, H, W]`.
    pub input: [usize; 3],
}

impl FeatureExtractor {
    /// The feature vector of each image.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]`
    /// - output: `[N, F]` with `F = C_out·H_out·W_out` of the last block
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_traced(x, None)
    }

    /// [`FeatureExtractor::forward`], adding to `stages` (when given) each block's feature
    /// maps after its activation and after its pooling, and the feature vector. The same
    /// output either way, bit for bit.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]`
    /// - output: `[N, F]`
    pub fn forward_traced(&self, x: Tensor<4>, mut stages: Option<&mut Vec<Stage>>) -> Tensor<2> {
        let mut x = x;
        for (i, b) in self.blocks.iter().enumerate() {
            let out = b.forward_traced(x, stages.is_some());
            if let Some(stages) = stages.as_deref_mut() {
                let activated = out.activated.as_ref().unwrap_or(&out.output);
                let name = format!("features.blocks[{i}]");
                stages.push(Stage::of_maps(
                    format!("{name}.conv"),
                    StageKind::Conv,
                    activated,
                ));
                if b.pool.is_some() {
                    stages.push(Stage::of_maps(
                        format!("{name}.pool"),
                        StageKind::Pool,
                        &out.output,
                    ));
                }
            }
            x = out.output;
        }
        let v = x.flatten(1, 3);
        if let Some(stages) = stages {
            stages.push(Stage::of_vectors(
                "feature vector".into(),
                StageKind::FeatureVector,
                &v,
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CnnConfig;

    fn feature_vector_length(d: Device) {
        let cfg = CnnConfig::keras_mnist();
        assert_eq!(cfg.features.output_shape().unwrap(), [64, 5, 5]);
        assert_eq!(cfg.features.feature_len().unwrap(), 1600);
        let f = cfg
            .features
            .init(&d)
            .unwrap()
            .forward(Tensor::zeros([2, 1, 28, 28], &d));
        assert_eq!(f.dims(), [2, 1600]);
    }

    #[test]
    fn in_channels_come_from_the_chain_and_are_checked() {
        let mut blocks = CnnConfig::keras_mnist().features.blocks;
        for b in &mut blocks {
            b.in_channels = None;
        }
        let cfg = FeatureExtractorConfig::new([1, 28, 28]).with_blocks(blocks.clone());
        assert_eq!(cfg, CnnConfig::keras_mnist().features);
        assert_eq!(cfg.blocks[1].in_channels, Some(32));
        // left as None (a struct literal): still inferred
        let literal = FeatureExtractorConfig {
            input: [1, 28, 28],
            blocks,
        };
        assert_eq!(literal.output_shape().unwrap(), [64, 5, 5]);
        // set, and wrong
        let mut wrong = CnnConfig::keras_mnist().features;
        wrong.blocks[1].in_channels = Some(16);
        let err = wrong.output_shape().unwrap_err().to_string();
        assert!(
            err.contains("features.blocks[1].in_channels: is 16 but its input has 32 channels"),
            "{err}"
        );
        // JSON without in_channels: filled in
        let json = r#"{"input": [3, 8, 8], "blocks": [{"filters": 4, "kernel": 3}, {"filters": 2, "kernel": 3}]}"#;
        let cfg: FeatureExtractorConfig = serde_json::from_str(json).unwrap();
        let ins: Vec<_> = cfg.blocks.iter().map(|b| b.in_channels).collect();
        assert_eq!(ins, [Some(3), Some(4)]);
    }

    crate::test_on_backends!(feature_vector_length);
}
