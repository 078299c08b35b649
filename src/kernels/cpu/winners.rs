//! The fused block's backward through the pooling winners only, on AVX-512.
//!
//! Max pooling passes each window's gradient to one candidate, its winner: of the
//! convolution's output gradient `dZ`, one value in `PH·PW` can be non-zero (and none where
//! ReLU stopped the window). The dense backward (`fused::backward`) multiplies all of `dZ`
//! anyway. Here only the winners are visited, which for 2×2 windows is a quarter of the
//! multiply-adds, and fewer still where ReLU cut:
//!
//! - weight gradient: `dW[o, ky, kx, c] += s · x[c, wy + ky, wx + kx]` for each window of
//!   filter `o` with gradient `s` and winner at `(wy, wx)`;
//! - input gradient: `dX[c, wy + ky, wx + kx] += s · W[o, c, ky, kx]` for the same windows.
//!
//! Both are vectors, in one of two layouts of the image ([`ImageLayout`], chosen with the
//! path):
//! - *channels last* (16 input channels or more, filters up to 3×3): each image is transposed
//!   into `[HP, WP, C']` (zero-padded, `C'` = `C` rounded up to 16), and the vectors run over
//!   the channels of each tap;
//! - *unfolded* (the first layers: few channels, up to 64 inputs per position): each output
//!   position's `C·KH·KW` inputs are gathered into one row of `[HO·WO, K']` (`K'` rounded up
//!   to 16), and the vectors run over the row.
//!
//! The weight gradient of one filter (all its taps, 32 lanes at a time) stays in registers
//! over the filter's windows. The input gradient is formed per window and candidate: the
//! filters whose winner the candidate is have their weights, times their gradients, summed
//! in registers, then added once to a buffer in the image's layout, which is turned back
//! into `[C, H, W]` per image. The bias gradient is the sum of the windows' gradients.
//!
//! Zero gradients are skipped, so a non-finite input under a window that passed no gradient
//! does not make the weight gradient NaN (`0 · ∞`), where a dense product would.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::avx512::{first_lanes, gather_strided};
use super::geometry::Geometry;
use super::path::{ImageLayout, WINNERS_MAX_CANDIDATES as MAX_CANDIDATES, winners_layout};
use super::scratch;
use super::simd::Avx512;
use super::threads::{image_tasks, sum_partials};
use super::views::{Routing, Saved};

/// Sizes shared by every image of one call. In the channels-last layout a "position" is a
/// pixel of the padded image and a "tap" a filter offset `(ky, kx)` with `C'` channels; in the
/// unfolded layout a position is an output position and there is one tap of `K'` values.
struct Plan {
    layout: ImageLayout,
    hp: usize,
    wp: usize,
    /// Values per position: `C'` or `K'`.
    cpad: usize,
    /// Windows per image.
    q: usize,
    /// Taps, in positions from a window candidate's: `ky·WP + kx` in `(ky, kx)` order, or
    /// `[0]`.
    taps: Vec<usize>,
    /// Position of each window's first candidate, and of candidate `d` from it.
    window_at: Vec<u32>,
    candidate_at: Vec<u32>,
    /// The filters as `[O, taps, cpad]` (zero past `C` or `C·KH·KW`).
    wt: Vec<f32>,
    /// Unfolded layout: each lane's offset `c·HP·WP + ky·WP + kx` in the padded image.
    lanes: Vec<i32>,
}

impl Plan {
    fn new(layout: ImageLayout, geo: &Geometry, pool: [usize; 2], w: &[f32]) -> Self {
        let (hq, wq) = (geo.ho / pool[0], geo.wo / pool[1]);
        let (o, kk, ckk) = (geo.o, geo.kh * geo.kw, geo.ckk());
        let (hp, wp) = (geo.h + 2 * geo.pad_h, geo.w + 2 * geo.pad_w);
        let q = hq * wq;
        // a window's first candidate and candidate d, as (row, column) of the output
        let window = |i: usize| ((i / wq) * pool[0], (i % wq) * pool[1]);
        let candidate = |d: usize| (d / pool[1], d % pool[1]);
        match layout {
            ImageLayout::ChannelsLast => {
                let cpad = geo.c.div_ceil(16) * 16;
                let taps = (0..kk).map(|t| (t / geo.kw) * wp + t % geo.kw).collect();
                let mut wt = vec![0.0f32; o * kk * cpad];
                for oc in 0..o {
                    for c in 0..geo.c {
                        for t in 0..kk {
                            wt[(oc * kk + t) * cpad + c] = w[(oc * geo.c + c) * kk + t];
                        }
                    }
                }
                // in pixels of the padded image: the output position's first tap
                let at = |(oy, ox): (usize, usize)| (oy * geo.sh * wp + ox * geo.sw) as u32;
                Self {
                    layout,
                    hp,
                    wp,
                    cpad,
                    q,
                    taps,
                    window_at: (0..q).map(|i| at(window(i))).collect(),
                    candidate_at: (0..pool[0] * pool[1]).map(|d| at(candidate(d))).collect(),
                    wt,
                    lanes: Vec::new(),
                }
            }
            ImageLayout::Patches => {
                let cpad = ckk.div_ceil(16) * 16;
                let mut wt = vec![0.0f32; o * cpad];
                for oc in 0..o {
                    wt[oc * cpad..oc * cpad + ckk].copy_from_slice(&w[oc * ckk..(oc + 1) * ckk]);
                }
                let mut lanes = vec![0i32; cpad];
                for (t, lane) in lanes.iter_mut().enumerate().take(ckk) {
                    let (c, k) = (t / kk, t % kk);
                    *lane = (c * hp * wp + (k / geo.kw) * wp + k % geo.kw) as i32;
                }
                // in output positions
                let at = |(oy, ox): (usize, usize)| (oy * geo.wo + ox) as u32;
                Self {
                    layout,
                    hp,
                    wp,
                    cpad,
                    q,
                    taps: vec![0],
                    window_at: (0..q).map(|i| at(window(i))).collect(),
                    candidate_at: (0..pool[0] * pool[1]).map(|d| at(candidate(d))).collect(),
                    wt,
                    lanes,
                }
            }
        }
    }

    /// Values of one image in this layout.
    fn image_len(&self, geo: &Geometry) -> usize {
        match self.layout {
            ImageLayout::ChannelsLast => self.hp * self.wp * self.cpad,
            ImageLayout::Patches => geo.ho * geo.wo * self.cpad,
        }
    }
}

/// Gradients of the fused block from its winners, with the image in `layout`: (input
/// gradient if `x_grad`, else empty; weight `[O, C, KH, KW]`; bias `[O]`), as
/// `fused::backward` returns them.
pub(crate) fn backward(
    avx512: Avx512,
    layout: ImageLayout,
    geo: &Geometry,
    pool: [usize; 2],
    saved: Saved,
    x_grad: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(
        winners_layout(geo, pool) == Some(layout),
        "winners::backward: windows and a layout it takes"
    );
    let Saved { x, w, y, idx, g } = saved;
    let (hq, wq) = (geo.ho / pool[0], geo.wo / pool[1]);
    let (o, q) = (geo.o, hq * wq);
    let chw = geo.c * geo.h * geo.w;
    assert!(x.len() >= geo.n * chw && w.len() >= o * geo.ckk());
    assert!(g.len() == geo.n * o * q && idx.len() == g.len());
    assert!(y.is_none_or(|y| y.len() == g.len()));
    let plan = Plan::new(layout, geo, pool, w);
    let per_filter = plan.taps.len() * plan.cpad;
    let mut gx = vec![0.0f32; if x_grad { geo.n * chw } else { 0 }];
    let (per_thread, tasks) = image_tasks(geo.n, chw, &mut gx);
    let image_len = plan.image_len(geo);
    let padded_len = if plan.layout == ImageLayout::Patches && (geo.pad_h > 0 || geo.pad_w > 0) {
        geo.c * plan.hp * plan.wp
    } else {
        0
    };
    let partials: Vec<(Vec<f32>, Vec<f32>)> = tasks
        .into_par_iter()
        .map(|(start, gx_part)| {
            let end = (start + per_thread).min(geo.n);
            let mut gw = vec![0.0f32; o * per_filter];
            let mut gb = vec![0.0f32; o];
            let d = pool[0] * pool[1];
            let lens = [
                image_len,
                if x_grad { image_len } else { 0 },
                q,
                q,
                d * o,
                d * o,
                padded_len,
            ];
            scratch::with(lens, |[xt, gxt, ats, grads, ids, bucket_grads, xp]| {
                for img in start..end {
                    let at = img * o * q..(img + 1) * o * q;
                    let src = Routing {
                        g: &g[at.clone()],
                        idx: &idx[at.clone()],
                        y: y.map_or(&[][..], |y| &y[at]),
                    };
                    let xi = &x[img * chw..(img + 1) * chw];
                    // SAFETY: the `Avx512` token proves detection.
                    unsafe {
                        match plan.layout {
                            ImageLayout::ChannelsLast => channels_last(avx512, geo, &plan, xi, xt),
                            ImageLayout::Patches => patches(avx512, geo, &plan, xi, xp, xt),
                        }
                    }
                    for oc in 0..o {
                        // SAFETY: the `Avx512` token proves detection.
                        let n = unsafe { windows(avx512, &plan, oc, src, &mut gb[oc], ats, grads) };
                        let list = (&ats[..n], &grads[..n]);
                        let gwo = &mut gw[oc * per_filter..(oc + 1) * per_filter];
                        // SAFETY: the `Avx512` token proves detection.
                        unsafe { weight_grad(avx512, &plan, xt, list, gwo) };
                    }
                    if x_grad {
                        gxt.fill(0.0);
                        for qi in 0..q {
                            let buckets = (&mut *ids, &mut *bucket_grads);
                            // SAFETY: the `Avx512` token proves detection.
                            unsafe { window_input_grad(avx512, &plan, o, qi, src, buckets, gxt) };
                        }
                        let local = (img - start) * chw;
                        let gxi = &mut gx_part[local..local + chw];
                        match plan.layout {
                            // SAFETY: the `Avx512` token proves detection.
                            ImageLayout::ChannelsLast => unsafe {
                                channels_first(avx512, geo, &plan, gxt, gxi)
                            },
                            ImageLayout::Patches => fold_patches(geo, &plan, gxt, gxi),
                        }
                    }
                }
            });
            (gw, gb)
        })
        .collect();
    let (gwt, gb) = sum_partials(partials, o * per_filter, o);
    let (kk, ckk) = (geo.kh * geo.kw, geo.ckk());
    let mut gw = vec![0.0f32; o * ckk];
    for oc in 0..o {
        match plan.layout {
            ImageLayout::ChannelsLast => {
                for c in 0..geo.c {
                    for t in 0..kk {
                        gw[(oc * geo.c + c) * kk + t] = gwt[(oc * kk + t) * plan.cpad + c];
                    }
                }
            }
            ImageLayout::Patches => gw[oc * ckk..(oc + 1) * ckk]
                .copy_from_slice(&gwt[oc * plan.cpad..oc * plan.cpad + ckk]),
        }
    }
    (gx, gw, gb)
}

/// One image (`[C, H, W]`) unfolded into `pt`: for each output position, its `C·KH·KW`
/// inputs (zero in the padding and past `C·KH·KW`), `[HO·WO, K']`. With padding the image
/// is zero-padded into `xp` first.
#[target_feature(enable = "avx512f")]
fn patches(_: Avx512, geo: &Geometry, plan: &Plan, x: &[f32], xp: &mut [f32], pt: &mut [f32]) {
    let src: &[f32] = if geo.pad_h > 0 || geo.pad_w > 0 {
        xp.fill(0.0);
        for c in 0..geo.c {
            for iy in 0..geo.h {
                let at = (c * plan.hp + iy + geo.pad_h) * plan.wp + geo.pad_w;
                xp[at..at + geo.w].copy_from_slice(&x[(c * geo.h + iy) * geo.w..][..geo.w]);
            }
        }
        &xp[..geo.c * plan.hp * plan.wp]
    } else {
        &x[..geo.c * geo.h * geo.w]
    };
    let ckk = geo.ckk();
    let last = plan.lanes[ckk - 1] as usize;
    assert!(pt.len() >= geo.ho * geo.wo * plan.cpad);
    for oy in 0..geo.ho {
        for ox in 0..geo.wo {
            let base = oy * geo.sh * plan.wp + ox * geo.sw;
            assert!(base + last < src.len());
            let dst = (oy * geo.wo + ox) * plan.cpad;
            for c0 in (0..plan.cpad).step_by(16) {
                let k = first_lanes(ckk.saturating_sub(c0));
                // SAFETY: the lanes in `k` read the position's inputs (the largest offset
                // asserted above); the store writes 16 of its `K'` values.
                unsafe {
                    let offs = _mm512_loadu_si512(plan.lanes.as_ptr().add(c0).cast());
                    let v = _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        k,
                        offs,
                        src.as_ptr().add(base).cast(),
                    );
                    _mm512_storeu_ps(pt.as_mut_ptr().add(dst + c0), v);
                }
            }
        }
    }
}

/// The unfolded input gradient `gp` (`[HO·WO, K']`) added back into the image's `gx`
/// (`[C, H, W]`), dropping what falls in the padding.
fn fold_patches(geo: &Geometry, plan: &Plan, gp: &[f32], gx: &mut [f32]) {
    let (kk, hw) = (geo.kh * geo.kw, geo.h * geo.w);
    for oy in 0..geo.ho {
        for ox in 0..geo.wo {
            let row = &gp[(oy * geo.wo + ox) * plan.cpad..][..geo.ckk()];
            for (t, &v) in row.iter().enumerate() {
                let (c, ky, kx) = (t / kk, (t % kk) / geo.kw, t % geo.kw);
                let (iy, ix) = (oy * geo.sh + ky, ox * geo.sw + kx);
                if iy < geo.pad_h
                    || ix < geo.pad_w
                    || iy - geo.pad_h >= geo.h
                    || ix - geo.pad_w >= geo.w
                {
                    continue;
                }
                gx[c * hw + (iy - geo.pad_h) * geo.w + ix - geo.pad_w] += v;
            }
        }
    }
}

/// Where burn's `relu_backward` lets the gradient through the outputs `y` (those `> 0` or
/// NaN), of the lanes in `k`.
#[inline(always)]
fn passing(_: Avx512, k: __mmask16, y: __m512) -> __mmask16 {
    // SAFETY: the `Avx512` token proves detection.
    unsafe {
        k & (_mm512_cmp_ps_mask::<_CMP_GT_OQ>(y, _mm512_setzero_ps())
            | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(y, y))
    }
}

/// The windows of filter `oc` (of one image's `src`) that pass a non-zero gradient: the
/// offset of the winner's first tap in the padded image (as `u32` bits) into `ats`, the
/// gradient into `grads`; their number is returned, and the sum of the gradients that pass
/// is added to `gb`.
#[target_feature(enable = "avx512f")]
fn windows(
    avx512: Avx512,
    plan: &Plan,
    oc: usize,
    src: Routing,
    gb: &mut f32,
    ats: &mut [f32],
    grads: &mut [f32],
) -> usize {
    let q = plan.q;
    let d = plan.candidate_at.len();
    assert!(src.g.len() >= (oc + 1) * q && src.idx.len() >= (oc + 1) * q);
    assert!(src.y.is_empty() || src.y.len() >= (oc + 1) * q);
    assert!(ats.len() >= q && grads.len() >= q && plan.window_at.len() >= q && d <= 16);
    let mut n = 0;
    // SAFETY: (whole body) the loads are masked to the `q` windows of filter `oc` (asserted
    // above), the compressed stores write at most `q` values from `n`.
    unsafe {
        let cand = _mm512_maskz_loadu_epi32(first_lanes(d), plan.candidate_at.as_ptr().cast());
        let mut sum = _mm512_setzero_ps();
        for i in (0..q).step_by(16) {
            let k = first_lanes(q - i);
            let at = oc * q + i;
            let gs = _mm512_maskz_loadu_ps(k, src.g.as_ptr().add(at));
            let ds = _mm512_maskz_loadu_epi32(k, src.idx.as_ptr().add(at).cast());
            let pass = if src.y.is_empty() {
                k
            } else {
                passing(avx512, k, _mm512_maskz_loadu_ps(k, src.y.as_ptr().add(at)))
            };
            sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(pass, gs));
            let live = pass & _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(gs, _mm512_setzero_ps());
            let wa = _mm512_maskz_loadu_epi32(k, plan.window_at.as_ptr().add(i).cast());
            let pos = _mm512_add_epi32(wa, _mm512_permutexvar_epi32(ds, cand));
            _mm512_mask_compressstoreu_epi32(ats.as_mut_ptr().add(n).cast(), live, pos);
            _mm512_mask_compressstoreu_ps(grads.as_mut_ptr().add(n).cast(), live, gs);
            n += live.count_ones() as usize;
        }
        *gb += _mm512_reduce_add_ps(sum);
    }
    n
}

/// One image, channels first (`[C, H, W]`), into `xt`: channels last and zero-padded,
/// `[HP, WP, C']`.
#[target_feature(enable = "avx512f")]
fn channels_last(_: Avx512, geo: &Geometry, plan: &Plan, x: &[f32], xt: &mut [f32]) {
    let hw = geo.h * geo.w;
    assert!(x.len() >= geo.c * hw && xt.len() >= plan.hp * plan.wp * plan.cpad);
    if geo.pad_h > 0 || geo.pad_w > 0 {
        xt.fill(0.0);
    }
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_mullo_epi32(lane, _mm512_set1_epi32(hw as i32));
    for c0 in (0..plan.cpad).step_by(16) {
        let k = first_lanes(geo.c.saturating_sub(c0));
        for iy in 0..geo.h {
            for ix in 0..geo.w {
                let dst = ((iy + geo.pad_h) * plan.wp + ix + geo.pad_w) * plan.cpad + c0;
                // SAFETY: the lanes in `k` read channels `c0..min(c0 + 16, C)` of position
                // `(iy, ix)`, inside `x`; the store writes 16 values of one padded position.
                unsafe {
                    let base = x.as_ptr().add(c0 * hw + iy * geo.w + ix);
                    let v =
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), k, step, base.cast());
                    _mm512_storeu_ps(xt.as_mut_ptr().add(dst), v);
                }
            }
        }
    }
}

/// The padded channels-last input gradient `gxt` (`[HP, WP, C']`) into the image's `gx`
/// (`[C, H, W]`), dropping the padding.
#[target_feature(enable = "avx512f")]
fn channels_first(avx512: Avx512, geo: &Geometry, plan: &Plan, gxt: &[f32], gx: &mut [f32]) {
    let hw = geo.h * geo.w;
    for iy in 0..geo.h {
        let src = &gxt[((iy + geo.pad_h) * plan.wp + geo.pad_w) * plan.cpad..];
        gather_strided(
            avx512,
            src,
            plan.cpad,
            geo.w,
            geo.c,
            &mut gx[iy * geo.w..],
            hw,
        );
    }
}

/// `gw` (one filter's `[KH·KW, C']`) += each listed window's gradient times the input under
/// its taps (each position checked against `xt` by the tiles).
#[target_feature(enable = "avx512f")]
fn weight_grad(avx512: Avx512, plan: &Plan, xt: &[f32], list: (&[f32], &[f32]), gw: &mut [f32]) {
    let kk = plan.taps.len();
    assert!(gw.len() >= kk * plan.cpad);
    for c0 in (0..plan.cpad).step_by(32) {
        let two = plan.cpad - c0 >= 32;
        // SAFETY: `gw` holds `KK` taps of `C'` (asserted above, `KK <= kk`) and
        // `c0 + 16·V <= C'`; the tiles assert each read of `xt`.
        unsafe {
            match (kk, two) {
                (9, true) => weight_tile::<9, 2>(avx512, plan, xt, list, gw, c0),
                (9, false) => weight_tile::<9, 1>(avx512, plan, xt, list, gw, c0),
                (4, true) => weight_tile::<4, 2>(avx512, plan, xt, list, gw, c0),
                (4, false) => weight_tile::<4, 1>(avx512, plan, xt, list, gw, c0),
                (_, true) => weight_tile::<1, 2>(avx512, plan, xt, list, gw, c0),
                (_, false) => weight_tile::<1, 1>(avx512, plan, xt, list, gw, c0),
            }
        }
    }
}

/// [`weight_grad`] for channels `c0..c0 + 16·V`: `KK·V` accumulators in registers over the
/// windows.
///
/// # Safety
/// `gw` must hold `KK` taps of `plan.cpad` values and `c0 + 16·V <= plan.cpad`. (The CPU's
/// AVX-512 is the token's; the reads of `xt` are asserted.)
#[target_feature(enable = "avx512f")]
unsafe fn weight_tile<const KK: usize, const V: usize>(
    _: Avx512,
    plan: &Plan,
    xt: &[f32],
    (ats, grads): (&[f32], &[f32]),
    gw: &mut [f32],
    c0: usize,
) {
    let cpad = plan.cpad;
    let taps: [usize; KK] = std::array::from_fn(|t| plan.taps[t] * cpad);
    let limit = xt.len();
    // SAFETY: (whole body) every read is asserted inside `xt`, every write inside `gw`.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; KK];
        for (a, &g) in ats.iter().zip(grads) {
            let at = a.to_bits() as usize * cpad + c0;
            assert!(at + taps[KK - 1] + 16 * V <= limit);
            let s = _mm512_set1_ps(g);
            let base = xt.as_ptr().add(at);
            for (row, &tap) in acc.iter_mut().zip(&taps) {
                for (v, a) in row.iter_mut().enumerate() {
                    let xv = _mm512_loadu_ps(base.add(tap + 16 * v));
                    *a = _mm512_fmadd_ps(s, xv, *a);
                }
            }
        }
        for (t, row) in acc.iter().enumerate() {
            for (v, &a) in row.iter().enumerate() {
                let p = gw.as_mut_ptr().add(t * cpad + c0 + 16 * v);
                _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), a));
            }
        }
    }
}

/// The input gradient of window `qi`: for each candidate `d`, the filters whose winner it is
/// (bucketed: filter numbers as `u32` bits in `ids`, gradients in `grads`, `[D][O]` each, the
/// two `buckets`),
/// their weights times their gradients summed in registers, then added to `gxt`
/// (`[HP, WP, C']`) under the candidate's taps once.
#[target_feature(enable = "avx512f")]
fn window_input_grad(
    avx512: Avx512,
    plan: &Plan,
    o: usize,
    qi: usize,
    src: Routing,
    (ids, grads): (&mut [f32], &mut [f32]),
    gxt: &mut [f32],
) {
    let (q, d) = (plan.q, plan.candidate_at.len());
    let mut counts = [0usize; MAX_CANDIDATES];
    assert!(d <= MAX_CANDIDATES && ids.len() >= d * o && grads.len() >= d * o);
    assert!(qi < q && src.g.len() >= o * q && src.idx.len() >= o * q);
    assert!(src.y.is_empty() || src.y.len() >= o * q);
    // SAFETY: the gathers read lanes `oc < o` of column `qi` of the `[O, Q]` arrays (asserted
    // above); each compressed store writes at most 16 values of bucket `k`, which holds `o`.
    unsafe {
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let step = _mm512_mullo_epi32(lane, _mm512_set1_epi32(q as i32));
        for o0 in (0..o).step_by(16) {
            let k = first_lanes(o - o0);
            let at = o0 * q + qi;
            let zero = _mm512_setzero_ps();
            let gs = _mm512_mask_i32gather_ps::<4>(zero, k, step, src.g.as_ptr().add(at).cast());
            let ds = _mm512_mask_i32gather_epi32::<4>(
                _mm512_setzero_si512(),
                k,
                step,
                src.idx.as_ptr().add(at).cast(),
            );
            let pass = if src.y.is_empty() {
                k
            } else {
                passing(
                    avx512,
                    k,
                    _mm512_mask_i32gather_ps::<4>(zero, k, step, src.y.as_ptr().add(at).cast()),
                )
            };
            let live = pass & _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(gs, zero);
            if live == 0 {
                continue;
            }
            let filters = _mm512_add_epi32(lane, _mm512_set1_epi32(o0 as i32));
            for (c, count) in counts.iter_mut().enumerate().take(d) {
                let m = live & _mm512_cmpeq_epi32_mask(ds, _mm512_set1_epi32(c as i32));
                if m == 0 {
                    continue;
                }
                let slot = c * o + *count;
                _mm512_mask_compressstoreu_epi32(ids.as_mut_ptr().add(slot).cast(), m, filters);
                _mm512_mask_compressstoreu_ps(grads.as_mut_ptr().add(slot).cast(), m, gs);
                *count += m.count_ones() as usize;
            }
        }
    }
    let kk = plan.taps.len();
    let cpad = plan.cpad;
    let last = plan.taps.last().copied().unwrap_or(0) * cpad + cpad;
    for (c, &n) in counts.iter().enumerate().take(d) {
        if n == 0 {
            continue;
        }
        let list = (&ids[c * o..c * o + n], &grads[c * o..c * o + n]);
        let at = (plan.window_at[qi] + plan.candidate_at[c]) as usize * cpad;
        assert!(at + last <= gxt.len());
        let dst = &mut gxt[at..];
        for c0 in (0..cpad).step_by(32) {
            let two = cpad - c0 >= 32;
            // SAFETY: `dst` holds every tap's `C'` values (asserted), and the tiles check each
            // listed filter against `plan.wt`.
            unsafe {
                match (kk, two) {
                    (9, true) => input_tile::<9, 2>(avx512, plan, list, dst, c0),
                    (9, false) => input_tile::<9, 1>(avx512, plan, list, dst, c0),
                    (4, true) => input_tile::<4, 2>(avx512, plan, list, dst, c0),
                    (4, false) => input_tile::<4, 1>(avx512, plan, list, dst, c0),
                    (_, true) => input_tile::<1, 2>(avx512, plan, list, dst, c0),
                    (_, false) => input_tile::<1, 1>(avx512, plan, list, dst, c0),
                }
            }
        }
    }
}

/// `Σ s·W[oc]` over the listed `(filter, gradient)` pairs, for channels `c0..c0 + 16·V` of
/// every tap, in `KK·V` registers; then added to `dst` (a candidate's first tap in the
/// channels-last input gradient) under the taps.
///
/// # Safety
/// `dst` must hold every tap's channels and `c0 + 16·V <= plan.cpad`. (The CPU's AVX-512 is
/// the token's; the reads of `plan.wt` are asserted per filter.)
#[target_feature(enable = "avx512f")]
unsafe fn input_tile<const KK: usize, const V: usize>(
    _: Avx512,
    plan: &Plan,
    (ids, grads): (&[f32], &[f32]),
    dst: &mut [f32],
    c0: usize,
) {
    let cpad = plan.cpad;
    let per_filter = KK * cpad;
    let wt = &plan.wt;
    // SAFETY: (whole body) the reads of `wt` are asserted per filter, the writes are inside
    // `dst` (the caller's).
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; KK];
        for (id, &g) in ids.iter().zip(grads) {
            let oc = id.to_bits() as usize;
            assert!((oc + 1) * per_filter <= wt.len());
            let s = _mm512_set1_ps(g);
            let base = wt.as_ptr().add(oc * per_filter + c0);
            for (t, row) in acc.iter_mut().enumerate() {
                for (v, a) in row.iter_mut().enumerate() {
                    let wv = _mm512_loadu_ps(base.add(t * cpad + 16 * v));
                    *a = _mm512_fmadd_ps(s, wv, *a);
                }
            }
        }
        for (row, &tap) in acc.iter().zip(&plan.taps) {
            let p = dst.as_mut_ptr().add(tap * cpad + c0);
            for (v, &a) in row.iter().enumerate() {
                let pv = p.add(16 * v);
                _mm512_storeu_ps(pv, _mm512_add_ps(_mm512_loadu_ps(pv), a));
            }
        }
    }
}
