//! Looking inside the network: every intermediate result of a forward pass, with its shape, in
//! the concepts' own words.

use burn::tensor::{Int, Tensor, TensorData};
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
        self.classify_traced(v, &mut stages, Tensor::clone);
        Ok(stages)
    }

    /// The classifier and the softmax on the feature vectors `v`, each dense layer's output
    /// and the probabilities pushed onto `stages` as `keep` gives them (all rows, or some);
    /// the probabilities of every row.
    fn classify_traced(
        &self,
        v: Tensor<2>,
        stages: &mut Vec<Stage>,
        keep: impl Fn(&Tensor<2>) -> Tensor<2>,
    ) -> Tensor<2> {
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
                &keep(h),
            ));
        });
        let p = crate::functional::prob::softmax(scores, 1);
        stages.push(Stage::of_vectors(
            "softmax".into(),
            StageKind::Probabilities,
            &keep(&p),
        ));
        p
    }

    /// One forward pass of the batch `x` that also keeps the stages of the images `rows`
    /// (in that order): the probabilities of every image, as [`Cnn::forward`] and a softmax
    /// give them, and stages as [`Cnn::forward_stages`] gives them, `[rows.len(), ∏ shape]`
    /// each. The batch takes the fast path (convolution, activation and pooling fused where
    /// the kernels can); only the convolutions' maps before pooling are computed again, for
    /// `rows` alone. A server answers a batch in which a few requests asked for stages with
    /// this, at about the cost of a plain forward pass.
    ///
    /// # Shapes
    /// - input: `[N, C, H, W]` matching the config; `rows` each below `N`
    /// - output: probabilities `[N, classes]`; stages whose `tensor` is `[rows.len(), ∏ shape]`
    pub fn forward_with_stages(
        &self,
        x: Tensor<4>,
        rows: &[usize],
    ) -> Result<(Tensor<2>, Vec<Stage>)> {
        self.check_input("Cnn::forward_with_stages", &x)?;
        let n = x.dims()[0];
        if let Some(bad) = rows.iter().find(|&&r| r >= n) {
            return Err(Error::Shape {
                what: "Cnn::forward_with_stages".into(),
                message: format!("row {bad} of a batch of {n}"),
            });
        }
        let picked: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let picked =
            Tensor::<1, Int>::from_data(TensorData::new(picked, [rows.len()]), &x.device());
        let pick4 = |t: &Tensor<4>| t.clone().select(0, picked.clone());
        let pick2 = |t: &Tensor<2>| t.clone().select(0, picked.clone());
        let mut stages = vec![Stage::of_maps("input".into(), StageKind::Input, &pick4(&x))];
        let mut x = x;
        for (i, b) in self.features.blocks.iter().enumerate() {
            let name = format!("features.blocks[{i}]");
            let out = b.forward_traced(x.clone(), false);
            if b.pool.is_some() {
                let activated = b.forward_traced(pick4(&x), true).activated;
                let activated = activated.ok_or_else(|| Error::Shape {
                    what: format!("{name}.conv"),
                    message: "the block kept no maps before pooling".into(),
                })?;
                stages.push(Stage::of_maps(
                    format!("{name}.conv"),
                    StageKind::Conv,
                    &activated,
                ));
                let pooled = pick4(&out.output);
                stages.push(Stage::of_maps(
                    format!("{name}.pool"),
                    StageKind::Pool,
                    &pooled,
                ));
            } else {
                let maps = pick4(&out.output);
                stages.push(Stage::of_maps(
                    format!("{name}.conv"),
                    StageKind::Conv,
                    &maps,
                ));
            }
            x = out.output;
        }
        let v = x.flatten(1, 3);
        stages.push(Stage::of_vectors(
            "feature vector".into(),
            StageKind::FeatureVector,
            &pick2(&v),
        ));
        let p = self.classify_traced(v, &mut stages, pick2);
        Ok((p, stages))
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

    /// `forward_with_stages` gives `forward`'s probabilities for the whole batch and
    /// `forward_stages`'s stages for the rows asked, in their order (a row twice included).
    fn stages_of_some_rows_match_the_batch_and_forward_stages(d: Device) {
        for cfg in [
            CnnConfig::mnist_default(),
            CnnConfig::keras_mnist(),
            CnnConfig::mlp(),
        ] {
            let m = cfg.init(&d).unwrap();
            let x = Tensor::<4>::random([5, 1, 28, 28], Distribution::Normal(0.0, 1.0), &d);
            let rows = [3, 0, 3];
            let (probs, stages) = m.forward_with_stages(x.clone(), &rows).unwrap();
            let want = crate::functional::prob::softmax(m.forward(x.clone()), 1);
            let exact = crate::backend::backend_of(&d) != Some(crate::BackendKind::Wgpu);
            let (got, want) = (crate::testing::values(probs), crate::testing::values(want));
            if exact {
                assert_eq!(got, want, "{}", cfg.name);
            } else {
                crate::testing::assert_close(&got, &want, 1e-5);
            }
            let all = m.forward_stages(x).unwrap();
            assert_eq!(stages.len(), all.len(), "{}", cfg.name);
            for (s, a) in stages.iter().zip(&all) {
                assert_eq!((&s.name, s.kind, &s.shape), (&a.name, a.kind, &a.shape));
                assert_eq!(s.tensor.dims(), [3, a.shape.iter().product::<usize>()]);
                for (j, &r) in rows.iter().enumerate() {
                    let (got, want) = (s.row(j).unwrap(), a.row(r).unwrap());
                    if exact {
                        assert_eq!(got, want, "{}: {} of row {r}", cfg.name, s.name);
                    } else {
                        crate::testing::assert_close(&got, &want, 1e-5);
                    }
                }
            }
        }
        let m = CnnConfig::mlp().init(&d).unwrap();
        let x = Tensor::<4>::zeros([2, 1, 28, 28], &d);
        let e = m.forward_with_stages(x, &[2]).unwrap_err().to_string();
        assert!(e.contains("row 2 of a batch of 2"), "{e}");
    }

    crate::test_on_backends!(stages_match_forward_and_summary);
    crate::test_on_backends!(stages_of_some_rows_match_the_batch_and_forward_stages);
}
