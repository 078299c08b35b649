//! Dense layers: the classifier stack `n_neurons = [50, 25, 10]` on 100 inputs, its shapes and
//! its parameter count, then the Keras-like summaries of the MNIST presets.
//!
//! A dense layer from `n_in` to `n_out` neurons has a weight matrix `[n_in, n_out]` and a bias
//! vector `[n_out]`: `n_in·n_out + n_out` parameters.
//!
//! `cargo run --release --example dense`

use netcalc::burn::module::Module;
use netcalc::burn::tensor::Tensor;
use netcalc::model::summary::thousands;
use netcalc::nn::dense::dense_params;
use netcalc::{ClassifierConfig, CnnConfig, select_device};

fn main() -> anyhow::Result<()> {
    let (backend, device) = select_device(None)?;
    let cfg = ClassifierConfig::new(100, [50, 25, 10]);
    println!(
        "A dense stack on 100 inputs with n_neurons = {:?}\n",
        cfg.n_neurons
    );
    println!("By hand, n_in·n_out + n_out per layer:");
    let mut total = Vec::new();
    for (w, _) in cfg.layer_shapes() {
        let p = dense_params(w[0], w[1]);
        println!(
            "  {:>3}·{:<3} + {:<3} = {:>6}",
            w[0],
            w[1],
            w[1],
            thousands(p)
        );
        total.push(thousands(p));
    }
    println!(
        "  total: {} = {}",
        total.join(" + "),
        thousands(cfg.num_params())
    );

    println!("\nnetcalc ({backend}):");
    println!(
        "  {:<8} {:>12} {:>8} {:>9}",
        "layer", "weight", "bias", "params"
    );
    let model = cfg.init(&device)?;
    for (i, layer) in model.layers.iter().enumerate() {
        let [n_in, n_out] = layer.weight.dims();
        let bias = layer.bias.as_ref().map_or(0, |b| b.dims()[0]);
        println!(
            "  {:<8} {:>12} {:>8} {:>9}",
            format!("dense_{i}"),
            format!("({n_in}, {n_out})"),
            format!("({bias})"),
            thousands(layer.num_params())
        );
    }
    let y = model.forward(Tensor::<2>::zeros([4, 100], &device));
    println!(
        "  total parameters of the built module: {}; forward [4, 100] -> {:?}\n",
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
