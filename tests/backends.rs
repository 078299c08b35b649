//! Backends against each other: parity of the CNN's forward pass and of one training step on
//! every backend compiled into the build (ndarray, flex, wgpu — lavapipe in CI), with weights
//! copied from one backend to the others. (The hand-checked values of each concept run on every
//! backend too: the unit tests next to the code, through `test_on_backends!`.)
//!
//! Tolerance: parity between backends to 1e-4 absolute on outputs of magnitude ~1 (f32 sums of up to 1,600 terms
//! in a different order differ by ~1e-6 relative; 1e-4 leaves two orders of margin while still
//! catching any real difference such as a wrong padding or a transposed weight).

use netcalc::burn::module::Module;
use netcalc::burn::nn::loss::CrossEntropyLossConfig;
use netcalc::burn::optim::{GradientsParams, SgdConfig};
use netcalc::burn::tensor::{Device, Int, Tensor, TensorData};
use netcalc::testing::{all_devices, max_abs_diff, values};
use netcalc::{BackendKind, Cnn, CnnConfig};

const PARITY_TOL: f32 = 1e-4;

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
    let devs = all_devices();
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
    let devs = all_devices();
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
