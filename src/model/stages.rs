//! Looking inside the network: every intermediate result of a forward pass, with its shape, in
//! the concepts' own words.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::cnn::Cnn;
use crate::error::{Error, Result};

/// What a [`Stage`] of [`Cnn::forward_stages`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// The image fed to the network, `[C, H, W]`.
    Input,
    /// Feature maps of a convolution after its activation, `[C_out, H, W]`.
    Conv,
    /// Feature maps after a pooling layer, `[C_out, H, W]`.
    Pool,
    /// The flattened output of the feature extractor, `[F]`.
    FeatureVector,
    /// A hidden dense layer after its activation, `[n]`.
    Dense,
    /// The classifier's output: one score (logit) per class, `[classes]`.
    ClassScores,
    /// The softmax of the class scores: one probability per class, `[classes]`.
    Probabilities,
}

/// One intermediate result of a forward pass (see [`Cnn::forward_stages`]).
#[derive(Debug, Clone)]
pub struct Stage {
    /// Where it comes from, e.g. `features.blocks[0].conv`, `classifier.layers[1]`.
    pub name: String,
    /// What it is.
    pub kind: StageKind,
    /// Its shape for one image (without the batch axis), as in the summary.
    pub shape: Vec<usize>,
    /// The values, one row per image: `[N, ∏ shape]`.
    pub tensor: Tensor<2>,
}

impl Stage {
    /// A stage of feature maps (or images), `t` of shape `[N, C, H, W]`.
    pub(crate) fn of_maps(name: String, kind: StageKind, t: &Tensor<4>) -> Self {
        let [n, c, h, w] = t.dims();
        Self {
            name,
            kind,
            shape: vec![c, h, w],
            tensor: t.clone().reshape([n, c * h * w]),
        }
    }

    /// A stage of vectors, `t` of shape `[N, F]`.
    pub(crate) fn of_vectors(name: String, kind: StageKind, t: &Tensor<2>) -> Self {
        Self {
            name,
            kind,
            shape: vec![t.dims()[1]],
            tensor: t.clone(),
        }
    }

    /// The values of image `index` of the batch (`∏ shape` of them, row-major).
    pub fn row(&self, index: usize) -> Result<Vec<f32>> {
        let n = self.tensor.dims()[0];
        let error = |message: String| Error::Shape {
            what: format!("stage {}", self.name),
            message,
        };
        if index >= n {
            return Err(error(format!("image {index} of a batch of {n}")));
        }
        self.tensor
            .clone()
            .slice(index..index + 1)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| error(format!("{e:?}")))
    }
}

impl Cnn {
    /// The forward pass in inference mode (no dropout), returning every stage with its shape:
    /// the input; each convolution after its activation and each pooling layer (the feature
    /// maps); the feature vector; each hidden dense layer after its activation; the class
    /// scores (exactly [`Cnn::forward`]'s output: the same per-block forward, bit for bit on
    /// the CPU backends); the softmax probabilities.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]` matching the config
    /// - output: stages whose `tensor` is `[N, ∏ shape]`
    pub fn forward_stages(&self, x: Tensor<4>) -> Result<Vec<Stage>> {
        self.check_input("Cnn::forward_stages", &x)?;
        let mut stages = vec![Stage::of_maps("input".into(), StageKind::Input, &x)];
        let v = self.features.forward_traced(x, Some(&mut stages));
        let last = self.classifier.layers.len().saturating_sub(1);
        let scores = self.classifier.forward_traced(v, |i, h| {
            let kind = if i < last {
                StageKind::Dense
            } else {
                StageKind::ClassScores
            };
            stages.push(Stage::of_vectors(
                format!("classifier.layers[{i}]"),
                kind,
                h,
            ));
        });
        let p = crate::functional::prob::softmax(scores, 1);
        stages.push(Stage::of_vectors(
            "softmax".into(),
            StageKind::Probabilities,
            &p,
        ));
        Ok(stages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CnnConfig;
    use burn::tensor::{Device, Distribution};

    fn stages_match_forward_and_summary(d: Device) {
        for cfg in [
            CnnConfig::mnist_default(),
            CnnConfig::keras_mnist(),
            CnnConfig::mlp(),
        ] {
            let m = cfg.init(&d).unwrap();
            let x = Tensor::<4>::random([3, 1, 28, 28], Distribution::Normal(0.0, 1.0), &d);
            let stages = m.forward_stages(x.clone()).unwrap();
            let logits = crate::testing::values(m.forward(x));
            let n = stages.len();
            assert_eq!(stages[0].kind, StageKind::Input);
            assert_eq!(stages[0].shape, vec![1, 28, 28]);
            assert_eq!(stages[n - 2].kind, StageKind::ClassScores);
            // forward's output: the same ops in the same order, so bit for bit on the CPU
            // backends; wgpu fuses element-wise ops into different kernels when intermediate
            // results are kept (the stages), which moves the last bits
            let scores = crate::testing::values(stages[n - 2].tensor.clone());
            if crate::backend::backend_of(&d) == Some(crate::BackendKind::Wgpu) {
                crate::testing::assert_close(&scores, &logits, 1e-5);
            } else {
                assert_eq!(scores, logits, "{}", cfg.name);
            }
            assert_eq!(stages[n - 1].kind, StageKind::Probabilities);
            let probs = crate::testing::values(stages[n - 1].tensor.clone());
            for row in probs.chunks(10) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
            // every stage's shape is the summary's row for that layer (dropout rows aside)
            let rows: Vec<Vec<usize>> = cfg
                .summary()
                .unwrap()
                .rows
                .into_iter()
                .filter(|r| !r.layer.starts_with("dropout"))
                .map(|r| r.output_shape)
                .collect();
            let shapes: Vec<Vec<usize>> =
                stages[1..n - 1].iter().map(|s| s.shape.clone()).collect();
            assert_eq!(shapes, rows, "{}", cfg.name);
            for s in &stages {
                assert_eq!(
                    s.tensor.dims(),
                    [3, s.shape.iter().product::<usize>()],
                    "{}",
                    s.name
                );
                let row = s.row(2).unwrap();
                assert_eq!(row.len(), s.shape.iter().product::<usize>(), "{}", s.name);
                assert!(s.row(3).is_err(), "a batch of 3 has no image 3");
            }
        }
        // the default CNN: input, conv, pool, conv, pool, feature vector, dense, scores, softmax
        let kinds: Vec<StageKind> = CnnConfig::mnist_default()
            .init(&d)
            .unwrap()
            .forward_stages(Tensor::zeros([1, 1, 28, 28], &d))
            .unwrap()
            .into_iter()
            .map(|s| s.kind)
            .collect();
        use StageKind::*;
        assert_eq!(
            kinds,
            [
                Input,
                Conv,
                Pool,
                Conv,
                Pool,
                FeatureVector,
                Dense,
                ClassScores,
                Probabilities
            ]
        );
        let m = CnnConfig::mlp().init(&d).unwrap();
        assert!(m.forward_stages(Tensor::zeros([1, 1, 27, 28], &d)).is_err());
    }

    crate::test_on_backends!(stages_match_forward_and_summary);
}
