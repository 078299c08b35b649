//! netcalc as a library in your own program: a CNN built from its serde config, trained for
//! some steps with burn's Adam and cross-entropy on tensors of your own, saved and loaded with
//! burn's burnpack record, then asked for predictions.
//!
//! The data here is made up so that the example needs no file: 1×8×8 images whose class (0,
//! 1 or 2) is where a bright bar is (top, middle, bottom rows). Replace it with your tensors.
//!
//! `cargo run --release --example library`
//!
//! In your crate, the core alone on one backend is enough:
//! `netcalc = { version = "0.1", default-features = false, features = ["flex"] }`.

use netcalc::burn::module::Module;
use netcalc::burn::nn::loss::CrossEntropyLossConfig;
use netcalc::burn::optim::{AdamConfig, GradientsParams};
use netcalc::burn::tensor::{Int, Tensor, TensorData};
use netcalc::{CnnConfig, select_device};

/// `n` images of 1×8×8 with a bar of 1.0 in rows `3·class .. 3·class + 2` (plus a little
/// noise), and their classes.
fn bars(n: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 0.2
    };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let class = i % 3;
        for row in 0..8 {
            for _ in 0..8 {
                let on = row / 3 == class && row % 3 != 2;
                pixels.push(if on { 1.0 } else { 0.0 } + noise());
            }
        }
        labels.push(class as i64);
    }
    (pixels, labels)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (backend, device) = select_device(None)?;
    // 1. The model, from a config as JSON (the same serde config `netcalc` writes as
    //    `config.json`'s `model`): one conv block with max pooling, a dense classifier.
    //    8 filters of 3×3: 8×6×6 maps, pooled 2×2 to 8×3×3 = 72 features.
    let cfg = CnnConfig::from_json(
        r#"{
            "name": "bars",
            "features": {
                "input": [1, 8, 8],
                "blocks": [{ "filters": 8, "kernel": 3, "activation": "relu",
                             "pool": { "kind": "max", "kernel": [2, 2] } }]
            },
            "classifier": { "n_inputs": 72, "n_neurons": [16, 3], "hidden_activation": "relu" }
        }"#,
    )?;
    cfg.validate()?;
    println!("{}", cfg.summary()?);

    // 2. Training with burn's optimizer and loss, on an autodiff device.
    let ad = device.clone().autodiff();
    ad.seed(7);
    let mut model = cfg.init(&ad)?;
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let (pixels, labels) = bars(96, 1);
    let n = labels.len();
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [n, 1, 8, 8]), &ad);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &ad);
    let mut first_loss = None;
    let mut loss_value = 0.0;
    for step in 0..60 {
        let scores = model.forward(images.clone());
        let loss = loss_fn.forward(scores, targets.clone());
        loss_value = loss.clone().into_scalar::<f64>();
        first_loss.get_or_insert(loss_value);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
        if step % 20 == 0 {
            println!("step {step:2}: loss {loss_value:.4}");
        }
    }
    println!(
        "loss {:.4} -> {loss_value:.4} after 60 steps on {backend}",
        first_loss.unwrap_or(f64::NAN)
    );

    // 3. Save and load with burn's record (burnpack), into a model built from the same config.
    let dir = std::env::temp_dir().join(format!("netcalc-library-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("bars.bpk");
    model.valid().save_file(&file)?;
    // burn reads a burnpack file's tensors when they are first used: keep the file meanwhile
    let loaded = cfg.init(&device)?.try_load_file(&file)?;

    // 4. Predictions on new images: the class with the highest score.
    let (pixels, labels) = bars(30, 2);
    let test = Tensor::<4>::from_data(TensorData::new(pixels, [30, 1, 8, 8]), &device);
    let predicted: Vec<i64> = loaded
        .try_forward(test)?
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| format!("{e:?}"))?;
    let right = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p == l)
        .count();
    println!(
        "loaded from {}: {right} of 30 new images right",
        file.display()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
