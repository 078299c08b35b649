//! Throughput measurement shared by `netcalc bench` and the criterion benches: training steps
//! (forward + backward + Adam step) and inference on synthetic MNIST-shaped batches.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};

use super::allocs::{AllocCount, allocations};
use super::{OptimizerConfig, OptimizerKind, build_optimizer};
use crate::error::Result;
use crate::model::{Cnn, CnnConfig};

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
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Throughput {
    /// Training images per second (median step).
    pub train_images_per_sec: f64,
    /// Inference images per second (median batch).
    pub infer_images_per_sec: f64,
    /// Median training step, milliseconds.
    pub train_step_ms: f64,
    /// Median inference batch, milliseconds.
    pub infer_batch_ms: f64,
    /// Heap allocations per training step (the mean of the timed steps), when the binary
    /// counts them (its global allocator is a [`super::allocs::CountingAlloc`]).
    pub train_allocs_per_step: Option<AllocCount>,
    /// Heap allocations per inference batch, likewise.
    pub infer_allocs_per_batch: Option<AllocCount>,
}

/// One backend's row of `netcalc bench --json FILE` (the file holds a list of them), which
/// `benches/reference/compare.sh` and the figures in `docs/perf/` read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchRecord {
    /// The backend's name (`flex`, `ndarray`, `wgpu`).
    pub backend: String,
    /// The model's name (`keras-cnn`, `cnn`, `mlp`).
    pub model: String,
    /// Images per training step.
    pub train_batch: usize,
    /// Images per inference batch.
    pub infer_batch: usize,
    /// What was measured.
    pub result: Throughput,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What [`measure`] times: batch sizes, timed steps and warm-up steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureOptions {
    /// Images per training step.
    pub train_batch: usize,
    /// Images per inference batch.
    pub infer_batch: usize,
    /// Timed training steps (at least 1).
    pub train_steps: usize,
    /// Timed inference batches (at least 1).
    pub infer_steps: usize,
    /// Untimed steps of each before timing.
    pub warmup: usize,
}

impl Default for MeasureOptions {
    /// `netcalc bench`'s defaults: training batch 128, inference batch 1000, 30 timed steps of
    /// each after 3 warm-up steps.
    fn default() -> Self {
        Self {
            train_batch: 128,
            infer_batch: 1000,
            train_steps: 30,
            infer_steps: 30,
            warmup: 3,
        }
    }
}

/// Times `opts.train_steps` training steps and `opts.infer_steps` inference batches after
/// `opts.warmup` of each; reports the medians. The training steps run with subnormals flushed,
/// as in [`super::train`].
pub fn measure(cfg: &CnnConfig, device: &Device, opts: &MeasureOptions) -> Result<Throughput> {
    // the median step time, and the allocations per step when they are counted
    let time = |steps: usize, mut step: Box<dyn FnMut() + '_>| {
        for _ in 0..opts.warmup {
            step();
        }
        let steps = steps.max(1);
        let before = allocations();
        let times = (0..steps)
            .map(|_| {
                let s = Instant::now();
                step();
                s.elapsed().as_secs_f64()
            })
            .collect();
        let allocs = before
            .zip(allocations())
            .map(|(b, a)| a.since(b) / steps as u64);
        (median(times), allocs)
    };
    let mut t = TrainStepper::new(cfg, opts.train_batch, device)?;
    // training steps as `train` runs them, subnormals flushed (see `denormals`)
    let flush = super::FlushDenormals::unless_kept()?;
    let (ts, train_allocs) = time(
        opts.train_steps,
        Box::new(|| {
            t.step();
        }),
    );
    drop(flush);
    let inf = Inferer::new(cfg, opts.infer_batch, device)?;
    let (is, infer_allocs) = time(
        opts.infer_steps,
        Box::new(|| {
            inf.step();
        }),
    );
    Ok(Throughput {
        train_images_per_sec: opts.train_batch as f64 / ts,
        infer_images_per_sec: opts.infer_batch as f64 / is,
        train_step_ms: ts * 1e3,
        infer_batch_ms: is * 1e3,
        train_allocs_per_step: train_allocs,
        infer_allocs_per_batch: infer_allocs,
    })
}
