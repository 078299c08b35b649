//! The fused block's pooling, on its convolution output in the pooled column order (see
//! `fused`): the maximum of each window's candidates, its winner and ReLU ([`pool_relu`]), and
//! the output gradient routed back to the winners through ReLU ([`route`]).
//!
//! Each is the portable code compiled per instruction set (`multiversion!`) and, on AVX-512, a
//! version written with intrinsics: the runs (25 or 169 values per plane for MNIST) are shorter
//! than the 64-value loops the compiler makes of the portable code, which then spends its time
//! in scalar remainders; there every run is 16-lane vectors with a masked last one. Same
//! results (the bias sums may differ in the last bit: another order of addition).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::avx512::lanes;
use super::element::{beats, copy_short, relu_passes};
#[cfg(target_arch = "x86_64")]
use super::simd::Avx512;
use super::views::{Cols, ColsMut, Routing};

super::simd::multiversion! {
    avx512 = pool_relu_avx512;
    /// Pools each plane of one image's convolution output `z` (`O` rows, `D·Q` values each in
    /// the pooled order) into `yi` (`[O, Q]`): the first maximum of each window wins, NaN
    /// wins; its candidate `d` goes to `ii` unless that is empty. Then ReLU if `relu`.
    pub(super) fn pool_relu(
        z: Cols,
        q: usize,
        d: usize,
        relu: bool,
        yi: &mut [f32],
        ii: &mut [u32],
    ) {
        let Cols { data: z, stride: zstride, col0 } = z;
        let z = &z[col0..];
        for (oc, yp) in yi.chunks_mut(q).enumerate() {
            let zp = &z[oc * zstride..][..d * q];
            copy_short(yp, &zp[..q]);
            if ii.is_empty() {
                for k in 1..d {
                    for (m, &v) in yp.iter_mut().zip(&zp[k * q..(k + 1) * q]) {
                        *m = if beats(*m, v) { v } else { *m };
                    }
                }
            } else {
                let ip = &mut ii[oc * q..(oc + 1) * q];
                ip.fill(0);
                for k in 1..d {
                    for ((m, i), &v) in yp.iter_mut().zip(ip.iter_mut()).zip(&zp[k * q..(k + 1) * q]) {
                        let c = beats(*m, v);
                        *m = if c { v } else { *m };
                        *i = if c { k as u32 } else { *i };
                    }
                }
            }
            if relu {
                for v in yp.iter_mut() {
                    // burn's ReLU: NaN stays NaN, everything not above 0 becomes +0
                    *v = if relu_passes(*v) { *v } else { 0.0 };
                }
            }
        }
    }
}

super::simd::multiversion! {
    avx512 = route_avx512;
    /// One image's convolution-output gradient in the pooled order: for each of the `O`
    /// planes, candidate `d` of window `i` gets `g[i]` if it won (`idx[i] == d`) and ReLU
    /// passed it (`y` is the output, empty without ReLU), else 0. Written into the rows of
    /// `dst`; each plane's sum is added to `gb`.
    pub(super) fn route(src: Routing, q: usize, d: usize, dst: ColsMut, gb: &mut [f32]) {
        let Routing { g, idx, y } = src;
        let ColsMut { data: dst, stride, col0 } = dst;
        for (oc, gbo) in gb.iter_mut().enumerate() {
            let (gp, ip) = (&g[oc * q..(oc + 1) * q], &idx[oc * q..(oc + 1) * q]);
            let row = &mut dst[oc * stride + col0..][..d * q];
            let mut sum = 0.0f32;
            for (k, out) in row.chunks_exact_mut(q).enumerate() {
                if y.is_empty() {
                    for ((o, &gv), &i) in out.iter_mut().zip(gp).zip(ip) {
                        *o = if i == k as u32 { gv } else { 0.0 };
                    }
                } else {
                    let yp = &y[oc * q..(oc + 1) * q];
                    for (((o, &gv), &i), &yv) in out.iter_mut().zip(gp).zip(ip).zip(yp) {
                        *o = if i == k as u32 && relu_passes(yv) { gv } else { 0.0 };
                    }
                }
                sum += out.iter().sum::<f32>();
            }
            *gbo += sum;
        }
    }
}

/// [`pool_relu`] on AVX-512: pools each plane of `z` (`O` rows, `D·Q` values each) into `yi`
/// (`[O, Q]`), the winners' candidates into `ii` unless empty, then ReLU.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn pool_relu_avx512(
    _: Avx512,
    z: Cols,
    q: usize,
    d: usize,
    relu: bool,
    yi: &mut [f32],
    ii: &mut [u32],
) {
    let Cols {
        data: z,
        stride: zstride,
        col0,
    } = z;
    let z = &z[col0..];
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

/// [`route`] on AVX-512: one image's convolution-output gradient in the pooled order (the rows
/// of `dst`), with each plane's sum added to `gb`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn route_avx512(_: Avx512, src: Routing, q: usize, d: usize, dst: ColsMut, gb: &mut [f32]) {
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
