//! Throughput measurement shared by `mnist bench` and the criterion benches: training steps
//! (forward + backward + Adam step) and inference on synthetic MNIST-shaped batches.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::{OptimizerConfig, OptimizerKind, build_optimizer};
use crate::cnn::{Cnn, CnnConfig};
use crate::error::Result;

/// A model, an Adam optimizer and one fixed batch, ready to take training steps.
pub struct TrainStepper {
    model: Option<Cnn>,
    optim: ModuleOptimizer,
    loss: CrossEntropyLoss,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
}

fn synthetic(cfg: &CnnConfig, batch: usize, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let [c, h, w] = cfg.features.input;
    let images = Tensor::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), device);
    let classes = cfg.num_classes().max(1);
    let labels: Vec<i64> = (0..batch).map(|i| (i % classes) as i64).collect();
    (
        images,
        Tensor::from_data(TensorData::new(labels, [batch]), device),
    )
}

impl TrainStepper {
    /// Builds the model of `cfg` on `device` (autodiff added) with a random batch of `batch`.
    pub fn new(cfg: &CnnConfig, batch: usize, device: &Device) -> Result<Self> {
        let ad = device.clone().autodiff();
        ad.seed(0);
        let model = cfg.init(&ad)?;
        let (images, labels) = synthetic(cfg, batch, &ad);
        let optim = build_optimizer(&OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            momentum: 0.9,
        });
        Ok(Self {
            model: Some(model),
            optim,
            loss: CrossEntropyLossConfig::new().init(&ad),
            images,
            labels,
        })
    }

    /// One forward + backward + Adam step; returns the loss (reading it waits for the device).
    pub fn step(&mut self) -> f32 {
        let model = self.model.take().expect("model present between steps");
        let logits = model.forward(self.images.clone());
        let loss = self.loss.forward(logits, self.labels.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(1e-3, model, grads));
        loss.into_scalar::<f32>()
    }

    /// The model in inference mode.
    pub fn valid_model(&self) -> Cnn {
        self.model.as_ref().expect("model present").valid()
    }
}

/// A model in inference mode and one fixed batch.
pub struct Inferer {
    model: Cnn,
    images: Tensor<4>,
}

impl Inferer {
    /// Builds the model of `cfg` on `device` with a random batch of `batch`.
    pub fn new(cfg: &CnnConfig, batch: usize, device: &Device) -> Result<Self> {
        device.seed(0);
        let model = cfg.init(device)?;
        let (images, _) = synthetic(cfg, batch, device);
        Ok(Self { model, images })
    }

    /// Classifies the batch; returns the first prediction (reading it waits for the device).
    pub fn step(&self) -> i64 {
        let preds = self.model.forward(self.images.clone()).argmax(1);
        preds
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(-1)
    }
}

/// Measured throughput.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Throughput {
    /// Training images per second (median step).
    pub train_images_per_sec: f64,
    /// Inference images per second (median batch).
    pub infer_images_per_sec: f64,
    /// Median training step, milliseconds.
    pub train_step_ms: f64,
    /// Median inference batch, milliseconds.
    pub infer_batch_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `steps` training steps at `train_batch` and `steps` inference batches of `infer_batch`,
/// after `warmup` of each; reports medians.
pub fn measure(
    cfg: &CnnConfig,
    device: &Device,
    train_batch: usize,
    infer_batch: usize,
    steps: usize,
    warmup: usize,
) -> Result<Throughput> {
    let steps = steps.max(1);
    let mut t = TrainStepper::new(cfg, train_batch, device)?;
    for _ in 0..warmup {
        t.step();
    }
    let mut train = Vec::with_capacity(steps);
    for _ in 0..steps {
        let s = Instant::now();
        t.step();
        train.push(s.elapsed().as_secs_f64());
    }
    let inf = Inferer::new(cfg, infer_batch, device)?;
    for _ in 0..warmup.min(3) {
        inf.step();
    }
    let mut infer = Vec::with_capacity(steps);
    for _ in 0..steps.min(20) {
        let s = Instant::now();
        inf.step();
        infer.push(s.elapsed().as_secs_f64());
    }
    let ts = median(train);
    let is = median(infer);
    Ok(Throughput {
        train_images_per_sec: train_batch as f64 / ts,
        infer_images_per_sec: infer_batch as f64 / is,
        train_step_ms: ts * 1e3,
        infer_batch_ms: is * 1e3,
    })
}
