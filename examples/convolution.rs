//! Convolution: the output size `floor((L + 2P − K) / S) + 1` and the parameter count
//! `K·K·C_in·C_out + C_out` filled in with the numbers, a 2×2 filter worked by hand, then
//! netcalc's convolution blocks.
//!
//! `cargo run --release --example convolution`

use netcalc::burn::module::{Module, Param};
use netcalc::burn::tensor::Tensor;
use netcalc::nn::conv::{conv1d_params, conv2d_params};
use netcalc::{Activation, Conv1dBlockConfig, Conv2dBlockConfig, select_device};

fn main() -> anyhow::Result<()> {
    let (backend, device) = select_device(None)?;
    println!("A 2×2 filter [[1, 0], [0, −1]] with bias 0.5 over a 3×3 image:");
    let image = [[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 10.0]];
    for row in image {
        println!("    {row:?}");
    }
    println!("  output side: floor((3 + 2·0 − 2) / 1) + 1 = 2");
    println!("  by hand: out[i][j] = x[i][j] − x[i+1][j+1] + 0.5");
    println!(
        "           1 − 5 + 0.5 = −3.5, 2 − 6 + 0.5 = −3.5, 4 − 8 + 0.5 = −3.5, 5 − 10 + 0.5 = −4.5"
    );
    let mut block = Conv2dBlockConfig::new(1, 1, 2)
        .with_activation(Activation::Identity)
        .init(&device)?;
    block.conv.weight = Param::from_tensor(
        Tensor::<1>::from_floats([1.0, 0.0, 0.0, -1.0], &device).reshape([1, 1, 2, 2]),
    );
    block.conv.bias = Some(Param::from_tensor(Tensor::from_floats([0.5], &device)));
    let x = Tensor::<2>::from_floats(image, &device).reshape([1, 1, 3, 3]);
    let y = block.forward(x);
    println!(
        "  netcalc ({backend}): {:?} {:?}",
        y.dims(),
        y.into_data().try_to_vec::<f32>().unwrap_or_default()
    );

    println!("\nThe MNIST convnet's two convolutions (3×3, stride 1, no padding):");
    for (c_in, c_out, side) in [(1usize, 32usize, 28usize), (32, 64, 13)] {
        let out = netcalc::window_output_len(side, 3, 1, 0)?;
        println!(
            "  {c_in:>2} -> {c_out} channels on {side}×{side}: side floor(({side} + 2·0 − 3) / 1) + 1 = {out}; \
             parameters 3·3·{c_in}·{c_out} + {c_out} = {}",
            conv2d_params(3, c_in, c_out)
        );
        let cfg = Conv2dBlockConfig::new(c_in, c_out, 3);
        let block = cfg.init(&device)?;
        let y = block.forward(Tensor::<4>::zeros([1, c_in, side, side], &device));
        println!(
            "      netcalc ({backend}): [1, {c_in}, {side}, {side}] -> {:?}, {} parameters",
            y.dims(),
            block.num_params()
        );
    }
    println!("\nStride 2 and padding 1 on 9×9: side floor((9 + 2·1 − 3) / 2) + 1 = 5");
    let cfg = Conv2dBlockConfig::new(2, 3, 3)
        .with_stride(2)
        .with_padding(1);
    println!("  netcalc: {:?}", cfg.output_shape("conv", [2, 9, 9])?);

    println!("\nA 1D convolution: 8 filters of length 5 over 4 channels of length 20");
    println!(
        "  length floor((20 + 2·0 − 5) / 1) + 1 = 16; parameters 5·4·8 + 8 = {}",
        conv1d_params(5, 4, 8)
    );
    let block = Conv1dBlockConfig::new(4, 8, 5).init(&device)?;
    let y = block.forward(Tensor::<3>::zeros([1, 4, 20], &device));
    println!(
        "  netcalc ({backend}): [1, 4, 20] -> {:?}, {} parameters",
        y.dims(),
        block.num_params()
    );
    Ok(())
}
