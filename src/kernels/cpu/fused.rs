//! The fused block: convolution → max pooling whose windows tile the output → ReLU (optional),
//! forward and backward, as im2col + gemm with the convolution's output in a column order made
//! for the pooling. The path of every CPU, and of the blocks the direct convolution and the
//! backward through the winners do not take.
//!
//! # The pooled column order
//! With pooling windows `PH×PW` over the convolution's output, output position
//! `(oy, ox) = (py·PH + dy, px·PW + dx)` is window `(py, px)`'s candidate `d = dy·PW + dx`.
//! The unfolded columns (and so the convolution's output `z[O, D·Q]`, `D = PH·PW`,
//! `Q = HQ·WQ` windows) are ordered `(d, py, px)`: each window's candidates are `Q` apart, so
//! pooling is an element-wise max of `D` contiguous runs, which vectorizes, and the positions
//! no window covers (the last row/column of an odd output) are never computed.
//!
//! Input position `(oy·SH + ky − PadH, ox·SW + kx − PadW)` (`PadH`, `PadW` the padding) is
//! `(py·PH·SH + a − PadH, px·PW·SW + b − PadW)` with the *phases* `a = dy·SH + ky`,
//! `b = dx·SW + kx`. For each channel and phase the inputs of all windows form a `[HQ, WQ]`
//! grid, gathered once per image (`grids`); every unfolded row segment is then a contiguous
//! copy of one grid (for 3×3 kernels and 2×2 windows, 16 grids serve 36 segments).
//!
//! The pooling itself, and the gradient's way back through it, are `fused_pool`'s.

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::avx512::first_lanes as lanes;
use super::element::copy_short;
use super::fused_pool::{pool_relu, route};
use super::gemm::{forward_product, input_grad_product, weight_grad_product};
use super::geometry::{Geometry, range_inside};
use super::scratch;
#[cfg(target_arch = "x86_64")]
use super::simd::Avx512;
use super::threads::{for_each_output_chunk, image_tasks, parallel, sum_partials};
use super::views::{Cols, ColsMut, Routing, Saved};

/// Sizes of the pooled column order for one convolution and pooling window.
struct PooledOrder {
    /// The pooling window `[PH, PW]`.
    pool: [usize; 2],
    /// Windows per column and per row: `HQ = HO / PH`, `WQ = WO / PW`.
    hq: usize,
    wq: usize,
    /// Windows per plane, `HQ·WQ`.
    q: usize,
    /// Candidates per window, `PH·PW`.
    d: usize,
    /// Row and column phases: `(PH − 1)·SH + KH` and `(PW − 1)·SW + KW`.
    a: usize,
    b: usize,
    /// Input rows and columns between neighbouring windows: `PH·SH`, `PW·SW`.
    step: [usize; 2],
}

impl PooledOrder {
    pub fn new(geo: &Geometry, pool: [usize; 2]) -> Self {
        let (hq, wq) = (geo.ho / pool[0], geo.wo / pool[1]);
        Self {
            pool,
            hq,
            wq,
            q: hq * wq,
            d: pool[0] * pool[1],
            a: (pool[0] - 1) * geo.sh + geo.kh,
            b: (pool[1] - 1) * geo.sw + geo.kw,
            step: [pool[0] * geo.sh, pool[1] * geo.sw],
        }
    }
    /// Columns per image: `D·Q`.
    fn width(&self) -> usize {
        self.d * self.q
    }
    /// Values in one image's grids: `C·A·B·Q`.
    fn grids_len(&self, geo: &Geometry) -> usize {
        geo.c * self.a * self.b * self.q
    }
    /// Values in the phase scratch of [`grids`]: `S·⌈H·W / S⌉`.
    fn phases_len(&self, geo: &Geometry) -> usize {
        (geo.h * geo.w).div_ceil(self.step[1]) * self.step[1]
    }
    /// Where grid `(c, a, b)` starts.
    fn grid(&self, c: usize, a: usize, b: usize) -> usize {
        ((c * self.a + a) * self.b + b) * self.q
    }
}

super::simd::multiversion! {
    /// Gathers image `x` (`[C, H, W]`) into its grids (`[C, A, B, Q]`, 0 outside the image).
    ///
    /// Each channel is first split into its `S = PW·SW` column phases, as one flat array
    /// (`f[r][k] = plane[S·k + r]`, `[S, ⌈H·W / S⌉]` in `scratch`): a grid's row is then a
    /// contiguous run of one phase, whatever the row (`H·W` need not be a multiple of `S`).
    fn grids(geo: &Geometry, order: &PooledOrder, x: &[f32], scratch: &mut [f32], g: &mut [f32]) {
        let hw = geo.h * geo.w;
        let (wq, step) = (order.wq, order.step[1]);
        let len = hw.div_ceil(step);
        for c in 0..geo.c {
            let xc = &x[c * hw..(c + 1) * hw];
            let f = &mut scratch[..step * len];
            if step == 2 {
                let (f0, f1) = f.split_at_mut(len);
                for ((e, o), pair) in f0.iter_mut().zip(f1.iter_mut()).zip(xc.chunks_exact(2)) {
                    *e = pair[0];
                    *o = pair[1];
                }
                if hw % 2 == 1 {
                    f0[len - 1] = xc[hw - 1];
                }
            } else {
                for (k, chunk) in xc.chunks(step).enumerate() {
                    for (r, &v) in chunk.iter().enumerate() {
                        f[r * len + k] = v;
                    }
                }
            }
            for a in 0..order.a {
                let (py0, py1) = range_inside(order.hq, order.step[0], a, geo.pad_h, geo.h);
                for b in 0..order.b {
                    let (px0, px1) = range_inside(wq, step, b, geo.pad_w, geo.w);
                    let dst = &mut g[order.grid(c, a, b)..][..order.q];
                    if py0 > 0 || py1 < order.hq || px0 > 0 || px1 < wq {
                        dst.fill(0.0);
                    }
                    if px0 >= px1 {
                        continue;
                    }
                    for (py, row) in dst.chunks_exact_mut(wq).enumerate().take(py1).skip(py0) {
                        let iy = py * order.step[0] + a - geo.pad_h;
                        let t0 = iy * geo.w + px0 * step + b - geo.pad_w;
                        let src = &f[phase_at(t0, step, len)..][..px1 - px0];
                        copy_short(&mut row[px0..px1], src);
                    }
                }
            }
        }
    }
}

/// [`grids`], with intrinsics on AVX-512 where the windows are two input columns apart
/// (`S = 2`: stride 1 and windows two wide, as in most CNNs) and a grid row fits a vector.
fn grids_best(geo: &Geometry, order: &PooledOrder, x: &[f32], scratch: &mut [f32], g: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if order.step[1] == 2
        && order.wq <= 16
        && let Some(avx512) = Avx512::try_new()
    {
        // SAFETY: the `Avx512` token proves detection.
        return unsafe { grids_avx512(avx512, geo, order, x, scratch, g) };
    }
    grids(geo, order, x, scratch, g)
}

/// [`grids`] for `S = 2` and grid rows of at most 16 values, with AVX-512: each channel is
/// split into its even and odd columns 32 values at a time (two permutes), and each grid row
/// is one masked load and store.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn grids_avx512(
    _: Avx512,
    geo: &Geometry,
    order: &PooledOrder,
    x: &[f32],
    scratch: &mut [f32],
    g: &mut [f32],
) {
    use std::arch::x86_64::*;
    let hw = geo.h * geo.w;
    let wq = order.wq;
    let len = hw.div_ceil(2);
    assert!(order.step[1] == 2 && wq <= 16 && x.len() >= geo.c * hw);
    assert!(scratch.len() >= 2 * len && g.len() >= order.grids_len(geo));
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let row_mask = lanes(wq);
    for c in 0..geo.c {
        let xc = &x[c * hw..(c + 1) * hw];
        let (f0, f1) = scratch[..2 * len].split_at_mut(len);
        // SAFETY: every load and store is masked to the lanes inside its slice.
        unsafe {
            let mut t = 0;
            while t < hw {
                let left = hw - t;
                let lo = _mm512_maskz_loadu_ps(lanes(left), xc.as_ptr().add(t));
                let hi = if left > 16 {
                    _mm512_maskz_loadu_ps(lanes(left - 16), xc.as_ptr().add(t + 16))
                } else {
                    _mm512_setzero_ps()
                };
                let k = t / 2;
                let e = _mm512_permutex2var_ps(lo, even, hi);
                let o = _mm512_permutex2var_ps(lo, odd, hi);
                _mm512_mask_storeu_ps(f0.as_mut_ptr().add(k), lanes(left.div_ceil(2)), e);
                _mm512_mask_storeu_ps(f1.as_mut_ptr().add(k), lanes(left / 2), o);
                t += 32;
            }
        }
        let f = &scratch[..2 * len];
        for a in 0..order.a {
            let (py0, py1) = range_inside(order.hq, order.step[0], a, geo.pad_h, geo.h);
            for b in 0..order.b {
                let (px0, px1) = range_inside(wq, 2, b, geo.pad_w, geo.w);
                let dst = &mut g[order.grid(c, a, b)..][..order.q];
                let full = py0 == 0 && py1 == order.hq && px0 == 0 && px1 == wq;
                if !full {
                    dst.fill(0.0);
                }
                if px0 >= px1 {
                    continue;
                }
                let mask = if full { row_mask } else { lanes(px1 - px0) };
                for py in py0..py1 {
                    let iy = py * order.step[0] + a - geo.pad_h;
                    let at = phase_at(iy * geo.w + px0 * 2 + b - geo.pad_w, 2, len);
                    assert!(at + (px1 - px0) <= f.len() && py * wq + px1 <= dst.len());
                    // SAFETY: masked to the `px1 - px0` values checked just above.
                    unsafe {
                        let v = _mm512_maskz_loadu_ps(mask, f.as_ptr().add(at));
                        _mm512_mask_storeu_ps(dst.as_mut_ptr().add(py * wq + px0), mask, v);
                    }
                }
            }
        }
    }
}

/// [`col2im`], with intrinsics on AVX-512 under the same conditions as [`grids_best`] (and
/// segments of at most 32 values, input rows of at most 32).
fn col2im_best(
    geo: &Geometry,
    order: &PooledOrder,
    cols: Cols,
    gg: &mut [f32],
    phases: &mut [f32],
    gx: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if order.step[1] == 2
        && order.wq <= 16
        && order.q <= 32
        && geo.w <= 32
        && let Some(avx512) = Avx512::try_new()
    {
        // SAFETY: the `Avx512` token proves detection.
        return unsafe { col2im_avx512(avx512, geo, order, cols, gg, gx) };
    }
    col2im(geo, order, cols, gg, phases, gx)
}

/// [`col2im`] for `S = 2`, grid rows of at most 16 values, segments of at most 32 and input
/// rows of at most 32, with AVX-512: each grid's sum over the segments that map to it is
/// formed in two registers and stored once; then each input row's even and odd columns are
/// summed in two registers from the grid rows that land on it, interleaved (two permutes)
/// and added to `gx` once. Nothing is read back from a store just made, which would stall.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn col2im_avx512(
    _: Avx512,
    geo: &Geometry,
    order: &PooledOrder,
    cols: Cols,
    gg: &mut [f32],
    gx: &mut [f32],
) {
    let Cols {
        data: cols,
        stride,
        col0,
    } = cols;
    use std::arch::x86_64::*;
    let (q, wq) = (order.q, order.wq);
    let hw = geo.h * geo.w;
    assert!(order.step[1] == 2 && wq <= 16 && q <= 32);
    assert!(geo.w <= 32 && gx.len() >= geo.c * hw && gg.len() >= order.a * order.b * q);
    let rows = geo.c * geo.kh * geo.kw;
    assert!(rows == 0 || (rows - 1) * stride + col0 + order.width() <= cols.len());
    let (m0, m1) = (lanes(q), lanes(q.saturating_sub(16)));
    // interleaving: output lanes 0..16 take e0 o0 e1 o1 … e7 o7, lanes 16..32 e8 o8 …
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    // Per column phase b, where its grid rows land in an input row's even or odd columns:
    // ix = 2·px + b − PadW is odd when b + PadW is, at index px + ⌊(b + PadW) / 2⌋ − PadW
    // (b + PadW is (b − PadW) + 2·PadW: the same parity, in unsigned arithmetic). Valid px
    // (px0..px1) give ix >= 0, so the first lane is not negative. (odd, first lane, lanes,
    // px0) per b; empty lanes where no window column is inside.
    let columns: Vec<(bool, usize, __mmask16, usize)> = (0..order.b)
        .map(|b| {
            let (px0, px1) = range_inside(wq, 2, b, geo.pad_w, geo.w);
            if px0 >= px1 {
                return (false, 0, 0, 0);
            }
            let (odd, base) = ((b + geo.pad_w) % 2 == 1, (b + geo.pad_w) / 2);
            let lane0 = px0 + base - geo.pad_w;
            (odd, lane0, lanes(px1 - px0) << lane0, px0)
        })
        .collect();
    for c in 0..geo.c {
        // 1. each grid (a, b): the sum of the segments (ky, kx, d) with dy·SH + ky = a and
        //    dx·SW + kx = b
        for a in 0..order.a {
            for b in 0..order.b {
                // SAFETY: masked to the `q` values of each segment and grid (asserted above).
                unsafe {
                    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                    for dy in 0..order.pool[0] {
                        let Some(ky) = a.checked_sub(dy * geo.sh).filter(|&k| k < geo.kh) else {
                            continue;
                        };
                        for dx in 0..order.pool[1] {
                            let Some(kx) = b.checked_sub(dx * geo.sw).filter(|&k| k < geo.kw)
                            else {
                                continue;
                            };
                            let r = (c * geo.kh + ky) * geo.kw + kx;
                            let d = dy * order.pool[1] + dx;
                            let src = cols.as_ptr().add(r * stride + col0 + d * q);
                            s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(m0, src));
                            if q > 16 {
                                s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(m1, src.add(16)));
                            }
                        }
                    }
                    let dst = gg.as_mut_ptr().add(order.grid(0, a, b));
                    _mm512_mask_storeu_ps(dst, m0, s0);
                    if q > 16 {
                        _mm512_mask_storeu_ps(dst.add(16), m1, s1);
                    }
                }
            }
        }
        // 2. each input row: its even and odd columns summed in two registers from the grid
        //    rows that land on it (a masked load shifted by the row's offset), then
        //    interleaved and added to the image gradient once
        let gc = &mut gx[c * hw..(c + 1) * hw];
        for iy in 0..geo.h {
            let (mut even_sum, mut odd_sum) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            for a in 0..order.a {
                // the window row py with py·step0 + a − PadH = iy
                let Some(num) = (iy + geo.pad_h).checked_sub(a) else {
                    continue;
                };
                if num % order.step[0] != 0 || num / order.step[0] >= order.hq {
                    continue;
                }
                let py = num / order.step[0];
                for (b, &(odd, lane0, mask, px0)) in columns.iter().enumerate() {
                    // SAFETY: only the lanes in `mask` are read: grid row values px0..px1.
                    unsafe {
                        let row = gg.as_ptr().add(order.grid(0, a, b) + py * wq + px0);
                        let v = _mm512_maskz_loadu_ps(mask, row.wrapping_sub(lane0));
                        if odd {
                            odd_sum = _mm512_add_ps(odd_sum, v);
                        } else {
                            even_sum = _mm512_add_ps(even_sum, v);
                        }
                    }
                }
            }
            // SAFETY: masked to the `w` values of the row.
            unsafe {
                let p = gc.as_mut_ptr().add(iy * geo.w);
                let ml = lanes(geo.w);
                let v = _mm512_permutex2var_ps(even_sum, lo, odd_sum);
                _mm512_mask_storeu_ps(p, ml, _mm512_add_ps(_mm512_maskz_loadu_ps(ml, p), v));
                if geo.w > 16 {
                    let mh = lanes(geo.w - 16);
                    let v = _mm512_permutex2var_ps(even_sum, hi, odd_sum);
                    let ph = p.add(16);
                    _mm512_mask_storeu_ps(ph, mh, _mm512_add_ps(_mm512_maskz_loadu_ps(mh, ph), v));
                }
            }
        }
    }
}

/// Where flat position `t` of a plane is in its column phases (`[S, len]`): phase `t mod S`,
/// element `t div S`. Shifts for the common `S = 2` (2×2 windows, stride 1), not a division.
#[inline(always)]
fn phase_at(t: usize, step: usize, len: usize) -> usize {
    if step == 2 {
        (t & 1) * len + (t >> 1)
    } else {
        (t % step) * len + t / step
    }
}

super::simd::multiversion! {
    /// Unfolds one image's grids `g` into `cols` (`[C·KH·KW, cols_stride]`, columns
    /// `col0..col0 + D·Q` written, in the pooled order).
    fn im2col(
        geo: &Geometry,
        order: &PooledOrder,
        g: &[f32],
        cols: &mut [f32],
        stride: usize,
        col0: usize,
    ) {
        let q = order.q;
        for c in 0..geo.c {
            for ky in 0..geo.kh {
                for kx in 0..geo.kw {
                    let r = (c * geo.kh + ky) * geo.kw + kx;
                    let row = &mut cols[r * stride + col0..][..order.width()];
                    for dy in 0..order.pool[0] {
                        for dx in 0..order.pool[1] {
                            let d = dy * order.pool[1] + dx;
                            let src = &g[order.grid(c, dy * geo.sh + ky, dx * geo.sw + kx)..][..q];
                            copy_short(&mut row[d * q..(d + 1) * q], src);
                        }
                    }
                }
            }
        }
    }
}

super::simd::multiversion! {
    /// The reverse of [`grids`] and [`im2col`]: adds `cols` (columns `col0..col0 + D·Q` of
    /// `[C·KH·KW, stride]`) into the image gradient `gx` (`[C, H, W]`). Per channel: the
    /// segments into its grids (`gg`, `[A, B, Q]`), the grids' rows into the column phases
    /// (`phases`, as in [`grids`]), and the phases, interleaved, into `gx`.
    fn col2im(
        geo: &Geometry,
        order: &PooledOrder,
        cols: Cols,
        gg: &mut [f32],
        phases: &mut [f32],
        gx: &mut [f32],
    ) {
        let Cols { data: cols, stride, col0 } = cols;
        let (q, wq, step) = (order.q, order.wq, order.step[1]);
        let hw = geo.h * geo.w;
        let len = hw.div_ceil(step);
        let gg = &mut gg[..order.a * order.b * q];
        let f = &mut phases[..step * len];
        for c in 0..geo.c {
            gg.fill(0.0);
            for ky in 0..geo.kh {
                for kx in 0..geo.kw {
                    let r = (c * geo.kh + ky) * geo.kw + kx;
                    let row = &cols[r * stride + col0..][..order.width()];
                    for dy in 0..order.pool[0] {
                        for dx in 0..order.pool[1] {
                            let d = dy * order.pool[1] + dx;
                            let at = order.grid(0, dy * geo.sh + ky, dx * geo.sw + kx);
                            for (t, s) in gg[at..at + q].iter_mut().zip(&row[d * q..(d + 1) * q]) {
                                *t += s;
                            }
                        }
                    }
                }
            }
            f.fill(0.0);
            for a in 0..order.a {
                let (py0, py1) = range_inside(order.hq, order.step[0], a, geo.pad_h, geo.h);
                for b in 0..order.b {
                    let (px0, px1) = range_inside(wq, step, b, geo.pad_w, geo.w);
                    if px0 >= px1 {
                        continue;
                    }
                    let src = &gg[order.grid(0, a, b)..][..q];
                    for py in py0..py1 {
                        let iy = py * order.step[0] + a - geo.pad_h;
                        let t0 = iy * geo.w + px0 * step + b - geo.pad_w;
                        let dst = &mut f[phase_at(t0, step, len)..][..px1 - px0];
                        for (t, s) in dst.iter_mut().zip(&src[py * wq + px0..py * wq + px1]) {
                            *t += s;
                        }
                    }
                }
            }
            let gc = &mut gx[c * hw..(c + 1) * hw];
            if step == 2 {
                let (f0, f1) = f.split_at(len);
                for ((pair, e), o) in gc.chunks_exact_mut(2).zip(f0).zip(f1) {
                    pair[0] += e;
                    pair[1] += o;
                }
                if hw % 2 == 1 {
                    gc[hw - 1] += f0[len - 1];
                }
            } else {
                for (k, chunk) in gc.chunks_mut(step).enumerate() {
                    for (r, v) in chunk.iter_mut().enumerate() {
                        *v += f[r * len + k];
                    }
                }
            }
        }
    }
}

/// Forward: per image, the grids, the unfolded columns in the pooled order,
/// `z[O, D·Q] = W · cols + b` and its pooling (and ReLU). Returns the output
/// `[N, O, HQ, WQ]` and, with `with_indices`, each window's winning candidate `d`.
pub(crate) fn forward(
    geo: &Geometry,
    pool: [usize; 2],
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    relu: bool,
    with_indices: bool,
) -> (Vec<f32>, Vec<u32>) {
    let order = PooledOrder::new(geo, pool);
    let (ckk, o, q, image_cols) = (geo.ckk(), geo.o, order.q, order.width());
    let chw = geo.c * geo.h * geo.w;
    let mut y = vec![0.0f32; geo.n * o * q];
    let mut idx = vec![0u32; if with_indices { geo.n * o * q } else { 0 }];
    // Images per product: more columns for gemm, and the weights packed once for several
    // images; few enough for the block to stay in L2.
    let nb = (64 * 1024 / ((ckk + o) * image_cols).max(1)).clamp(1, 8);
    let lens = [
        order.phases_len(geo),
        order.grids_len(geo),
        ckk * nb * image_cols,
        o * nb * image_cols,
    ];
    let task = |b0: usize, ys: &mut [f32], is: &mut [u32]| {
        let images = ys.len() / (o * q).max(1);
        let width = images * image_cols;
        scratch::with(lens, |[phases, grid, cols, z]| {
            for j in 0..images {
                let xi = &x[(b0 + j) * chw..(b0 + j + 1) * chw];
                grids_best(geo, &order, xi, phases, grid);
                im2col(geo, &order, grid, cols, width, j * image_cols);
            }
            let z = &mut z[..o * width];
            forward_product((o, ckk, width), w, bias, cols, z);
            for j in 0..images {
                let yi = &mut ys[j * o * q..(j + 1) * o * q];
                let ii = if is.is_empty() {
                    &mut []
                } else {
                    &mut is[j * o * q..(j + 1) * o * q]
                };
                let zi = Cols {
                    data: z,
                    stride: width,
                    col0: j * image_cols,
                };
                pool_relu(zi, q, order.d, relu, yi, ii);
            }
        })
    };
    let par = parallel(geo.n * o * image_cols * ckk);
    for_each_output_chunk(&mut y, &mut idx, (nb * o * q).max(1), par, |t, ys, is| {
        task(t * nb, ys, is)
    });
    (y, idx)
}

/// Gradients of [`forward`]: (input gradient if `x_grad`, else empty; weight; bias).
///
/// Per thread, blocks of images:
/// the convolution-output gradient of the block is built in cache in the pooled order
/// (`route`), the images are unfolded side by side, and one product each gives the weight
/// gradient (`dW += dZ · colsᵀ`) and, with `x_grad`, the unfolded input gradient
/// (`Wᵀ · dZ`, then [`col2im`]).
pub(crate) fn backward(
    geo: &Geometry,
    pool: [usize; 2],
    saved: Saved,
    x_grad: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Saved { x, w, y, idx, g } = saved;
    let order = PooledOrder::new(geo, pool);
    let (ckk, o, q, image_cols) = (geo.ckk(), geo.o, order.q, order.width());
    let chw = geo.c * geo.h * geo.w;
    assert!(
        g.len() == geo.n * o * q && idx.len() == g.len() && y.is_none_or(|y| y.len() == g.len()),
        "conv2d_pool: gradient, indices and output must be [N, O, HO / PH, WO / PW]"
    );
    // Images per block: the block's unfolded columns, output gradient and (with `x_grad`)
    // unfolded input gradient, `(2·CKK + O)·nb·D·Q` values, within 64 Ki values (256 KiB,
    // well inside a core's L2 cache; see docs/performance.md, Why the kernels choose what they
    // choose).
    let per_image = (ckk * (1 + usize::from(x_grad)) + o) * image_cols;
    let nb = (64 * 1024 / per_image.max(1)).clamp(1, 16);
    let mut gx = vec![0.0f32; if x_grad { geo.n * chw } else { 0 }];
    let (per_thread, tasks) = image_tasks(geo.n, chw, &mut gx);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = tasks
        .into_par_iter()
        .map(|(start, gx_part)| {
            let end = (start + per_thread).min(geo.n);
            let mut gw = vec![0.0f32; o * ckk];
            let mut gb = vec![0.0f32; o];
            let lens = [
                order.grids_len(geo),
                order.phases_len(geo),
                ckk * nb * image_cols,
                o * nb * image_cols,
                if x_grad { ckk * nb * image_cols } else { 0 },
            ];
            scratch::with(lens, |[grid, phases, cols, dz, xcols]| {
                let mut first = true;
                let mut b0 = start;
                while b0 < end {
                    let b1 = (b0 + nb).min(end);
                    let width = (b1 - b0) * image_cols;
                    let dz = &mut dz[..o * width];
                    for (j, img) in (b0..b1).enumerate() {
                        let xi = &x[img * chw..(img + 1) * chw];
                        grids_best(geo, &order, xi, phases, grid);
                        im2col(geo, &order, grid, cols, width, j * image_cols);
                        let at = img * o * q..(img + 1) * o * q;
                        let yi = y.map_or(&[][..], |y| &y[at.clone()]);
                        let src = Routing {
                            g: &g[at.clone()],
                            idx: &idx[at],
                            y: yi,
                        };
                        let dst = ColsMut {
                            data: &mut *dz,
                            stride: width,
                            col0: j * image_cols,
                        };
                        route(src, q, order.d, dst, &mut gb);
                    }
                    weight_grad_product((o, ckk, width), dz, cols, &mut gw, !first);
                    first = false;
                    if x_grad {
                        // the unfolded input gradient, then col2im per image
                        input_grad_product((o, ckk, width), w, dz, xcols);
                        for (j, img) in (b0..b1).enumerate() {
                            let local = (img - start) * chw;
                            let gxi = &mut gx_part[local..local + chw];
                            let cols = Cols {
                                data: xcols,
                                stride: width,
                                col0: j * image_cols,
                            };
                            col2im_best(geo, &order, cols, grid, phases, gxi);
                        }
                    }
                    b0 = b1;
                }
            });
            (gw, gb)
        })
        .collect();
    let (gw, gb) = sum_partials(partials, o * ckk, o);
    (gx, gw, gb)
}
