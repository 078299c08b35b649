//! Walks the shapes of a dense stack and prints the summaries of the two MNIST presets.
//!
//! `cargo run --release --example shapes`

use netcalc::burn::module::Module;
use netcalc::burn::tensor::Tensor;
use netcalc::dense::dense_params;
use netcalc::summary::thousands;
use netcalc::{ClassifierConfig, CnnConfig, select_device};

fn main() -> anyhow::Result<()> {
    let (kind, device) = select_device(None)?;
    let cfg = ClassifierConfig::new(100, [50, 25, 10]);
    println!(
        "Dense stack: input 100, n_neurons = {:?} (backend {kind})",
        cfg.n_neurons
    );
    println!(
        "{:<8} {:>12} {:>8} {:>9}",
        "layer", "weight", "bias", "params"
    );
    for (i, (w, b)) in cfg.layer_shapes().iter().enumerate() {
        println!(
            "{:<8} {:>12} {:>8} {:>9}",
            format!("dense_{i}"),
            format!("({}, {})", w[0], w[1]),
            format!("({})", b[0]),
            thousands(dense_params(w[0], w[1]))
        );
    }
    let model = cfg.init(&device)?;
    let x = Tensor::<2>::zeros([4, 100], &device);
    let y = model.forward(x);
    println!(
        "total parameters: {} (counted on the built module: {}); forward [4, 100] -> {:?}\n",
        thousands(cfg.num_params()),
        thousands(model.num_params()),
        y.dims()
    );
    for preset in [
        CnnConfig::keras_mnist(),
        CnnConfig::mlp(),
        CnnConfig::mnist_default(),
    ] {
        println!("{}\n", preset.summary()?);
    }
    Ok(())
}
