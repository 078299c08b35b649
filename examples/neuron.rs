//! The artificial neuron, and tensors of order 0 to 4.
//!
//! A neuron computes `y = f(w · x + b)`: a weighted sum of its inputs, plus a bias, through an
//! activation. Worked by hand for three inputs, then computed by netcalc's [`Neuron`].
//!
//! `cargo run --release --example neuron`

use netcalc::burn::tensor::Tensor;
use netcalc::{Activation, NeuronConfig, select_device};

fn main() -> anyhow::Result<()> {
    let (backend, device) = select_device(None)?;
    let (w, b, x) = ([0.5f32, -1.0, 2.0], 0.1f32, [1.0f32, 2.0, 3.0]);

    println!("The neuron y = f(w · x + b), with w = {w:?}, b = {b}, x = {x:?}\n");
    let z: f32 = w.iter().zip(&x).map(|(w, x)| w * x).sum::<f32>() + b;
    println!("By hand:");
    println!("  z = 0.5·1 + (−1)·2 + 2·3 + 0.1 = 0.5 − 2 + 6 + 0.1 = {z:.1}");
    println!(
        "  sigmoid(z) = 1 / (1 + e^−{z:.1}) = {:.6}",
        1.0 / (1.0 + (-z).exp())
    );
    println!("  relu(z)    = max(0, {z:.1}) = {:.1}", z.max(0.0));

    println!("\nnetcalc ({backend}):");
    for activation in [Activation::Sigmoid, Activation::Relu] {
        let neuron = NeuronConfig::new(3)
            .with_activation(activation)
            .init(&device)?
            .with_weights(&w, b)?;
        let z = neuron.weighted_sum(Tensor::from_floats([x], &device));
        let y = neuron.forward_one(Tensor::from_floats(x, &device));
        println!(
            "  {:<7} z = {:.1}, y = {:.6}  ({} parameters: {} weights + 1 bias)",
            activation.name(),
            z.into_scalar::<f32>(),
            y.into_scalar::<f32>(),
            neuron.num_params(),
            w.len()
        );
    }

    println!("\nTensors of order 0 to 4, as netcalc's layers take and give them:");
    let neuron = NeuronConfig::new(3)
        .with_activation(Activation::Sigmoid)
        .init(&device)?
        .with_weights(&w, b)?;
    let example = Tensor::<1>::from_floats(x, &device);
    let batch = Tensor::<2>::from_floats([x, [0.0, 0.0, 0.0]], &device);
    let rows = [
        ("0", "scalar", "the bias, one output", vec![1]),
        ("1", "vector", "one example x", example.dims().to_vec()),
        (
            "2",
            "matrix",
            "a batch of 2 examples",
            batch.dims().to_vec(),
        ),
        (
            "3",
            "order-3 tensor",
            "a batch of 1D signals [N, C, L]",
            vec![2, 1, 6],
        ),
        (
            "4",
            "order-4 tensor",
            "MNIST images [N, C, H, W]",
            vec![64, 1, 28, 28],
        ),
    ];
    for (order, name, what, shape) in rows {
        println!("  order {order}: {name:<15} {what:<34} shape {shape:?}");
    }
    let out = neuron.forward(batch);
    println!(
        "  the neuron maps the batch (order 2, {:?}) to one output per example (order 1, {:?}): {:.6?}",
        [2, 3],
        out.dims(),
        out.into_data().try_to_vec::<f32>().unwrap_or_default()
    );
    Ok(())
}
