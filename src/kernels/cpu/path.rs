//! Which kernels compute an operation, decided in one place: [`choose`] looks at the CPU (an
//! [`Avx512`] token or none) and at the sizes, and returns a [`Path`]; the entry points of
//! [`super`] match on it and run what it names. The kernels themselves choose nothing (but the
//! instruction set of their own loops: `multiversion!`).
//!
//! The rules, on AVX-512 (without it every operation takes [`Path::Gemm`]):
//! - a convolution alone with stride 1: the direct convolution;
//! - the fused block's forward with stride 1: the direct convolution with 2×2 pooling in its
//!   registers, or for other windows the direct convolution and then the tiled pooling;
//! - the fused block's backward: through the winners only, where the windows have at most 16
//!   candidates and the image has a layout for its vectors ([`ImageLayout::of`]);
//! - a dense layer with one or two outputs past a multiple of 16 (more than 16) and at least
//!   256 inputs: gemm for the multiple of 16, dot products for the rest.
//!
//! Everything else is im2col + gemm (convolutions and the fused block) or gemm (dense layers).

use super::geometry::Geometry;
#[cfg(target_arch = "x86_64")]
use super::simd::Avx512;

/// An operation whose kernels [`choose`] picks.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Op<'a> {
    /// A convolution alone.
    Conv(&'a Geometry),
    /// The fused block's forward (convolution, max pooling in `pool` windows that tile its
    /// output, ReLU or not).
    BlockForward(&'a Geometry, [usize; 2]),
    /// The fused block's backward.
    BlockBackward(&'a Geometry, [usize; 2]),
    /// A dense layer of `inputs` inputs and `outputs` outputs.
    Dense { inputs: usize, outputs: usize },
}

/// How an operation is computed: what [`choose`] returns. The AVX-512 paths carry the token
/// that lets their kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// A convolution alone as the direct convolution (`direct::conv`).
    #[cfg(target_arch = "x86_64")]
    DirectConv(Avx512),
    /// The fused block's forward as the direct convolution with the 2×2 pooling, bias and ReLU
    /// in its registers (`direct::forward`).
    #[cfg(target_arch = "x86_64")]
    DirectBlock(Avx512),
    /// The fused block's forward as the direct convolution, then the tiled pooling (windows
    /// other than 2×2): the unfused steps' arithmetic, so the same bits.
    #[cfg(target_arch = "x86_64")]
    DirectConvThenPool(Avx512),
    /// The fused block's backward through the winners only (`winners::backward`), with the
    /// image in `layout`.
    #[cfg(target_arch = "x86_64")]
    Winners(Avx512, ImageLayout),
    /// A dense layer's first `gemm_outputs` outputs by gemm, the rest by AVX-512 dot products
    /// (`dense_remainder`).
    #[cfg(target_arch = "x86_64")]
    GemmAndDots { avx512: Avx512, gemm_outputs: usize },
    /// The path of every CPU: im2col and matrix products in `gemm` for a convolution
    /// (`im2col`) or the fused block (`fused`), matrix products alone for a dense layer.
    Gemm,
}

/// How an image is laid out for the vectors of the backward through the winners.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageLayout {
    /// Channels last, `[HP, WP, C']`: vectors over the input channels, for 16 channels or
    /// more and 1×1, 2×2 or 3×3 filters (all taps' accumulators fit the registers).
    ChannelsLast,
    /// Unfolded, `[HO·WO, K']`: each output position's `C·KH·KW` inputs (`K'` rounded up to
    /// 16) as one or a few vectors, for the first layers (few channels), up to 64 taps.
    Patches,
}

/// Candidates per window, at most, for the backward through the winners (the buckets of
/// `winners::window_input_grad`).
#[cfg(target_arch = "x86_64")]
pub(crate) const WINNERS_MAX_CANDIDATES: usize = 16;

/// Filter taps of one unfolded position, at most ([`ImageLayout::Patches`]).
#[cfg(target_arch = "x86_64")]
const MAX_PATCH: usize = 64;

#[cfg(target_arch = "x86_64")]
impl ImageLayout {
    /// The layout for this convolution's filters, if there is one.
    pub(crate) fn of(geo: &Geometry) -> Option<Self> {
        if geo.c >= 16 && matches!((geo.kh, geo.kw), (1, 1) | (2, 2) | (3, 3)) {
            Some(Self::ChannelsLast)
        } else if geo.ckk() > 0 && geo.ckk() <= MAX_PATCH {
            Some(Self::Patches)
        } else {
            None
        }
    }
}

/// How `op` is computed on this CPU (as `NETCALC_SIMD` caps it).
pub(crate) fn choose(op: Op) -> Path {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx512) = Avx512::try_new() {
        return with_avx512(op, avx512);
    }
    let _ = op;
    Path::Gemm
}

/// [`choose`] on a CPU with AVX-512.
#[cfg(target_arch = "x86_64")]
fn with_avx512(op: Op, avx512: Avx512) -> Path {
    match op {
        Op::Conv(geo) if direct_conv_fits(geo) => Path::DirectConv(avx512),
        Op::BlockForward(geo, pool) if direct_block_fits(geo, pool) => Path::DirectBlock(avx512),
        Op::BlockForward(geo, _) if direct_conv_fits(geo) => Path::DirectConvThenPool(avx512),
        Op::BlockBackward(geo, pool) => match winners_layout(geo, pool) {
            Some(layout) => Path::Winners(avx512, layout),
            None => Path::Gemm,
        },
        Op::Dense { inputs, outputs } => match dot_outputs(inputs, outputs) {
            0 => Path::Gemm,
            rest => Path::GemmAndDots {
                avx512,
                gemm_outputs: outputs - rest,
            },
        },
        _ => Path::Gemm,
    }
}

/// Whether the direct convolution computes this convolution: stride 1, an output, filters and
/// channels.
#[cfg(target_arch = "x86_64")]
pub(crate) fn direct_conv_fits(geo: &Geometry) -> bool {
    geo.sh == 1 && geo.sw == 1 && geo.ho >= 1 && geo.wo >= 1 && geo.o > 0 && geo.c > 0
}

/// Whether the direct convolution computes this fused block with the pooling in its
/// registers: stride 1 and 2×2 windows.
#[cfg(target_arch = "x86_64")]
pub(crate) fn direct_block_fits(geo: &Geometry, pool: [usize; 2]) -> bool {
    pool == [2, 2]
        && geo.sh == 1
        && geo.sw == 1
        && geo.ho >= 2
        && geo.wo >= 2
        && geo.o > 0
        && geo.c > 0
}

/// The image layout of the backward through the winners for this block, if it takes it:
/// windows of at most 16 candidates, and filters it has a layout for.
#[cfg(target_arch = "x86_64")]
pub(crate) fn winners_layout(geo: &Geometry, pool: [usize; 2]) -> Option<ImageLayout> {
    let fits = pool[0] >= 1
        && pool[1] >= 1
        && pool[0] * pool[1] <= WINNERS_MAX_CANDIDATES
        && geo.ho >= pool[0]
        && geo.wo >= pool[1]
        && geo.o > 0;
    if fits { ImageLayout::of(geo) } else { None }
}

/// How many of a dense layer's `o` outputs (of `i` inputs each) the dot products take on
/// AVX-512, gemm the others. gemm pads the outputs to a multiple of 16 there, so one or two
/// outputs past it cost gemm 16: the dot products take those, where the inputs are long enough
/// to pay for the sums across the lanes (see docs/performance.md, Why the kernels choose what
/// they choose). 0 otherwise.
#[cfg(target_arch = "x86_64")]
fn dot_outputs(i: usize, o: usize) -> usize {
    let rest = o % 16;
    if o > 16 && (1..=2).contains(&rest) && i >= 256 {
        rest
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::{Op, Path, choose};
    use crate::kernels::cpu::geometry::Geometry;
    use crate::kernels::cpu::simd::{Level, level};

    /// `N` images of `C×H×W` through `O` filters of `K×K`, stride `s`, padding 1.
    fn geo(c: usize, hw: usize, o: usize, k: usize, s: usize) -> Geometry {
        Geometry::new([2, c, hw, hw], [o, c, k, k], [s, s], [1, 1])
    }

    /// Without the AVX-512 token (`NETCALC_SIMD=avx2` or `baseline`, a CPU without AVX-512,
    /// another architecture) every operation takes the gemm path; with it, the rules of the
    /// module docs.
    #[test]
    fn the_cap_and_the_sizes_choose_the_path() {
        let stride1 = geo(16, 12, 32, 3, 1);
        let stride2 = geo(16, 12, 32, 3, 2);
        let wide = geo(32, 12, 8, 5, 1); // 5×5 over 32 channels: no layout for the winners
        let ops = [
            Op::Conv(&stride1),
            Op::Conv(&stride2),
            Op::BlockForward(&stride1, [2, 2]),
            Op::BlockForward(&stride1, [3, 3]),
            Op::BlockForward(&stride2, [2, 2]),
            Op::BlockBackward(&stride1, [2, 2]),
            Op::BlockBackward(&stride1, [5, 4]),
            Op::BlockBackward(&wide, [2, 2]),
            Op::Dense {
                inputs: 784,
                outputs: 50,
            },
            Op::Dense {
                inputs: 784,
                outputs: 20,
            },
            Op::Dense {
                inputs: 100,
                outputs: 50,
            },
        ];
        let paths = ops.map(choose);
        if level() < Level::Avx512 {
            assert!(paths.iter().all(|&p| p == Path::Gemm), "{paths:?}");
        } else {
            #[cfg(target_arch = "x86_64")]
            {
                use super::ImageLayout;
                use crate::kernels::cpu::simd::Avx512;
                let avx512 = Avx512::try_new().expect("the level is AVX-512");
                let want = [
                    Path::DirectConv(avx512),
                    Path::Gemm,
                    Path::DirectBlock(avx512),
                    Path::DirectConvThenPool(avx512),
                    Path::Gemm,
                    Path::Winners(avx512, ImageLayout::ChannelsLast),
                    Path::Gemm,
                    Path::Gemm,
                    Path::GemmAndDots {
                        avx512,
                        gemm_outputs: 48,
                    },
                    Path::Gemm,
                    Path::Gemm,
                ];
                assert_eq!(paths, want);
            }
        }
    }

    /// The first layer (one channel, 5×5 filters: 25 taps) goes through the winners unfolded.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn few_channels_take_the_unfolded_layout() {
        use super::{ImageLayout, winners_layout};
        let first = geo(1, 28, 32, 5, 1);
        assert_eq!(winners_layout(&first, [2, 2]), Some(ImageLayout::Patches));
        let deep = geo(3, 28, 32, 5, 1); // 75 taps
        assert_eq!(winners_layout(&deep, [2, 2]), None);
    }
}
