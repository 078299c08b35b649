//! Property tests (proptest) over random sizes and values:
//! - the pooling and convolution output-shape formulas equal the shapes burn produces, and
//!   every rejected window is an error, never a panic;
//! - softmax rows sum to 1 and stay finite for logits in ±1e4 (log-softmax finite, ≤ 0);
//! - `load_digit` never panics on random bytes or on images of random sizes.
//!
//! The tensor properties run on the CPU backends compiled in (wgpu would compile a shader per
//! random shape; its parity is tested in `tests/backends.rs`).

use burn::tensor::module::{avg_pool1d, avg_pool2d, conv1d, conv2d, max_pool1d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use netcalc::burn;
use netcalc::functional::prob::{log_softmax, softmax};
use netcalc::{
    Activation, Conv1dBlockConfig, Conv2dBlockConfig, Pool1dConfig, Pool2dConfig, PoolKind,
    window_output_len,
};
use proptest::prelude::*;

fn cpu_devices() -> Vec<Device> {
    let cpu: Vec<Device> = netcalc::testing::cpu_devices()
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    if cpu.is_empty() {
        vec![netcalc::testing::test_device()]
    } else {
        cpu
    }
}

fn kind() -> impl Strategy<Value = PoolKind> {
    prop_oneof![Just(PoolKind::Max), Just(PoolKind::Avg)]
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// `window_output_len` is `floor((L + 2P − K) / S) + 1` where the window fits, an error
    /// otherwise, for any sizes (overflow included).
    #[test]
    fn window_formula(len in 0usize..64, kernel in 0usize..70, stride in 0usize..9,
                      padding in prop_oneof![0usize..8, Just(usize::MAX / 2), Just(usize::MAX)]) {
        let got = window_output_len(len, kernel, stride, padding);
        let padded = padding.checked_mul(2).and_then(|p| p.checked_add(len));
        match padded {
            Some(padded) if kernel >= 1 && stride >= 1 && kernel <= padded => {
                prop_assert_eq!(got.unwrap(), (padded - kernel) / stride + 1);
            }
            _ => prop_assert!(got.is_err()),
        }
    }

    /// 2D pooling: the layer's `output_hw`, its forward, and burn's own pooling op agree on
    /// the shape; a window that does not fit, a zero kernel or stride, or padding above half
    /// the kernel is an error from `init`/`try_forward`.
    #[test]
    fn pool2d_shapes(kind in kind(), h in 1usize..20, w in 1usize..20, kh in 0usize..8,
                     kw in 0usize..8, sh in 0usize..5, sw in 0usize..5, ph in 0usize..4,
                     pw in 0usize..4, default_stride in any::<bool>()) {
        let mut cfg = Pool2dConfig::new(kind, [kh, kw]).with_padding([ph, pw]);
        if !default_stride {
            cfg = cfg.with_stride([sh, sw]);
        }
        let (sh, sw) = if default_stride { (kh, kw) } else { (sh, sw) };
        let valid_window = kh >= 1 && kw >= 1 && sh >= 1 && sw >= 1 && 2 * ph <= kh && 2 * pw <= kw;
        let pool = match cfg.init(&netcalc::testing::test_device()) {
            Ok(pool) => pool,
            Err(e) => {
                prop_assert!(!valid_window, "rejected a valid window: {e}");
                prop_assert!(e.to_string().contains("pool2d"), "{e}");
                return Ok(());
            }
        };
        prop_assert!(valid_window);
        let expected = window_output_len(h, kh, sh, ph).and_then(|ho| {
            window_output_len(w, kw, sw, pw).map(|wo| [ho, wo])
        });
        for device in cpu_devices() {
            let x = random([2, 3, h, w], &device);
            match &expected {
                Ok([ho, wo]) => {
                    prop_assert_eq!(pool.output_hw([h, w]).unwrap(), [*ho, *wo]);
                    let ours = pool.try_forward(x.clone()).unwrap();
                    prop_assert_eq!(ours.dims(), [2, 3, *ho, *wo]);
                    let burns = match kind {
                        PoolKind::Max => max_pool2d(x, MaxPoolOptions::new([kh, kw])
                            .with_stride([sh, sw]).with_padding([ph, pw])),
                        PoolKind::Avg => avg_pool2d(x, AvgPoolOptions::new([kh, kw])
                            .with_stride([sh, sw]).with_padding([ph, pw])),
                    };
                    prop_assert_eq!(burns.dims(), [2, 3, *ho, *wo], "burn's own op");
                }
                Err(_) => {
                    prop_assert!(pool.output_hw([h, w]).is_err());
                    prop_assert!(pool.try_forward(x).is_err());
                }
            }
        }
    }

    /// 1D pooling, the same properties over `[N, C, L]`.
    #[test]
    fn pool1d_shapes(kind in kind(), len in 1usize..30, k in 0usize..9, s in 0usize..5,
                     p in 0usize..5) {
        let cfg = Pool1dConfig::new(kind, k).with_stride(s).with_padding(p);
        let valid_window = k >= 1 && s >= 1 && 2 * p <= k;
        let pool = match cfg.init(&netcalc::testing::test_device()) {
            Ok(pool) => pool,
            Err(e) => {
                prop_assert!(!valid_window, "rejected a valid window: {e}");
                return Ok(());
            }
        };
        prop_assert!(valid_window);
        for device in cpu_devices() {
            let x = random([2, 3, len], &device);
            match window_output_len(len, k, s, p) {
                Ok(out) => {
                    prop_assert_eq!(pool.output_len(len).unwrap(), out);
                    prop_assert_eq!(pool.try_forward(x.clone()).unwrap().dims(), [2, 3, out]);
                    let burns = match kind {
                        PoolKind::Max => max_pool1d(x, MaxPoolOptions::new([k])
                            .with_stride([s]).with_padding([p])),
                        PoolKind::Avg => avg_pool1d(x, AvgPoolOptions::new([k])
                            .with_stride([s]).with_padding([p])),
                    };
                    prop_assert_eq!(burns.dims(), [2, 3, out], "burn's own op");
                }
                Err(_) => {
                    prop_assert!(pool.output_len(len).is_err());
                    prop_assert!(pool.try_forward(x).is_err());
                }
            }
        }
    }

    /// 2D convolution blocks: `conv_output_shape` equals the shape of the block's forward (netcalc's
    /// CPU kernels where they apply) and of burn's `conv2d`; its parameter count equals the
    /// weights and biases the block holds. Rejected sizes are errors from `conv_output_shape`
    /// and `init`.
    #[test]
    fn conv2d_shapes(c_in in 1usize..4, filters in 0usize..5, k in 0usize..6, s in 0usize..4,
                     p in 0usize..4, h in 1usize..14, w in 1usize..14) {
        let cfg = Conv2dBlockConfig::new(c_in, filters, k)
            .with_stride(s)
            .with_padding(p)
            .with_activation(Activation::Identity);
        let expected = cfg.conv_output_shape("conv", [c_in, h, w]);
        let valid = filters >= 1 && k >= 1 && s >= 1;
        for device in cpu_devices() {
            let block = cfg.init(&device);
            prop_assert_eq!(block.is_ok(), valid);
            let Ok(block) = block else {
                prop_assert!(expected.is_err());
                continue;
            };
            let weights = block.conv.weight.val().dims().iter().product::<usize>();
            prop_assert_eq!(weights + filters, cfg.num_params());
            let Ok([co, ho, wo]) = expected else {
                prop_assert!(k > h + 2 * p || k > w + 2 * p, "{:?}", expected);
                continue;
            };
            let x = random([2, c_in, h, w], &device);
            prop_assert_eq!(block.forward(x.clone()).dims(), [2, co, ho, wo]);
            let burns = conv2d(x, block.conv.weight.val(), block.conv.bias.as_ref().map(|b| b.val()),
                               ConvOptions::new([s, s], [p, p], [1, 1], 1));
            prop_assert_eq!(burns.dims(), [2, co, ho, wo], "burn's own op");
        }
    }

    /// 1D convolution blocks, the same over `[N, C, L]`.
    #[test]
    fn conv1d_shapes(c_in in 1usize..4, filters in 1usize..5, k in 1usize..7, s in 1usize..4,
                     p in 0usize..4, len in 1usize..20) {
        let cfg = Conv1dBlockConfig::new(c_in, filters, k)
            .with_stride(s)
            .with_padding(p)
            .with_activation(Activation::Identity);
        let expected = cfg.output_shape(len);
        for device in cpu_devices() {
            let block = cfg.init(&device).unwrap();
            match expected {
                Ok([co, out]) => {
                    let x = random([2, c_in, len], &device);
                    prop_assert_eq!(block.forward(x.clone()).dims(), [2, co, out]);
                    let burns = conv1d(x, block.conv.weight.val(),
                                       block.conv.bias.as_ref().map(|b| b.val()),
                                       ConvOptions::new([s], [p], [1], 1));
                    prop_assert_eq!(burns.dims(), [2, co, out], "burn's own op");
                }
                Err(ref e) => {
                    prop_assert!(k > len + 2 * p, "{e}");
                    prop_assert!(e.to_string().contains("conv1d"), "{e}");
                }
            }
        }
    }

    /// Softmax of logits anywhere in ±1e4: every probability finite and in [0, 1], each row
    /// summing to 1; log-softmax finite and ≤ 0, its exponential the softmax.
    #[test]
    fn softmax_rows_sum_to_one(rows in 1usize..6, cols in 1usize..24, seed in any::<u64>(),
                               scale in prop_oneof![Just(1.0f32), Just(100.0), Just(1e4)]) {
        let mut state = seed | 1;
        let logits: Vec<f32> = (0..rows * cols)
            .map(|_| {
                // xorshift: values uniform in [-scale, scale]
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * scale
            })
            .collect();
        for device in cpu_devices() {
            let z = Tensor::<2>::from_data(TensorData::new(logits.clone(), [rows, cols]), &device);
            let p = netcalc::testing::values(softmax(z.clone(), 1));
            let lp = netcalc::testing::values(log_softmax(z, 1));
            for r in 0..rows {
                let row = &p[r * cols..(r + 1) * cols];
                prop_assert!(row.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{row:?}");
                let sum: f32 = row.iter().sum();
                prop_assert!((sum - 1.0).abs() < 1e-5, "row {r} sums to {sum}");
                let lrow = &lp[r * cols..(r + 1) * cols];
                prop_assert!(lrow.iter().all(|v| v.is_finite() && *v <= 0.0), "{lrow:?}");
                for (a, b) in row.iter().zip(lrow) {
                    prop_assert!((a - b.exp()).abs() < 1e-5);
                }
            }
        }
    }
}

#[cfg(feature = "app")]
mod digits {
    use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
    use netcalc::app::predict::{decode_digit, load_digit};
    use proptest::prelude::*;
    use std::io::Cursor;
    use std::path::Path;

    fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]

        /// Random bytes, from a file and from memory: an error or a 28×28 digit, never a panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000),
                                    png_header in any::<bool>()) {
            let mut bytes = bytes;
            if png_header {
                // make the PNG decoder, not the format guesser, see the garbage
                bytes.splice(0..0, *b"\x89PNG\r\n\x1a\n");
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("random.png");
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(d) = load_digit(&path) {
                prop_assert_eq!(d.len(), 784);
            }
            if let Ok(d) = decode_digit(&bytes, Path::new("random")) {
                prop_assert_eq!(d.len(), 784);
            }
        }

        /// Real images of random sizes (1×1 to 300×300, grey or colour, PNG or JPEG, random
        /// pixels): always a 28×28 digit. The same image with bytes flipped or cut short: an
        /// error or a digit, never a panic.
        #[test]
        fn random_images_give_a_digit(w in 1u32..300, h in 1u32..300, seed in any::<u32>(),
                                      colour in any::<bool>(), jpeg in any::<bool>(),
                                      flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                                      cut in any::<usize>()) {
            let px = move |x: u32, y: u32, c: u32| {
                (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed ^ c.wrapping_mul(97)) as u8
            };
            let img = if colour {
                DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
                    image::Rgb([px(x, y, 0), px(x, y, 1), px(x, y, 2)])
                }))
            } else {
                DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| image::Luma([px(x, y, 0)])))
            };
            let bytes = encode(img, if jpeg { ImageFormat::Jpeg } else { ImageFormat::Png });
            let digit = decode_digit(&bytes, Path::new("img"));
            prop_assert!(digit.is_ok(), "{:?}", digit.err());
            prop_assert_eq!(digit.unwrap().len(), 784);

            let mut broken = bytes.clone();
            for (at, v) in flips {
                let i = at % broken.len();
                broken[i] ^= v;
            }
            broken.truncate(cut % (broken.len() + 1));
            if let Ok(d) = decode_digit(&broken, Path::new("broken")) {
                prop_assert_eq!(d.len(), 784);
            }
        }
    }
}
