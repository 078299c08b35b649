//! The CNN = feature extractor + classifier: one real MNIST digit through the default model,
//! stage by stage — image → feature maps → feature vector → class scores → probabilities —
//! with the shape at each stage, worked out by the formulas first.
//!
//! The model is untrained here (its probabilities are near uniform); `cargo run --release
//! --example mnist` trains it.
//!
//! `cargo run --release --example cnn`

use netcalc::app::data::{DataInfo, Dataset};
use netcalc::app::predict::images_tensor;
use netcalc::{CnnConfig, select_device, window_output_len};

fn main() -> anyhow::Result<()> {
    let (backend, device) = select_device(None)?;
    let cfg = CnnConfig::mnist_default();
    println!("The shapes by hand, for a 1×28×28 image:");
    let conv1 = window_output_len(28, 3, 1, 0)?;
    let pool1 = window_output_len(conv1, 2, 2, 0)?;
    let conv2 = window_output_len(pool1, 3, 1, 0)?;
    let pool2 = window_output_len(conv2, 2, 2, 0)?;
    println!("  block 1: conv 3×3, 32 filters: (28 − 3) / 1 + 1 = {conv1} → 32×{conv1}×{conv1}");
    println!(
        "           max pool 2×2: floor(({conv1} − 2) / 2) + 1 = {pool1} → 32×{pool1}×{pool1}"
    );
    println!(
        "  block 2: conv 3×3, 64 filters: ({pool1} − 3) / 1 + 1 = {conv2} → 64×{conv2}×{conv2}"
    );
    println!(
        "           max pool 2×2: floor(({conv2} − 2) / 2) + 1 = {pool2} → 64×{pool2}×{pool2}"
    );
    println!(
        "  feature vector: 64·{pool2}·{pool2} = {}",
        64 * pool2 * pool2
    );
    println!(
        "  classifier: dense 128 (ReLU), dense 10 → 10 class scores → softmax → 10 probabilities"
    );

    let data = Dataset::bundled()?;
    let digit = data.test.image(0).to_vec();
    let label = data.test.labels[0];
    let model = cfg.init(&device)?;
    let stages = model.forward_stages(images_tensor(&DataInfo::mnist(), &[digit], &device)?)?;
    println!(
        "\nnetcalc ({backend}): held-out digit 0 (a {label}) through `{}`",
        cfg.name
    );
    for s in &stages {
        let v = s.row(0)?;
        let (lo, hi) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        println!(
            "  {:<26} {:<16} shape {:<14} values in [{lo:.3}, {hi:.3}]",
            s.name,
            format!("{:?}", s.kind),
            format!("{:?}", s.shape)
        );
    }
    let probs = stages
        .last()
        .map(|s| s.row(0))
        .transpose()?
        .unwrap_or_default();
    println!(
        "  probabilities sum to {:.6}; the untrained model's top class: {}",
        probs.iter().sum::<f32>(),
        netcalc::app::predict::top_k(&probs, 1)[0].0
    );
    Ok(())
}
