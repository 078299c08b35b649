//! AVX-512 versions of the fused block's element-wise kernels, written with intrinsics: its
//! runs (25 or 169 values per plane for MNIST) are shorter than the 64-value loops the
//! compiler makes of the portable code, which then spends its time in scalar remainders.
//! Here every run is 16-lane vectors with a masked last one. Same results as the portable
//! versions in `fused` (the bias sums may differ in the last bit: another order of addition).
//! Called only where [`super::simd::level`] is `Avx512`.

use std::arch::x86_64::*;

use super::fused::{ColsMut, Routing};

/// The first `min(n, 16)` lanes of a vector.
#[inline(always)]
pub(super) fn first_lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// The lanes of a vector that hold elements `i..min(i + 16, n)`.
#[inline(always)]
fn lanes(i: usize, n: usize) -> __mmask16 {
    first_lanes(n - i)
}

/// `pool_relu` of `fused`: pools each plane of `z` (`O` rows `zstride` apart, `D·Q` values
/// each) into `yi` (`[O, Q]`), the winners' candidates into `ii` unless empty, then ReLU.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn pool_relu(
    z: &[f32],
    zstride: usize,
    q: usize,
    d: usize,
    relu: bool,
    yi: &mut [f32],
    ii: &mut [u32],
) {
    let o = yi.len() / q.max(1);
    assert!(o == 0 || (o - 1) * zstride + d * q <= z.len());
    assert!(ii.is_empty() || ii.len() == yi.len());
    let zero = _mm512_setzero_ps();
    for oc in 0..o {
        let zp = &z[oc * zstride..][..d * q];
        let yp = &mut yi[oc * q..(oc + 1) * q];
        let mut i = 0;
        while i < q {
            let k = lanes(i, q);
            // SAFETY: masked loads and stores touch only lanes in `k`, inside the slices.
            unsafe {
                let mut m = _mm512_maskz_loadu_ps(k, zp.as_ptr().add(i));
                let mut at = _mm512_setzero_si512();
                for c in 1..d {
                    let v = _mm512_maskz_loadu_ps(k, zp.as_ptr().add(c * q + i));
                    // `beats(m, v)`: larger, or NaN over a number
                    let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, m);
                    let nan_over_number = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v)
                        & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(m, m);
                    let take = gt | nan_over_number;
                    m = _mm512_mask_blend_ps(take, m, v);
                    at = _mm512_mask_blend_epi32(take, at, _mm512_set1_epi32(c as i32));
                }
                if relu {
                    // burn's ReLU: NaN stays NaN, everything not above 0 becomes +0
                    let keep = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, zero)
                        | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(m, m);
                    m = _mm512_maskz_mov_ps(keep, m);
                }
                _mm512_mask_storeu_ps(yp.as_mut_ptr().add(i), k, m);
                if !ii.is_empty() {
                    let ip = ii[oc * q..(oc + 1) * q].as_mut_ptr();
                    _mm512_mask_storeu_epi32(ip.add(i).cast(), k, at);
                }
            }
            i += 16;
        }
    }
}

/// `route` of `fused`: one image's convolution-output gradient in the pooled order (the rows
/// of `dst`), with each plane's sum added to `gb`.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn route(src: Routing, q: usize, d: usize, dst: ColsMut, gb: &mut [f32]) {
    let Routing { g, idx, y } = src;
    let ColsMut {
        data: dst,
        stride,
        col0,
    } = dst;
    let o = gb.len();
    assert!(g.len() >= o * q && idx.len() >= o * q && (y.is_empty() || y.len() >= o * q));
    let zero = _mm512_setzero_ps();
    for (oc, gbo) in gb.iter_mut().enumerate() {
        let (gp, ip) = (&g[oc * q..(oc + 1) * q], &idx[oc * q..(oc + 1) * q]);
        let row = &mut dst[oc * stride + col0..][..d * q];
        let mut sum = _mm512_setzero_ps();
        let mut i = 0;
        while i < q {
            let k = lanes(i, q);
            // SAFETY: masked loads and stores touch only lanes in `k`, inside the slices.
            unsafe {
                let gv = _mm512_maskz_loadu_ps(k, gp.as_ptr().add(i));
                let iv = _mm512_maskz_loadu_epi32(k, ip.as_ptr().add(i).cast());
                let mut live = k;
                if !y.is_empty() {
                    // burn's relu_backward: the gradient passes where the output is > 0 or NaN
                    let yv = _mm512_maskz_loadu_ps(k, y[oc * q..].as_ptr().add(i));
                    live &= _mm512_cmp_ps_mask::<_CMP_GT_OQ>(yv, zero)
                        | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(yv, yv);
                }
                sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(live, gv));
                for c in 0..d {
                    let won = live & _mm512_cmpeq_epi32_mask(iv, _mm512_set1_epi32(c as i32));
                    let out = _mm512_maskz_mov_ps(won, gv);
                    _mm512_mask_storeu_ps(row.as_mut_ptr().add(c * q + i), k, out);
                }
            }
            i += 16;
        }
        *gbo += _mm512_reduce_add_ps(sum);
    }
}

/// `dst[c·dst_plane + i] = src[i·stride + c]` for `c < planes`, `i < p`: channels-last values
/// into channels-first planes, 16 positions of one channel per gather, stored contiguously.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn gather_strided(
    src: &[f32],
    stride: usize,
    p: usize,
    planes: usize,
    dst: &mut [f32],
    dst_plane: usize,
) {
    if p == 0 || planes == 0 {
        return;
    }
    assert!((p - 1) * stride + planes <= src.len());
    assert!((planes - 1) * dst_plane + p <= dst.len() && stride * 16 < i32::MAX as usize);
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_mullo_epi32(lane, _mm512_set1_epi32(stride as i32));
    for c in 0..planes {
        let mut i = 0;
        while i < p {
            let k = lanes(i, p);
            // SAFETY: the lanes in `k` read positions `i..min(i + 16, p)` of channel `c` and
            // write the same run of plane `c`, inside the slices (asserted above).
            unsafe {
                let base = src.as_ptr().add(i * stride + c);
                let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), k, step, base.cast());
                _mm512_mask_storeu_ps(dst.as_mut_ptr().add(c * dst_plane + i), k, v);
            }
            i += 16;
        }
    }
}
