//! Odds, logit, sigmoid (the logit's inverse) and softmax, worked by hand and then computed by
//! `netcalc::functional::prob`.
//!
//! For a probability `p`: `odds = p / (1 − p)`, `logit = ln(odds)`, and `sigmoid(logit(p)) = p`.
//! A classifier's raw scores are logits; softmax turns a vector of them into probabilities.
//!
//! `cargo run --release --example probabilities`

use netcalc::burn::tensor::Tensor;
use netcalc::functional::prob::{logit, odds, sigmoid, softmax};
use netcalc::select_device;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let (backend, device) = select_device(None)?;
    let ps = [0.5f32, 0.8, 0.2, 0.9];
    println!("Odds and logit of p = {ps:?}\n");
    println!("By hand:");
    for p in ps {
        let o = p / (1.0 - p);
        println!(
            "  p = {p}: odds = {p} / {:.1} = {o:.4}, logit = ln {o:.4} = {:+.6}",
            1.0 - p,
            o.ln()
        );
    }
    let p = Tensor::<1>::from_floats(ps, &device);
    println!("\nnetcalc ({backend}):");
    println!("  odds(p)           = {:.4?}", values(odds(p.clone())));
    let z = logit(p);
    println!("  logit(p)          = {:.6?}", values(z.clone()));
    println!(
        "  sigmoid(logit(p)) = {:.6?}  (the logit's inverse: p again)",
        values(sigmoid(z))
    );

    let scores = [1.0f32, 2.0, 3.0];
    let e: Vec<f32> = scores.iter().map(|z| z.exp()).collect();
    let sum: f32 = e.iter().sum();
    println!("\nSoftmax of the class scores (logits) {scores:?}\n");
    println!("By hand: e^z / Σ e^z");
    println!(
        "  e^1, e^2, e^3 = {:.6}, {:.6}, {:.6}; sum = {sum:.6}",
        e[0], e[1], e[2]
    );
    println!(
        "  softmax = {:.6}, {:.6}, {:.6}",
        e[0] / sum,
        e[1] / sum,
        e[2] / sum
    );
    let probs = values(softmax(Tensor::<2>::from_floats([scores], &device), 1));
    println!("\nnetcalc ({backend}):");
    println!(
        "  softmax = {probs:.6?}, sum {:.6}",
        probs.iter().sum::<f32>()
    );
    let two = values(softmax(Tensor::<2>::from_floats([[0.3, 1.7]], &device), 1));
    let s = values(sigmoid(Tensor::<1>::from_floats([1.7 - 0.3], &device)));
    println!(
        "  two classes: softmax([0.3, 1.7])[1] = {:.6} = sigmoid(1.7 − 0.3) = {:.6}",
        two[1], s[0]
    );
    Ok(())
}
