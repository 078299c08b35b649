//! Criterion benches: a training step (forward + backward + Adam) at batch 128 and inference at
//! batch 1000 for the Keras convnet, the default CNN and the MLP on every compiled CPU backend,
//! one image through the default CNN, plus micro benches of pooling, convolution and
//! softmax + cross-entropy at MNIST sizes.
//!
//! `cargo bench` (all), `cargo bench -- train` (a subset). wgpu is skipped unless
//! `NETCALC_BENCH_WGPU=1` (on lavapipe its times mean nothing).

use criterion::{Criterion, criterion_group, criterion_main};
use netcalc::app::train::bench::{Inferer, TrainStepper};
use netcalc::burn::nn::conv::Conv2dConfig;
use netcalc::burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use netcalc::functional::loss::cross_entropy;
use netcalc::functional::prob::softmax;
use netcalc::{Activation, BackendKind, CnnConfig, Conv2dBlockConfig, Pool2dConfig, PoolKind};

// The same allocator as the `mnist` example (see the README: glibc's malloc returns large
// buffers to the kernel and page-faults them back in on every step).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The CPU backends compiled in, and wgpu too with `NETCALC_BENCH_WGPU=1`.
fn devices() -> Vec<(BackendKind, Device)> {
    if std::env::var("NETCALC_BENCH_WGPU").is_ok_and(|v| v == "1") {
        netcalc::testing::all_devices()
    } else {
        netcalc::testing::cpu_devices()
    }
}

fn sync<const D: usize>(t: Tensor<D>) -> f32 {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map(|v| v[0])
        .unwrap_or(0.0)
}

fn models(c: &mut Criterion) {
    for (kind, d) in devices() {
        for cfg in [
            CnnConfig::keras_mnist(),
            CnnConfig::mnist_default(),
            CnnConfig::mlp(),
        ] {
            let mut g = c.benchmark_group(format!("train_b128/{}", cfg.name));
            g.sample_size(10);
            g.throughput(criterion::Throughput::Elements(128));
            let mut t = TrainStepper::new(&cfg, 128, &d).unwrap();
            g.bench_function(kind.name(), |b| b.iter(|| t.step()));
            g.finish();
            let mut g = c.benchmark_group(format!("infer_b1000/{}", cfg.name));
            g.sample_size(10);
            g.throughput(criterion::Throughput::Elements(1000));
            let inf = Inferer::new(&cfg, 1000, &d).unwrap();
            g.bench_function(kind.name(), |b| b.iter(|| inf.step()));
            g.finish();
        }
        // one image at a time, what `predict` and the web server pay per digit
        let cfg = CnnConfig::mnist_default();
        let mut g = c.benchmark_group(format!("infer_b1/{}", cfg.name));
        g.throughput(criterion::Throughput::Elements(1));
        let inf = Inferer::new(&cfg, 1, &d).unwrap();
        g.bench_function(kind.name(), |b| b.iter(|| inf.step()));
        g.finish();
    }
}

fn ops(c: &mut Criterion) {
    for (kind, d) in devices() {
        let x = Tensor::<4>::random([128, 32, 26, 26], Distribution::Normal(0.0, 1.0), &d);
        let mut g = c.benchmark_group("pool2d_2x2_128x32x26x26");
        g.sample_size(20);
        for k in [PoolKind::Max, PoolKind::Avg] {
            let p = Pool2dConfig::new(k, [2, 2]).init(&d).unwrap();
            g.bench_function(format!("{k:?}/{kind}"), |b| {
                b.iter(|| sync(p.forward(x.clone())))
            });
        }
        g.finish();
        // Forward, and forward + backward on the autodiff device: burn's `Conv2d` and
        // netcalc's block (through its CPU kernels on flex and ndarray).
        let conv = Conv2dConfig::new([32, 64], [3, 3]).init(&d);
        let block = Conv2dBlockConfig::new(32, 64, 3)
            .with_activation(Activation::Identity)
            .init(&d)
            .unwrap();
        let x2 = Tensor::<4>::random([128, 32, 13, 13], Distribution::Normal(0.0, 1.0), &d);
        let mut g = c.benchmark_group("conv2d_32to64_3x3_128x13x13");
        g.sample_size(10);
        g.bench_function(format!("burn/{kind}"), |b| {
            b.iter(|| sync(conv.forward(x2.clone())))
        });
        g.bench_function(format!("netcalc/{kind}"), |b| {
            b.iter(|| sync(block.forward(x2.clone())))
        });
        let ad = d.clone().autodiff();
        let conv_ad = Conv2dConfig::new([32, 64], [3, 3]).init(&ad);
        let block_ad = Conv2dBlockConfig::new(32, 64, 3)
            .with_activation(Activation::Identity)
            .init(&ad)
            .unwrap();
        let x2_ad = Tensor::<4>::random([128, 32, 13, 13], Distribution::Normal(0.0, 1.0), &ad)
            .require_grad();
        g.bench_function(format!("burn_fwd_bwd/{kind}"), |b| {
            b.iter(|| conv_ad.forward(x2_ad.clone()).sum().backward())
        });
        g.bench_function(format!("netcalc_fwd_bwd/{kind}"), |b| {
            b.iter(|| block_ad.forward(x2_ad.clone()).sum().backward())
        });
        g.finish();
        let mut g = c.benchmark_group("max_pool2d_2x2_fwd_bwd_128x32x26x26");
        g.sample_size(10);
        let p = Pool2dConfig::new(PoolKind::Max, [2, 2]).init(&d).unwrap();
        let x_ad = Tensor::<4>::random([128, 32, 26, 26], Distribution::Normal(0.0, 1.0), &ad)
            .require_grad();
        g.bench_function(format!("burn/{kind}"), |b| {
            b.iter(|| {
                let opts = netcalc::burn::tensor::ops::MaxPoolOptions::new([2, 2]);
                netcalc::burn::tensor::module::max_pool2d(x_ad.clone(), opts)
                    .sum()
                    .backward()
            })
        });
        g.bench_function(format!("netcalc/{kind}"), |b| {
            b.iter(|| p.forward(x_ad.clone()).sum().backward())
        });
        g.finish();
        let logits = Tensor::<2>::random([128, 10], Distribution::Normal(0.0, 1.0), &d);
        let labels: Tensor<1, Int> = Tensor::from_data(
            TensorData::new((0..128).map(|i| i % 10).collect::<Vec<i64>>(), [128]),
            &d,
        );
        let mut g = c.benchmark_group("softmax_cross_entropy_128x10");
        g.bench_function(format!("softmax/{kind}"), |b| {
            b.iter(|| sync(softmax(logits.clone(), 1)))
        });
        g.bench_function(format!("cross_entropy/{kind}"), |b| {
            b.iter(|| sync(cross_entropy(logits.clone(), labels.clone()).unwrap()))
        });
        g.finish();
    }
}

criterion_group!(benches, models, ops);
criterion_main!(benches);
