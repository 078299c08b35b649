//! The same numbers on every backend compiled into the build (ndarray, flex, and wgpu when an
//! adapter exists — lavapipe in CI): hand-checked values per concept, and parity of the CNN's
//! forward pass and of one training step, with weights copied from one backend to the others.
//!
//! Tolerances: hand-computed values to 1e-5 (f32 rounding of 4–6 significant digits); parity
//! between backends to 1e-4 absolute on outputs of magnitude ~1 (f32 sums of up to 1,600 terms
//! in a different order differ by ~1e-6 relative; 1e-4 leaves two orders of margin while still
//! catching any real difference such as a wrong padding or a transposed weight).

use netcalc::burn::module::Module;
use netcalc::burn::nn::loss::CrossEntropyLossConfig;
use netcalc::burn::optim::{GradientsParams, SgdConfig};
use netcalc::burn::tensor::{Device, Int, Tensor, TensorData};
use netcalc::loss::{binary_cross_entropy, cross_entropy, cross_entropy_one_hot, mse};
use netcalc::prob::{log_softmax, logit, sigmoid, softmax};
use netcalc::testing::{all_devices, assert_close, max_abs_diff, values};
use netcalc::{BackendKind, Cnn, CnnConfig, Pool1dConfig, Pool2dConfig, PoolKind};

const PARITY_TOL: f32 = 1e-4;

fn devices() -> Vec<(BackendKind, Device)> {
    let d = all_devices();
    assert!(!d.is_empty(), "no backend available");
    eprintln!(
        "backends under test: {:?}",
        d.iter().map(|(k, _)| *k).collect::<Vec<_>>()
    );
    #[cfg(feature = "wgpu")]
    for (k, dev) in &d {
        if *k == BackendKind::Wgpu {
            eprintln!("wgpu adapter: {:?}", dev.identity().map(|i| i.name));
        }
    }
    d
}

#[test]
fn probability_helpers_on_every_backend() {
    for (kind, d) in devices() {
        let p = Tensor::<1>::from_floats([0.2, 0.5, 0.9], &d);
        assert_close(&values(sigmoid(logit(p))), &[0.2, 0.5, 0.9], 1e-5);
        let z = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [-1000.0, 0.0, 1000.0]], &d);
        let s = values(softmax(z.clone(), 1));
        assert_close(&s, &[0.090_031, 0.244_728, 0.665_241, 0.0, 0.0, 1.0], 1e-5);
        let ls = values(log_softmax(z, 1));
        assert_close(&ls[..3], &[-2.407_606, -1.407_606, -0.407_606], 1e-5);
        assert!(ls.iter().all(|v| v.is_finite()), "{kind}: {ls:?}");
    }
}

#[test]
fn losses_on_every_backend() {
    for (kind, d) in devices() {
        let p = Tensor::<1>::from_floats([0.9, 0.2, 0.6], &d);
        let y = Tensor::<1, Int>::from_ints([1, 0, 1], &d);
        assert_close(
            &values(binary_cross_entropy(p, y).unwrap()),
            &[0.279_777],
            1e-5,
        );
        let logits = || Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], &d);
        let idx = Tensor::<1, Int>::from_ints([2, 0], &d);
        assert_close(
            &values(cross_entropy(logits(), idx).unwrap()),
            &[0.753_109],
            1e-5,
        );
        let oh = Tensor::<2>::from_floats([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], &d);
        assert_close(
            &values(cross_entropy_one_hot(logits(), oh).unwrap()),
            &[0.753_109],
            1e-5,
        );
        let a = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &d);
        let b = Tensor::<1>::from_floats([1.5, 2.0, 2.0, 6.0], &d);
        assert_close(&values(mse(a, b).unwrap()), &[1.3125], 1e-6);
        eprintln!("{kind}: losses ok");
    }
}

#[test]
fn pooling_on_every_backend() {
    for (_, d) in devices() {
        let x = Tensor::<1>::from_floats([1.0, 3.0, 2.0, 5.0, 4.0, 0.0], &d).reshape([1, 1, 6]);
        let max = Pool1dConfig::new(PoolKind::Max, 3)
            .with_stride(1)
            .init()
            .unwrap();
        assert_close(&values(max.forward(x.clone())), &[3.0, 5.0, 5.0, 5.0], 1e-6);
        let avg = Pool1dConfig::new(PoolKind::Avg, 3)
            .with_stride(2)
            .with_padding(1)
            .init()
            .unwrap();
        assert_close(&values(avg.forward(x)), &[4.0 / 3.0, 10.0 / 3.0, 3.0], 1e-5);
        let img = Tensor::<1>::from_floats(
            [
                1.0, 2.0, 5.0, 6.0, 3.0, 4.0, 7.0, 8.0, 9.0, 10.0, 13.0, 14.0, 11.0, 12.0, 15.0,
                16.0,
            ],
            &d,
        )
        .reshape([1, 1, 4, 4]);
        let mp = Pool2dConfig::new(PoolKind::Max, [2, 2]).init().unwrap();
        assert_close(
            &values(mp.forward(img.clone())),
            &[4.0, 8.0, 12.0, 16.0],
            1e-6,
        );
        let ap = Pool2dConfig::new(PoolKind::Avg, [2, 2]).init().unwrap();
        assert_close(&values(ap.forward(img)), &[2.5, 6.5, 10.5, 14.5], 1e-6);
    }
}

/// A deterministic batch of `n` MNIST-shaped images with smooth values in [-0.5, 2.5].
fn batch(n: usize, d: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let v: Vec<f32> = (0..n * 784)
        .map(|i| 1.0 + 1.5 * ((i as f32) * 0.37).sin() * ((i / 784) as f32 + 1.0).cos())
        .collect();
    let labels: Vec<i64> = (0..n as i64).map(|i| (i * 3) % 10).collect();
    (
        Tensor::from_data(TensorData::new(v, [n, 1, 28, 28]), d),
        Tensor::from_data(TensorData::new(labels, [n]), d),
    )
}

/// The model of `cfg` on `d` with exactly the weights of `reference`.
fn copy_model(cfg: &CnnConfig, reference: &Cnn, d: &Device) -> Cnn {
    cfg.init(d)
        .unwrap()
        .try_load_record(reference.clone().into_record())
        .expect("record applies")
}

#[test]
fn cnn_forward_parity_across_backends() {
    let devs = devices();
    let cfg = CnnConfig::keras_mnist();
    let (ref_kind, ref_dev) = &devs[0];
    ref_dev.seed(1);
    let reference = cfg.init(ref_dev).unwrap();
    let (x, _) = batch(4, ref_dev);
    let expected = values(reference.forward(x));
    assert!(
        expected.iter().any(|v| v.abs() > 1e-3),
        "outputs are not trivial"
    );
    for (kind, d) in &devs[1..] {
        let model = copy_model(&cfg, &reference, d);
        let (x, _) = batch(4, d);
        let got = values(model.forward(x));
        let diff = max_abs_diff(&got, &expected);
        eprintln!("forward {kind} vs {ref_kind}: max |diff| = {diff:e}");
        assert!(
            diff <= PARITY_TOL,
            "{kind} differs from {ref_kind} by {diff}"
        );
    }
}

#[test]
fn training_step_parity_across_backends() {
    let devs = devices();
    let cfg = CnnConfig::keras_mnist();
    // dropout off so that every backend computes the same function
    let mut cfg_nodrop = cfg.clone();
    cfg_nodrop.classifier.input_dropout = 0.0;
    let (_, ref_dev) = &devs[0];
    ref_dev.seed(2);
    let reference = cfg_nodrop.init(ref_dev).unwrap();
    let mut results: Vec<(BackendKind, f32, f32, Vec<f32>)> = Vec::new();
    for (kind, d) in &devs {
        let ad = d.clone().autodiff();
        let model = copy_model(&cfg_nodrop, &reference, &ad);
        let (x, y) = batch(8, &ad);
        let loss_fn = CrossEntropyLossConfig::new().init(&ad);
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let before = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        // plain SGD: the update is -lr·gradient, so comparing parameters compares gradients
        let mut optim = SgdConfig::new().init();
        let model = optim.step(0.05, model, grads);
        let after = loss_fn.forward(model.forward(x), y).into_scalar::<f32>();
        let w = values(model.valid().features.blocks[0].conv.weight.val());
        eprintln!("{kind}: loss {before} -> {after}");
        assert!(
            after < before,
            "{kind}: one step did not lower the loss ({before} -> {after})"
        );
        results.push((*kind, before, after, w));
    }
    let (k0, l0, a0, w0) = &results[0];
    for (k, l, a, w) in &results[1..] {
        assert!(
            (l - l0).abs() <= PARITY_TOL,
            "{k} vs {k0}: loss {l} vs {l0}"
        );
        assert!(
            (a - a0).abs() <= PARITY_TOL,
            "{k} vs {k0}: loss after {a} vs {a0}"
        );
        let diff = max_abs_diff(w, w0);
        eprintln!("updated conv1 weights {k} vs {k0}: max |diff| = {diff:e}");
        assert!(
            diff <= PARITY_TOL,
            "{k} vs {k0}: updated weights differ by {diff}"
        );
    }
}
