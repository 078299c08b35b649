//! Values and gradients of the kernels against burn's own ops, on every CPU backend compiled in.

use super::cpu::with_parallel;
use super::{
    Conv2dBlockSpec, Conv2dSpec, Pool2dSpec, conv_fast_path, conv2d, conv2d_block,
    conv2d_block_traced, pool_fast_path, pool2d, tiles,
};
use crate::functional::activation::Activation;
use crate::functional::pool::PoolKind;
use crate::testing::{assert_close, cpu_devices, values};
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

/// The kernels' description of burn's `Conv2d` (explicit or no padding).
fn spec(conv: &Conv2d) -> Conv2dSpec {
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => unreachable!("the tests give explicit padding"),
    };
    Conv2dSpec {
        weight: conv.weight.val(),
        bias: conv.bias.as_ref().map(|b| b.val()),
        options: ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups),
    }
}

/// A max-pooling window.
fn max(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Pool2dSpec {
    Pool2dSpec {
        kind: PoolKind::Max,
        kernel,
        stride,
        padding,
    }
}

/// Convolution → max pooling (`pool`) → ReLU if `relu`, as a block.
fn block(conv: &Conv2d, pool: Pool2dSpec, relu: bool) -> Conv2dBlockSpec {
    Conv2dBlockSpec {
        conv: spec(conv),
        activation: if relu {
            Activation::Relu
        } else {
            Activation::Identity
        },
        pool: Some(pool),
    }
}

fn wave(len: usize, phase: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as f32) * 0.37 + phase).sin())
        .collect()
}

/// The reference is burn's own `Conv2d` (convolution forward, its transposed-convolution
/// input gradient and convolution weight gradient) on the same device and weights.
#[test]
fn values_and_gradients_equal_burns_convolution() {
    for (_, device) in cpu_devices() {
        for all_parallel in [false, true] {
            with_parallel(all_parallel, || {
                convolution_against_burns(device.clone().autodiff())
            });
        }
    }
}

fn convolution_against_burns(ad: Device) {
    // (batch, c_in, c_out, h, w, kernel, stride, padding, input needs a gradient)
    let cases = [
        (37, 1, 8, 12, 12, [3, 3], [1, 1], [0, 0], false), // first layer: images
        (5, 3, 4, 9, 8, [3, 3], [1, 1], [1, 1], true),
        (4, 2, 3, 9, 7, [3, 2], [2, 2], [1, 0], true),
        (3, 4, 6, 10, 11, [5, 5], [2, 3], [2, 1], true),
        (2, 2, 2, 4, 4, [4, 4], [1, 1], [0, 0], true), // 1×1 output
        // stride 1 (the direct convolution on AVX-512): 32 + 16 channel blocks, one image,
        // odd rows and a last tile of 1 column; 17 channels; a 1×1 kernel
        (1, 3, 40, 9, 13, [3, 3], [1, 1], [1, 1], true),
        (2, 5, 17, 7, 8, [3, 2], [1, 1], [0, 1], true),
        (3, 4, 32, 5, 7, [1, 1], [1, 1], [0, 0], true),
    ];
    for (i, (n, c, o, h, w, k, s, p, x_grad)) in cases.into_iter().enumerate() {
        // fixed weights: a run is repeatable, whatever the device's RNG did before
        ad.seed(1000 + i as u64);
        let conv = Conv2dConfig::new([c, o], k)
            .with_stride(s)
            .with_padding(PaddingConfig2d::Explicit(p[0], p[1], p[0], p[1]))
            .init(&ad);
        let x = Tensor::<1>::from_floats(wave(n * c * h * w, 0.1).as_slice(), &ad)
            .reshape([n, c, h, w]);
        let x = if x_grad { x.require_grad() } else { x };
        assert!(
            conv_fast_path(&spec(&conv), &x).is_some(),
            "the kernels apply"
        );
        let ours = conv2d(x.clone(), &spec(&conv));
        let burns = conv.forward(x.clone());
        let case = format!("case {:?}", (n, c, o, h, w, k, s, p));
        // inference (no autodiff): the same values
        let (conv_i, x_i) = (conv.valid(), x.clone().inner());
        assert_close(
            &values(conv2d(x_i.clone(), &spec(&conv_i))),
            &values(conv_i.forward(x_i)),
            1e-5,
        );
        assert_eq!(ours.dims(), burns.dims(), "{case}");
        assert_close(&values(ours.clone()), &values(burns.clone()), 1e-5);
        same_gradients(&conv, &x, ours, burns, 1.3, x_grad, &case);
    }
}

/// The gradients of `ours` and `burns` (the same function of `conv` and `x`, computed two
/// ways) with respect to the weight, the bias and, if `x_grad`, the input agree within 1e-4;
/// without `x_grad` the input gets none. The upstream gradient is a wave (phase `phase`), not
/// uniform, so that every position's weight matters.
fn same_gradients(
    conv: &Conv2d,
    x: &Tensor<4>,
    ours: Tensor<4>,
    burns: Tensor<4>,
    phase: f32,
    x_grad: bool,
    case: &str,
) {
    let r = Tensor::<1>::from_floats(
        wave(ours.dims().iter().product(), phase).as_slice(),
        &ours.device(),
    )
    .reshape(ours.dims());
    let ga = (ours * r.clone()).sum().backward();
    let gb = (burns * r).sum().backward();
    assert_close(
        &values(conv.weight.grad(&ga).unwrap()),
        &values(conv.weight.grad(&gb).unwrap()),
        1e-4,
    );
    let bias = conv.bias.as_ref().unwrap();
    assert_close(
        &values(bias.grad(&ga).unwrap()),
        &values(bias.grad(&gb).unwrap()),
        1e-4,
    );
    if x_grad {
        assert_close(
            &values(x.grad(&ga).unwrap()),
            &values(x.grad(&gb).unwrap()),
            1e-4,
        );
    } else {
        assert!(x.grad(&ga).is_none(), "{case}: images got a gradient");
    }
}

/// The fused block (convolution → tiled max pooling → ReLU in one pass) against burn's own
/// `Conv2d`, `max_pool2d` and `relu` one after the other: values, and the gradients of input,
/// weight and bias.
#[test]
fn fused_block_equals_burns_conv_pool_relu() {
    for (_, device) in cpu_devices() {
        for all_parallel in [false, true] {
            with_parallel(all_parallel, || {
                fused_against_burns(device.clone().autodiff())
            });
        }
    }
}

fn fused_against_burns(ad: Device) {
    use burn::tensor::activation::relu as burn_relu;
    use burn::tensor::module::max_pool2d as burn_max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    // (batch, c_in, c_out, h, w, kernel, stride, padding, pool, relu, input needs a gradient)
    let cases = [
        // the MNIST blocks: images (no input gradient), then 32 -> 64 channels
        (19, 1, 8, 28, 28, 3, 1, 0, [2, 2], true, false),
        (5, 6, 7, 13, 13, 3, 1, 0, [2, 2], true, true),
        // odd outputs drop a row/column of windows; padding; strides; other windows
        (4, 3, 5, 10, 9, 3, 1, 1, [2, 2], true, true),
        (3, 2, 4, 12, 11, 3, 2, 1, [3, 2], true, true),
        (2, 4, 3, 9, 9, 2, 1, 0, [3, 3], false, true),
        (3, 2, 2, 6, 7, 5, 1, 2, [2, 3], false, true),
        // the direct forward (AVX-512): the MNIST second layer's sizes (two 32-channel blocks,
        // 5 windows a row: tiles of 3 and 2), one image (its window rows split over the
        // threads) with 32 + 16 channels and padding, 33 channels with a 5×5 kernel, 1×1
        (3, 32, 64, 13, 13, 3, 1, 0, [2, 2], true, true),
        (1, 3, 40, 12, 15, 3, 1, 1, [2, 2], true, true),
        (2, 2, 33, 11, 17, 5, 1, 2, [2, 2], false, true),
        (2, 3, 16, 8, 9, 1, 1, 0, [2, 2], true, true),
        // the backward through the winners (AVX-512, 16 channels or more): 16 channels, a 2×2
        // kernel, padding and 3×2 windows; 20 channels (a part-filled vector) with stride 2;
        // 40 channels (32 + 16) with a 1×1 kernel
        (2, 16, 5, 9, 10, 2, 1, 1, [3, 2], false, true),
        (2, 20, 7, 11, 9, 3, 2, 1, [2, 2], true, true),
        (3, 40, 6, 6, 7, 1, 1, 0, [2, 2], true, true),
    ];
    let mut cut = 0;
    for (i, (n, c, o, h, w, k, s, p, pool, relu, x_grad)) in cases.into_iter().enumerate() {
        let case = format!("case {:?}", (n, c, o, h, w, k, s, p, pool, relu));
        // fixed weights: with random ones, two positions of a pooling window now and then
        // differ by less than the float error, and the two computations pick different winners
        ad.seed(2000 + i as u64);
        let conv = Conv2dConfig::new([c, o], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init(&ad);
        let x = Tensor::<1>::from_floats(wave(n * c * h * w, 0.7).as_slice(), &ad)
            .reshape([n, c, h, w]);
        let x = if x_grad { x.require_grad() } else { x };
        let conv_out = [(h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1];
        assert!(
            conv_fast_path(&spec(&conv), &x).is_some(),
            "{case}: the kernels apply"
        );
        let window = max(pool, pool, [0, 0]);
        assert!(tiles(conv_out, &window), "{case}: the windows tile");
        let ours = conv2d_block(x.clone(), &block(&conv, window, relu));
        let reference = |conv: &Conv2d, x: Tensor<4>| {
            let y = burn_max_pool2d(conv.forward(x), MaxPoolOptions::new(pool).with_stride(pool));
            if relu { burn_relu(y) } else { y }
        };
        let burns = reference(&conv, x.clone());
        assert_eq!(ours.dims(), burns.dims(), "{case}");
        assert_close(&values(ours.clone()), &values(burns.clone()), 1e-5);
        if relu {
            let v = values(ours.clone());
            cut += v.iter().filter(|&&e| e == 0.0).count();
            assert!(
                v.iter().any(|&e| e > 0.0),
                "{case}: ReLU lets some windows through"
            );
        }
        // inference (no autodiff): the same values, and the same bits as the unfused
        // convolution, pooling and ReLU of this module
        let (conv_i, x_i) = (conv.valid(), x.clone().inner());
        let fused_i = values(conv2d_block(x_i.clone(), &block(&conv_i, window, relu)));
        let z = pool2d(conv2d(x_i.clone(), &spec(&conv_i)), &window);
        let unfused_i = values(if relu { burn_relu(z) } else { z });
        assert_eq!(fused_i, unfused_i, "{case}: fused and unfused bits");
        // the traced block (the steps one by one, keeping the maps before pooling): the same
        // bits, and the maps of the convolution after the activation
        let traced = conv2d_block_traced(x_i.clone(), &block(&conv_i, window, relu), true);
        assert_eq!(
            values(traced.output),
            fused_i,
            "{case}: traced and fused bits"
        );
        let z = conv2d(x_i, &spec(&conv_i));
        let activated = values(if relu { burn_relu(z) } else { z });
        assert_eq!(traced.activated.map(values), Some(activated), "{case}");
        same_gradients(&conv, &x, ours, burns, 2.9, x_grad, &case);
    }
    assert!(cut > 0, "ReLU zeroed no window: its mask went untested");
}

/// NaN and ties through the fused block, as PyTorch's max pooling decides them (its CPU kernel
/// takes a value when `val > max || isnan(val)`): a NaN input makes its window NaN, before and
/// after ReLU, and takes the window's gradient; in a window of equal values the first one
/// wins, so it alone gets the gradient. burn's own `max_pool2d` lets a number beat a NaN, so
/// it is the reference only for the windows without one.
#[test]
fn fused_block_nan_and_ties_as_pytorch() {
    for (_, device) in cpu_devices() {
        for all_parallel in [false, true] {
            with_parallel(all_parallel, || {
                fused_nan_and_ties(device.clone().autodiff())
            });
        }
    }
}

fn fused_nan_and_ties(ad: Device) {
    use burn::tensor::activation::relu as burn_relu;
    use burn::tensor::module::max_pool2d as burn_max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    // 1×1 convolution of weight 1 and bias 0 into 3 channels: each pools the input
    let mut conv = Conv2dConfig::new([1, 3], [1, 1]).init(&ad);
    conv.weight = conv.weight.map(|w| w.ones_like());
    conv.bias = conv.bias.map(|b| b.map(|b| b.zeros_like()));
    #[rustfmt::skip]
    let xs = [
        1.0, 1.0,      2.0, 0.5,
        1.0, 1.0,      f32::NAN, 3.0,
        -1.0, -2.0,    0.0, 0.0,
        -3.0, -1.0,    0.0, 0.0,
    ];
    let x = Tensor::<1>::from_floats(xs.as_slice(), &ad)
        .reshape([1, 1, 4, 4])
        .require_grad();
    let window = max([2, 2], [2, 2], [0, 0]);
    let ours = conv2d_block(x.clone(), &block(&conv, window, true));
    let burns = burn_relu(burn_max_pool2d(
        conv.forward(x.clone()),
        MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
    ));
    let (o, b) = (values(ours.clone()), values(burns.clone()));
    // each filter's windows: 1, NaN, 0 (ReLU of −1), 0
    for f in 0..3 {
        assert_eq!(o[f * 4], 1.0, "{o:?}");
        assert!(o[f * 4 + 1].is_nan(), "{o:?}");
        assert_eq!((o[f * 4 + 2], o[f * 4 + 3]), (0.0, 0.0), "{o:?}");
        for i in [0, 2, 3] {
            assert_eq!(o[f * 4 + i], b[f * 4 + i], "burn's window {i}: {b:?}");
        }
    }
    let r = Tensor::<1>::from_floats([1.0f32; 12].as_slice(), &ad).reshape([1, 3, 2, 2]);
    let go = values(x.grad(&(ours * r.clone()).sum().backward()).unwrap());
    let gb = values(x.grad(&(burns * r).sum().backward()).unwrap());
    // the first of four equal values takes the gradient of all 3 filters, the NaN its
    // window's; ReLU stops the −1 window's and the zeros'
    #[rustfmt::skip]
    let expected = vec![
        3.0, 0.0,   0.0, 0.0,
        0.0, 0.0,   3.0, 0.0,
        0.0, 0.0,   0.0, 0.0,
        0.0, 0.0,   0.0, 0.0,
    ];
    assert_eq!(go, expected);
    // burn routes the other windows' gradients the same way (the NaN window's goes to the
    // NaN on one of its CPU backends, to the 3 on the other)
    for i in (0..16).filter(|i| ![6, 7].contains(i)) {
        assert_eq!(gb[i], expected[i], "burn's gradient at {i}: {gb:?}");
    }
    assert_eq!(gb[6] + gb[7], 3.0, "{gb:?}");
}

/// Where the fused pass does not apply (overlapping or padded windows), the block is the
/// three ops one after the other, with the same shapes.
#[test]
fn fused_block_falls_back_for_windows_that_do_not_tile() {
    let ad = cpu_devices()[0].1.clone().autodiff();
    let conv = Conv2dConfig::new([1, 2], [3, 3]).init(&ad);
    let x = Tensor::<1>::from_floats(wave(64, 0.2).as_slice(), &ad).reshape([1, 1, 8, 8]);
    for (kernel, stride, padding) in [([3, 3], [1, 1], [0, 0]), ([2, 2], [2, 2], [1, 1])] {
        let window = max(kernel, stride, padding);
        assert!(!tiles([6, 6], &window));
        let ours = conv2d_block(x.clone(), &block(&conv, window, true));
        let z = pool2d(conv2d(x.clone(), &spec(&conv)), &window);
        let reference = burn::tensor::activation::relu(z);
        assert_eq!(ours.dims(), reference.dims());
        assert_eq!(values(ours), values(reference));
    }
}

/// The reference is burn's `max_pool2d` (flex's kernel and autodiff backward).
#[test]
fn max_pool_equals_burns_in_values_and_gradients() {
    for (_, device) in cpu_devices() {
        for all_parallel in [false, true] {
            with_parallel(all_parallel, || {
                max_pool_against_burns(device.clone().autodiff())
            });
        }
    }
}

fn max_pool_against_burns(ad: Device) {
    use burn::tensor::module::max_pool2d as burn_max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    // (batch, channels, h, w, kernel): odd sizes drop the last row/column; 3×3 and 2×3
    // windows take the general path, 2×2 the specialised one.
    for (n, c, h, w, k) in [
        (3, 20, 26, 26, [2, 2]),
        (2, 3, 11, 7, [2, 2]),
        (2, 3, 9, 10, [3, 3]),
        (1, 2, 7, 9, [2, 3]),
    ] {
        let x = Tensor::<1>::from_floats(wave(n * c * h * w, 0.4).as_slice(), &ad)
            .reshape([n, c, h, w])
            .require_grad();
        assert!(pool_fast_path(&x, &max(k, k, [0, 0])), "the kernels apply");
        let ours = pool2d(x.clone(), &max(k, k, [0, 0]));
        let burns = burn_max_pool2d(x.clone(), MaxPoolOptions::new(k).with_stride(k));
        assert_eq!(ours.dims(), burns.dims());
        assert_close(&values(ours.clone()), &values(burns.clone()), 0.0);
        let r = Tensor::<1>::from_floats(wave(ours.dims().iter().product(), 2.1).as_slice(), &ad)
            .reshape(ours.dims());
        let ga = (ours * r.clone()).sum().backward();
        let gb = (burns * r).sum().backward();
        assert_close(
            &values(x.grad(&ga).unwrap()),
            &values(x.grad(&gb).unwrap()),
            0.0,
        );
        // without autodiff: the same values
        let xi = x.clone().inner();
        let inner = pool2d(xi.clone(), &max(k, k, [0, 0]));
        let burn_inner = burn_max_pool2d(xi, MaxPoolOptions::new(k).with_stride(k));
        assert_close(&values(inner), &values(burn_inner), 0.0);
    }
}

/// Worked by hand: ties go to the first position in row-major order (as PyTorch and burn
/// do), a NaN anywhere in a window makes that window NaN (as PyTorch does), and the
/// gradient goes only to the winning position.
#[test]
fn max_pool_ties_nan_and_gradient_routing_by_hand() {
    for (_, device) in cpu_devices() {
        for all_parallel in [false, true] {
            with_parallel(all_parallel, || max_pool_by_hand(device.clone().autodiff()));
        }
    }
}

fn max_pool_by_hand(ad: Device) {
    #[rustfmt::skip]
    let x = Tensor::<1>::from_floats([
        1.0, 5.0,   2.0, 2.0,
        5.0, 0.0,   2.0, 2.0,
        -1.0, -3.0,  f32::NAN, 9.0,
        -2.0, -1.0,  0.0, 1.0,
    ], &ad)
    .reshape([1, 1, 4, 4])
    .require_grad();
    assert!(pool_fast_path(&x, &max([2, 2], [2, 2], [0, 0])));
    let y = pool2d(x.clone(), &max([2, 2], [2, 2], [0, 0]));
    let v = values(y.clone());
    assert_eq!(&v[..3], &[5.0, 2.0, -1.0]);
    assert!(v[3].is_nan());
    let g = (y * Tensor::<1>::from_floats([10.0, 20.0, 30.0, 40.0], &ad).reshape([1, 1, 2, 2]))
        .sum()
        .backward();
    #[rustfmt::skip]
    assert_eq!(values(x.grad(&g).unwrap()), vec![
        0.0, 10.0,  20.0, 0.0,
        0.0, 0.0,   0.0, 0.0,
        30.0, 0.0,  40.0, 0.0,
        0.0, 0.0,   0.0, 0.0,
    ]);
}

#[test]
fn falls_back_where_it_does_not_apply() {
    let ad = cpu_devices()[0].1.clone().autodiff();
    let grouped = Conv2dConfig::new([2, 2], [3, 3]).with_groups(2).init(&ad);
    let x = Tensor::<1>::from_floats(wave(50, 0.3).as_slice(), &ad).reshape([1, 2, 5, 5]);
    assert!(conv_fast_path(&spec(&grouped), &x).is_none());
    assert_close(
        &values(conv2d(x.clone(), &spec(&grouped))),
        &values(grouped.forward(x)),
        0.0,
    );
    // asymmetric padding (top 1, left 0, bottom 2, right 1): burn's own convolution
    let uneven = Conv2dConfig::new([1, 2], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 0, 2, 1))
        .init(&ad);
    let x = Tensor::<1>::from_floats(wave(25, 0.3).as_slice(), &ad).reshape([1, 1, 5, 5]);
    assert!(conv_fast_path(&spec(&uneven), &x).is_none());
    let y = conv2d(x.clone(), &spec(&uneven));
    // (5 + 1 + 2 − 3) + 1 = 6 rows, (5 + 0 + 1 − 3) + 1 = 4 columns
    assert_eq!(y.dims(), [1, 2, 6, 4]);
    assert_close(&values(y), &values(uneven.forward(x.clone())), 0.0);
    // without a bias: burn's own convolution too
    let no_bias = Conv2dConfig::new([1, 2], [3, 3]).with_bias(false).init(&ad);
    assert!(conv_fast_path(&spec(&no_bias), &x).is_none());
    assert_close(
        &values(conv2d(x.clone(), &spec(&no_bias))),
        &values(no_bias.forward(x.clone())),
        0.0,
    );
    // Overlapping and padded pooling windows, and average pooling: burn's ops, same shapes
    // as the formula.
    assert!(!pool_fast_path(&x, &max([3, 3], [1, 1], [0, 0])));
    assert!(!pool_fast_path(&x, &max([2, 2], [2, 2], [1, 1])));
    let avg = Pool2dSpec {
        kind: PoolKind::Avg,
        ..max([2, 2], [2, 2], [0, 0])
    };
    assert!(!pool_fast_path(&x, &avg));
    assert_eq!(
        pool2d(x.clone(), &max([3, 3], [1, 1], [0, 0])).dims(),
        [1, 1, 3, 3]
    );
    assert_eq!(
        pool2d(x.clone(), &max([2, 2], [2, 2], [1, 1])).dims(),
        [1, 1, 3, 3]
    );
    assert_eq!(pool2d(x, &avg).dims(), [1, 1, 2, 2]);
}

/// The fast dropout: burn's `Dropout` semantics (identity in inference, kept values scaled by
/// `1 / (1 − p)`, the rest 0, gradient through the same mask), the kept fraction within 6σ
/// of `1 − p`, and masks repeatable from the device seed.
#[test]
fn dropout_keeps_one_minus_p_scales_and_repeats_with_the_seed() {
    use super::dropout;
    for (_, device) in cpu_devices() {
        let ad = device.autodiff();
        let n = 100_000;
        let x = Tensor::<1>::from_floats(wave(n, 0.3).as_slice(), &ad)
            .reshape([100, 1000])
            .require_grad();
        for p in [0.25, 0.5] {
            ad.seed(7);
            let y = dropout(x.clone(), p, true);
            let (xs, ys) = (values(x.clone()), values(y.clone()));
            let scale = (1.0 / (1.0 - p)) as f32;
            let mut kept = 0usize;
            for (a, b) in xs.iter().zip(&ys) {
                if *b == 0.0 && *a != 0.0 {
                    continue;
                }
                assert_eq!(*b, a * scale, "kept values are scaled by 1 / (1 − p)");
                kept += 1;
            }
            let expect = n as f64 * (1.0 - p);
            let sigma = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (kept as f64 - expect).abs() < 6.0 * sigma,
                "p = {p}: kept {kept} of {n}, expected {expect:.0} ± {:.0}",
                6.0 * sigma
            );
            // the gradient goes through the same mask
            let g = y.clone().sum().backward();
            let gx = values(x.grad(&g).unwrap());
            for (gv, yv) in gx.iter().zip(&ys) {
                assert_eq!(*gv, if *yv == 0.0 { 0.0 } else { scale });
            }
            // the same seed, the same mask; another seed, another
            ad.seed(7);
            assert_eq!(values(dropout(x.clone(), p, true)), ys);
            ad.seed(8);
            assert_ne!(values(dropout(x.clone(), p, true)), ys);
            // inference (no autodiff, or not training), and p = 0: the identity
            assert_eq!(values(dropout(x.clone().inner(), p, true)), xs);
            assert_eq!(values(dropout(x.clone(), p, false)), xs);
            assert_eq!(values(dropout(x.clone(), 0.0, true)), xs);
        }
    }
}

/// The mask by hand: probability 0 keeps everything at scale 1; the hash spreads consecutive
/// counters, so a run of 64 values is not all kept or all dropped at p = 0.5.
#[test]
fn dropout_mask_by_hand() {
    use super::dropout_mask;
    assert_eq!(dropout_mask(5, 0.0, 42), vec![1.0; 5]);
    let m = dropout_mask(64, 0.5, 1);
    assert!(m.iter().all(|&v| v == 0.0 || v == 2.0));
    let kept = m.iter().filter(|&&v| v == 2.0).count();
    assert!((16..=48).contains(&kept), "kept {kept} of 64");
    assert_ne!(dropout_mask(64, 0.5, 1), dropout_mask(64, 0.5, 2));
}

/// The dense layer against burn's `Linear`: values, and the gradients of input, weight and
/// bias, for a small layer, a larger one, a single row and a single output — each with the
/// kernels' own choice of threads and with every product split over the threads; a layer
/// without bias is burn's own.
#[test]
fn dense_equals_burns_linear() {
    for (_, device) in cpu_devices() {
        for all_parallel in [false, true] {
            with_parallel(all_parallel, || {
                dense_against_burns(device.clone().autodiff())
            });
        }
    }
}

fn dense_against_burns(ad: Device) {
    use super::dense;
    use burn::nn::LinearConfig;
    // around the vector length: 16 columns, and 50 (the MLP's first layer). On AVX-512, with
    // 256 inputs or more, one or two outputs past a multiple of 16 are dot products in tiles
    // of 4 rows: 50 = 48 + 2 and 17 = 16 + 1, with rows left over (9, 13) and inputs that are
    // not whole vectors (300); 23 outputs stay with gemm.
    for (n, i, o) in [
        (5, 7, 3),
        (70, 130, 120),
        (1, 9, 4),
        (6, 5, 1),
        (3, 33, 16),
        (9, 40, 50),
        (9, 300, 50),
        (13, 256, 17),
        (4, 300, 23),
    ] {
        let case = format!("case {:?}", (n, i, o));
        let layer = LinearConfig::new(i, o).init(&ad);
        let x = Tensor::<1>::from_floats(wave(n * i, 0.4).as_slice(), &ad)
            .reshape([n, i])
            .require_grad();
        let ours = dense(x.clone(), &layer);
        let burns = layer.forward(x.clone());
        assert_eq!(ours.dims(), [n, o], "{case}");
        assert_close(&values(ours.clone()), &values(burns.clone()), 1e-5);
        let r = Tensor::<1>::from_floats(wave(n * o, 2.1).as_slice(), &ad).reshape([n, o]);
        let ga = (ours * r.clone()).sum().backward();
        let gb = (burns * r).sum().backward();
        assert_close(
            &values(x.grad(&ga).unwrap()),
            &values(x.grad(&gb).unwrap()),
            1e-4,
        );
        assert_close(
            &values(layer.weight.grad(&ga).unwrap()),
            &values(layer.weight.grad(&gb).unwrap()),
            1e-4,
        );
        let bias = layer.bias.as_ref().unwrap();
        assert_close(
            &values(bias.grad(&ga).unwrap()),
            &values(bias.grad(&gb).unwrap()),
            1e-4,
        );
        // inference: the same values
        let (layer_i, x_i) = (layer.valid(), x.clone().inner());
        assert_close(
            &values(dense(x_i.clone(), &layer_i)),
            &values(layer_i.forward(x_i)),
            1e-5,
        );
    }
    let no_bias = LinearConfig::new(4, 2).with_bias(false).init(&ad);
    let x = Tensor::<1>::from_floats(wave(12, 0.1).as_slice(), &ad).reshape([3, 4]);
    assert_eq!(
        values(dense(x.clone(), &no_bias)),
        values(no_bias.forward(x))
    );
}
