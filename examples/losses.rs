//! The losses: binary cross-entropy, categorical cross-entropy and mean squared error, worked
//! by hand and then computed by `netcalc::functional::loss` (burn's loss modules).
//!
//! `cargo run --release --example losses`

use netcalc::burn::tensor::{Int, Tensor};
use netcalc::functional::loss::{
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, mse,
};
use netcalc::select_device;

fn scalar(t: Tensor<1>) -> f32 {
    t.into_scalar::<f32>()
}

fn main() -> anyhow::Result<()> {
    let (backend, device) = select_device(None)?;

    println!("Binary cross-entropy, −mean(y ln p + (1 − y) ln(1 − p)):");
    println!("  p = [0.9, 0.2, 0.6], y = [1, 0, 1]");
    let by_hand = -(0.9f32.ln() + 0.8f32.ln() + 0.6f32.ln()) / 3.0;
    println!(
        "  by hand: −(ln 0.9 + ln 0.8 + ln 0.6) / 3 = ({:.6} + {:.6} + {:.6}) / 3 = {by_hand:.6}",
        -0.9f32.ln(),
        -0.8f32.ln(),
        -0.6f32.ln()
    );
    let p = Tensor::<1>::from_floats([0.9, 0.2, 0.6], &device);
    let y = Tensor::<1, Int>::from_ints([1, 0, 1], &device);
    println!(
        "  netcalc ({backend}): {:.6}",
        scalar(binary_cross_entropy(p, y.clone())?)
    );
    let z = Tensor::<1>::from_floats([2.0, -1.0, 0.0], &device);
    println!(
        "  from logits z = [2, −1, 0] (the same as on sigmoid(z)): {:.6}",
        scalar(binary_cross_entropy_with_logits(z, y)?)
    );

    println!("\nCategorical cross-entropy, −mean(ln softmax(z)[y]):");
    println!("  logits [[1, 2, 3], [1, 1, 1]], classes [2, 0]");
    let lse = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
    let row0 = lse - 3.0;
    let row1 = 3f32.ln();
    println!("  by hand: row 0: ln(e + e² + e³) − 3 = {lse:.6} − 3 = {row0:.6}");
    println!("           row 1: uniform over 3 classes, ln 3 = {row1:.6}");
    println!("           mean = {:.6}", (row0 + row1) / 2.0);
    let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], &device);
    let classes = Tensor::<1, Int>::from_ints([2, 0], &device);
    println!(
        "  netcalc ({backend}): {:.6}",
        scalar(cross_entropy(logits, classes)?)
    );

    println!("\nMean squared error, mean((ŷ − y)²):");
    println!("  ŷ = [1, 2, 3, 4], y = [1.5, 2, 2, 6]");
    println!("  by hand: ((−0.5)² + 0² + 1² + (−2)²) / 4 = (0.25 + 0 + 1 + 4) / 4 = 1.3125");
    let pred = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &device);
    let target = Tensor::<1>::from_floats([1.5, 2.0, 2.0, 6.0], &device);
    println!("  netcalc ({backend}): {:.4}", scalar(mse(pred, target)?));
    Ok(())
}
