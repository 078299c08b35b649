//! Pooling, 1D and 2D, max and average: the output-length formula
//! `floor((L + 2P − K) / S) + 1` filled in with the numbers, the windows worked by hand, then
//! netcalc's layers. Pooling has no parameters and keeps the number of channels.
//!
//! `cargo run --release --example pooling`

use netcalc::burn::module::Module;
use netcalc::burn::tensor::Tensor;
use netcalc::{Pool1dConfig, Pool2dConfig, PoolKind, select_device, window_output_len};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

/// `floor((L + 2P − K) / S) + 1 = …` with the numbers in.
fn formula(l: usize, k: usize, s: usize, p: usize) -> anyhow::Result<String> {
    let out = window_output_len(l, k, s, p)?;
    Ok(format!(
        "floor(({l} + 2·{p} − {k}) / {s}) + 1 = floor({} / {s}) + 1 = {out}",
        l + 2 * p - k
    ))
}

fn main() -> anyhow::Result<()> {
    let (backend, device) = select_device(None)?;
    let signal = [1.0f32, 3.0, 2.0, 5.0, 4.0, 0.0];
    println!("1D pooling of x = {signal:?} (L = 6)\n");
    println!(
        "Window K = 3, stride S = 1, no padding: {}",
        formula(6, 3, 1, 0)?
    );
    println!("  windows (1,3,2) (3,2,5) (2,5,4) (5,4,0)");
    println!("  by hand: max 3 5 5 5; average 2, 3.333, 3.667, 3");
    let x = Tensor::<1>::from_floats(signal, &device).reshape([1, 1, 6]);
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let pool = Pool1dConfig::new(kind, 3).with_stride(1).init(&device)?;
        println!(
            "  netcalc ({backend}) {kind:?}: {:.3?}",
            values(pool.forward(x.clone()))
        );
    }
    println!(
        "\nWindow K = 3, stride S = 2, padding P = 1: {}",
        formula(6, 3, 2, 1)?
    );
    println!("  padded (pad 1 3 2 5 4 0 pad): windows (pad,1,3) (3,2,5) (5,4,0)");
    println!(
        "  by hand: max 3 5 5 (padding counts as −∞); average 4/3 10/3 9/3 (as 0, in the divisor)"
    );
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let pool = Pool1dConfig::new(kind, 3)
            .with_stride(2)
            .with_padding(1)
            .init(&device)?;
        println!(
            "  netcalc ({backend}) {kind:?}: {:.3?}",
            values(pool.forward(x.clone()))
        );
    }

    println!("\n2D pooling of a 4×4 image with a 2×2 window and stride 2:");
    println!("  each side: {}", formula(4, 2, 2, 0)?);
    let image = [
        [1.0f32, 2.0, 5.0, 6.0],
        [3.0, 4.0, 7.0, 8.0],
        [9.0, 10.0, 13.0, 14.0],
        [11.0, 12.0, 15.0, 16.0],
    ];
    for row in image {
        println!("    {row:?}");
    }
    println!("  by hand: quadrants {{1,2,3,4}} {{5,6,7,8}} {{9,10,11,12}} {{13,14,15,16}}");
    println!("           max 4 8 12 16; average 2.5 6.5 10.5 14.5");
    let x = Tensor::<2>::from_floats(image, &device).reshape([1, 1, 4, 4]);
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let pool = Pool2dConfig::new(kind, [2, 2]).init(&device)?;
        let y = pool.forward(x.clone());
        println!(
            "  netcalc ({backend}) {kind:?}: {:?} {:?}",
            y.dims(),
            values(y)
        );
    }

    println!("\nMNIST's feature maps: 32 channels of 26×26 through 2×2 max pooling");
    println!("  each side: {}", formula(26, 2, 2, 0)?);
    let pool = Pool2dConfig::new(PoolKind::Max, [2, 2]).init(&device)?;
    let y = pool.forward(Tensor::<4>::ones([1, 32, 26, 26], &device));
    println!(
        "  netcalc ({backend}): [1, 32, 26, 26] -> {:?}, {} parameters, channels kept",
        y.dims(),
        pool.num_params()
    );
    Ok(())
}
