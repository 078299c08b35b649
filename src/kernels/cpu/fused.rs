//! The fused block: convolution → max pooling whose windows tile the output → ReLU (optional),
//! forward and backward, with the convolution's output in a column order made for the pooling.
//!
//! # The pooled column order
//! With pooling windows `PH×PW` over the convolution's output, output position
//! `(oy, ox) = (py·PH + dy, px·PW + dx)` is window `(py, px)`'s candidate `d = dy·PW + dx`.
//! The unfolded columns (and so the convolution's output `z[O, D·Q]`, `D = PH·PW`,
//! `Q = HQ·WQ` windows) are ordered `(d, py, px)`: each window's candidates are `Q` apart, so
//! pooling is an element-wise max of `D` contiguous runs, which vectorizes, and the positions
//! no window covers (the last row/column of an odd output) are never computed.
//!
//! Input position `(oy·SH + ky − PH', ox·SW + kx − PW')` (`PH'`, `PW'` the padding) is
//! `(py·PH·SH + a − PH', px·PW·SW + b − PW')` with the *phases* `a = dy·SH + ky`,
//! `b = dx·SW + kx`. For each channel and phase the inputs of all windows form a `[HQ, WQ]`
//! grid, gathered once per image (`grids`); every unfolded row segment is then a contiguous
//! copy of one grid (for 3×3 kernels and 2×2 windows, 16 grids serve 36 segments).

use rayon::prelude::*;

use super::conv::{Geometry, range_inside, sum_partials};
use super::gemm::{forward_product, input_grad_product, weight_grad_product};
use super::pool::beats;

/// Sizes of the pooled column order for one convolution and pooling window.
pub(crate) struct Layout {
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

impl Layout {
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

/// Columns `col0..` of the rows of a `[C·KH·KW, stride]` block of unfolded images: one
/// image's columns in the pooled order.
#[derive(Clone, Copy)]
pub(super) struct Cols<'a> {
    pub data: &'a [f32],
    pub stride: usize,
    pub col0: usize,
}

/// [`Cols`] to write: `O` rows of one image's convolution-output gradient in a block.
pub(super) struct ColsMut<'a> {
    pub data: &'a mut [f32],
    pub stride: usize,
    pub col0: usize,
}

/// What routes the output gradient back through pooling and ReLU, for one image: the output
/// gradient `g`, each window's winner `idx`, and the output `y` when the block ends in ReLU
/// (empty otherwise), all `[O, Q]`.
#[derive(Clone, Copy)]
pub(super) struct Routing<'a> {
    pub g: &'a [f32],
    pub idx: &'a [u32],
    pub y: &'a [f32],
}

super::simd::multiversion! {
    /// Gathers image `x` (`[C, H, W]`) into its grids (`[C, A, B, Q]`, 0 outside the image).
    ///
    /// Each channel is first split into its `S = PW·SW` column phases, as one flat array
    /// (`f[r][k] = plane[S·k + r]`, `[S, ⌈H·W / S⌉]` in `scratch`): a grid's row is then a
    /// contiguous run of one phase, whatever the row (`H·W` need not be a multiple of `S`).
    fn grids(geo: &Geometry, lay: &Layout, x: &[f32], scratch: &mut [f32], g: &mut [f32]) {
        let hw = geo.h * geo.w;
        let (wq, step) = (lay.wq, lay.step[1]);
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
            for a in 0..lay.a {
                let (py0, py1) = range_inside(lay.hq, lay.step[0], a, geo.ph, geo.h);
                for b in 0..lay.b {
                    let (px0, px1) = range_inside(wq, step, b, geo.pw, geo.w);
                    let dst = &mut g[lay.grid(c, a, b)..][..lay.q];
                    if py0 > 0 || py1 < lay.hq || px0 > 0 || px1 < wq {
                        dst.fill(0.0);
                    }
                    if px0 >= px1 {
                        continue;
                    }
                    for (py, row) in dst.chunks_exact_mut(wq).enumerate().take(py1).skip(py0) {
                        let iy = py * lay.step[0] + a - geo.ph;
                        let t0 = iy * geo.w + px0 * step + b - geo.pw;
                        let src = &f[phase_at(t0, step, len)..][..px1 - px0];
                        copy_short(&mut row[px0..px1], src);
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of this module (a grid row, a segment):
/// up to 32 values as two fixed-size copies that may overlap, which compile to a few vector
/// moves, where a call to `memcpy` would cost more than the copy.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let src = &src[..n];
    #[inline(always)]
    fn two<const K: usize>(dst: &mut [f32], src: &[f32], n: usize) {
        dst[..K].copy_from_slice(&src[..K]);
        dst[n - K..].copy_from_slice(&src[n - K..]);
    }
    match n {
        0 => {}
        1 => dst[0] = src[0],
        2..=3 => two::<2>(dst, src, n),
        4..=7 => two::<4>(dst, src, n),
        8..=15 => two::<8>(dst, src, n),
        16..=32 => two::<16>(dst, src, n),
        _ => dst.copy_from_slice(src),
    }
}

/// [`grids`], with intrinsics on AVX-512 where the windows are two input columns apart
/// (`S = 2`: stride 1 and windows two wide, as in most CNNs) and a grid row fits a vector.
fn grids_best(geo: &Geometry, lay: &Layout, x: &[f32], scratch: &mut [f32], g: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if lay.step[1] == 2 && lay.wq <= 16 && super::simd::level() == super::simd::Level::Avx512 {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { grids_avx512(geo, lay, x, scratch, g) };
    }
    grids(geo, lay, x, scratch, g)
}

/// [`grids`] for `S = 2` and grid rows of at most 16 values, with AVX-512: each channel is
/// split into its even and odd columns 32 values at a time (two permutes), and each grid row
/// is one masked load and store.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grids_avx512(
    geo: &Geometry,
    lay: &Layout,
    x: &[f32],
    scratch: &mut [f32],
    g: &mut [f32],
) {
    use super::avx512::first_lanes as lanes;
    use std::arch::x86_64::*;
    let hw = geo.h * geo.w;
    let wq = lay.wq;
    let len = hw.div_ceil(2);
    assert!(lay.step[1] == 2 && wq <= 16 && x.len() >= geo.c * hw);
    assert!(scratch.len() >= 2 * len && g.len() >= lay.grids_len(geo));
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
        for a in 0..lay.a {
            let (py0, py1) = range_inside(lay.hq, lay.step[0], a, geo.ph, geo.h);
            for b in 0..lay.b {
                let (px0, px1) = range_inside(wq, 2, b, geo.pw, geo.w);
                let dst = &mut g[lay.grid(c, a, b)..][..lay.q];
                let full = py0 == 0 && py1 == lay.hq && px0 == 0 && px1 == wq;
                if !full {
                    dst.fill(0.0);
                }
                if px0 >= px1 {
                    continue;
                }
                let mask = if full { row_mask } else { lanes(px1 - px0) };
                for py in py0..py1 {
                    let iy = py * lay.step[0] + a - geo.ph;
                    let at = phase_at(iy * geo.w + px0 * 2 + b - geo.pw, 2, len);
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
    lay: &Layout,
    cols: Cols,
    gg: &mut [f32],
    phases: &mut [f32],
    gx: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if lay.step[1] == 2
        && lay.wq <= 16
        && lay.q <= 32
        && geo.w <= 32
        && super::simd::level() == super::simd::Level::Avx512
    {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { col2im_avx512(geo, lay, cols, gg, gx) };
    }
    col2im(geo, lay, cols, gg, phases, gx)
}

/// [`col2im`] for `S = 2`, grid rows of at most 16 values, segments of at most 32 and input
/// rows of at most 32, with AVX-512: each grid's sum over the segments that map to it is
/// formed in two registers and stored once; then each input row's even and odd columns are
/// summed in two registers from the grid rows that land on it, interleaved (two permutes)
/// and added to `gx` once. Nothing is read back from a store just made, which would stall.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn col2im_avx512(geo: &Geometry, lay: &Layout, cols: Cols, gg: &mut [f32], gx: &mut [f32]) {
    let Cols {
        data: cols,
        stride,
        col0,
    } = cols;
    use super::avx512::first_lanes as lanes;
    use std::arch::x86_64::*;
    let (q, wq) = (lay.q, lay.wq);
    let hw = geo.h * geo.w;
    assert!(lay.step[1] == 2 && wq <= 16 && q <= 32);
    assert!(geo.w <= 32 && gx.len() >= geo.c * hw && gg.len() >= lay.a * lay.b * q);
    let rows = geo.c * geo.kh * geo.kw;
    assert!(rows == 0 || (rows - 1) * stride + col0 + lay.width() <= cols.len());
    let (m0, m1) = (lanes(q), lanes(q.saturating_sub(16)));
    // interleaving: output lanes 0..16 take e0 o0 e1 o1 … e7 o7, lanes 16..32 e8 o8 …
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    // Per column phase b, where its grid rows land in an input row's even or odd columns:
    // ix = 2·px + b − PW is odd when b + PW is, at index px + ⌊(b + PW) / 2⌋ − PW (b + PW is
    // (b − PW) + 2·PW: the same parity, in unsigned arithmetic). Valid px (px0..px1) give
    // ix >= 0, so the first lane is not negative. (odd, first lane, lanes, px0) per b; empty
    // lanes where no window column is inside.
    let columns: Vec<(bool, usize, __mmask16, usize)> = (0..lay.b)
        .map(|b| {
            let (px0, px1) = range_inside(wq, 2, b, geo.pw, geo.w);
            if px0 >= px1 {
                return (false, 0, 0, 0);
            }
            let (odd, base) = ((b + geo.pw) % 2 == 1, (b + geo.pw) / 2);
            let lane0 = px0 + base - geo.pw;
            (odd, lane0, lanes(px1 - px0) << lane0, px0)
        })
        .collect();
    for c in 0..geo.c {
        // 1. each grid (a, b): the sum of the segments (ky, kx, d) with dy·SH + ky = a and
        //    dx·SW + kx = b
        for a in 0..lay.a {
            for b in 0..lay.b {
                // SAFETY: masked to the `q` values of each segment and grid (asserted above).
                unsafe {
                    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                    for dy in 0..lay.pool[0] {
                        let Some(ky) = a.checked_sub(dy * geo.sh).filter(|&k| k < geo.kh) else {
                            continue;
                        };
                        for dx in 0..lay.pool[1] {
                            let Some(kx) = b.checked_sub(dx * geo.sw).filter(|&k| k < geo.kw)
                            else {
                                continue;
                            };
                            let r = (c * geo.kh + ky) * geo.kw + kx;
                            let d = dy * lay.pool[1] + dx;
                            let src = cols.as_ptr().add(r * stride + col0 + d * q);
                            s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(m0, src));
                            if q > 16 {
                                s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(m1, src.add(16)));
                            }
                        }
                    }
                    let dst = gg.as_mut_ptr().add(lay.grid(0, a, b));
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
            for a in 0..lay.a {
                // the window row py with py·step0 + a − PH = iy
                let Some(num) = (iy + geo.ph).checked_sub(a) else {
                    continue;
                };
                if num % lay.step[0] != 0 || num / lay.step[0] >= lay.hq {
                    continue;
                }
                let py = num / lay.step[0];
                for (b, &(odd, lane0, mask, px0)) in columns.iter().enumerate() {
                    // SAFETY: only the lanes in `mask` are read: grid row values px0..px1.
                    unsafe {
                        let row = gg.as_ptr().add(lay.grid(0, a, b) + py * wq + px0);
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
    fn im2col(geo: &Geometry, lay: &Layout, g: &[f32], cols: &mut [f32], stride: usize, col0: usize) {
        let q = lay.q;
        for c in 0..geo.c {
            for ky in 0..geo.kh {
                for kx in 0..geo.kw {
                    let r = (c * geo.kh + ky) * geo.kw + kx;
                    let row = &mut cols[r * stride + col0..][..lay.width()];
                    for dy in 0..lay.pool[0] {
                        for dx in 0..lay.pool[1] {
                            let d = dy * lay.pool[1] + dx;
                            let src = &g[lay.grid(c, dy * geo.sh + ky, dx * geo.sw + kx)..][..q];
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
    fn col2im(geo: &Geometry, lay: &Layout, cols: Cols, gg: &mut [f32], phases: &mut [f32], gx: &mut [f32]) {
        let Cols { data: cols, stride, col0 } = cols;
        let (q, wq, step) = (lay.q, lay.wq, lay.step[1]);
        let hw = geo.h * geo.w;
        let len = hw.div_ceil(step);
        let gg = &mut gg[..lay.a * lay.b * q];
        let f = &mut phases[..step * len];
        for c in 0..geo.c {
            gg.fill(0.0);
            for ky in 0..geo.kh {
                for kx in 0..geo.kw {
                    let r = (c * geo.kh + ky) * geo.kw + kx;
                    let row = &cols[r * stride + col0..][..lay.width()];
                    for dy in 0..lay.pool[0] {
                        for dx in 0..lay.pool[1] {
                            let d = dy * lay.pool[1] + dx;
                            let at = lay.grid(0, dy * geo.sh + ky, dx * geo.sw + kx);
                            for (t, s) in gg[at..at + q].iter_mut().zip(&row[d * q..(d + 1) * q]) {
                                *t += s;
                            }
                        }
                    }
                }
            }
            f.fill(0.0);
            for a in 0..lay.a {
                let (py0, py1) = range_inside(lay.hq, lay.step[0], a, geo.ph, geo.h);
                for b in 0..lay.b {
                    let (px0, px1) = range_inside(wq, step, b, geo.pw, geo.w);
                    if px0 >= px1 {
                        continue;
                    }
                    let src = &gg[lay.grid(0, a, b)..][..q];
                    for py in py0..py1 {
                        let iy = py * lay.step[0] + a - geo.ph;
                        let t0 = iy * geo.w + px0 * step + b - geo.pw;
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

/// Whether ReLU lets the gradient through an output `y` (as burn's `relu_backward` decides:
/// for `y > 0` and for NaN).
#[inline(always)]
fn relu_passes(y: f32) -> bool {
    y.is_nan() || y > 0.0
}

super::simd::multiversion! {
    avx512 = super::avx512::pool_relu;
    /// Pools each plane of `z` (`O` rows `zstride` apart, `D·Q` values each in the pooled
    /// order) into `yi` (`[O, Q]`): the
    /// first maximum of each window wins, NaN wins; its candidate `d` goes to `ii` unless
    /// that is empty. Then ReLU if `relu`.
    fn pool_relu(
        z: &[f32],
        zstride: usize,
        q: usize,
        d: usize,
        relu: bool,
        yi: &mut [f32],
        ii: &mut [u32],
    ) {
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
    avx512 = super::avx512::route;
    /// One image's convolution-output gradient in the pooled order: for each of the `O`
    /// planes, candidate `d` of window `i` gets `g[i]` if it won (`idx[i] == d`) and ReLU
    /// passed it (`y` is the output, empty without ReLU), else 0. Written into the rows of
    /// `dst`; each plane's sum is added to `gb`.
    fn route(src: Routing, q: usize, d: usize, dst: ColsMut, gb: &mut [f32]) {
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
    #[cfg(target_arch = "x86_64")]
    if super::direct::applies(geo, pool) {
        return super::direct::forward(geo, x, w, bias, relu, with_indices);
    }
    #[cfg(target_arch = "x86_64")]
    if super::direct::conv_applies(geo) {
        // other windows: the direct convolution, then the tiled pooling (the unfused path's
        // arithmetic, so the same bits)
        return conv_then_pool(geo, pool, x, w, bias, relu, with_indices);
    }
    let lay = Layout::new(geo, pool);
    let (ckk, o, q, pw) = (geo.ckk(), geo.o, lay.q, lay.width());
    let chw = geo.c * geo.h * geo.w;
    let mut y = vec![0.0f32; geo.n * o * q];
    let mut idx = vec![0u32; if with_indices { geo.n * o * q } else { 0 }];
    // Images per product: more columns for gemm, and the weights packed once for several
    // images; few enough for the block to stay in L2.
    let nb = (64 * 1024 / ((ckk + o) * pw).max(1)).clamp(1, 8);
    let lens = [
        lay.phases_len(geo),
        lay.grids_len(geo),
        ckk * nb * pw,
        o * nb * pw,
    ];
    let task = |b0: usize, ys: &mut [f32], is: &mut [u32]| {
        let images = ys.len() / (o * q).max(1);
        let width = images * pw;
        super::scratch::with(lens, |[phases, grid, cols, z]| {
            for j in 0..images {
                let xi = &x[(b0 + j) * chw..(b0 + j + 1) * chw];
                grids_best(geo, &lay, xi, phases, grid);
                im2col(geo, &lay, grid, cols, width, j * pw);
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
                pool_relu(&z[j * pw..], width, q, lay.d, relu, yi, ii);
            }
        })
    };
    let par = super::parallel(geo.n * o * pw * ckk);
    super::for_each_output_chunk(&mut y, &mut idx, (nb * o * q).max(1), par, |t, ys, is| {
        task(t * nb, ys, is)
    });
    (y, idx)
}

/// [`forward`] as the direct convolution followed by the tiled pooling, with each winner's
/// position in its plane turned into its candidate in the window.
#[cfg(target_arch = "x86_64")]
fn conv_then_pool(
    geo: &Geometry,
    pool: [usize; 2],
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    relu: bool,
    with_indices: bool,
) -> (Vec<f32>, Vec<u32>) {
    let z = super::direct::conv(geo, x, w, bias);
    let (mut y, mut idx) =
        super::pool::forward(&z, [geo.n * geo.o, geo.ho, geo.wo], pool, with_indices);
    let (hq, wq) = (geo.ho / pool[0], geo.wo / pool[1]);
    if with_indices && hq * wq > 0 {
        for plane in idx.chunks_mut(hq * wq) {
            for (i, at) in plane.iter_mut().enumerate() {
                let (oy, ox) = (i / wq, i % wq);
                let (iy, ix) = (*at as usize / geo.wo, *at as usize % geo.wo);
                *at = ((iy - oy * pool[0]) * pool[1] + ix - ox * pool[1]) as u32;
            }
        }
    }
    if relu {
        for v in &mut y {
            *v = if relu_passes(*v) { *v } else { 0.0 };
        }
    }
    (y, idx)
}

/// What the backward of [`forward`] reads: its input `x` and filters `w`, the winners `idx` it
/// returned and its output `y` when the block ends in ReLU (`None` otherwise), and the output
/// gradient `g`; `idx`, `y` and `g` are `[N, O, Q]`.
pub(crate) struct Saved<'a> {
    pub x: &'a [f32],
    pub w: &'a [f32],
    pub y: Option<&'a [f32]>,
    pub idx: &'a [u32],
    pub g: &'a [f32],
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
    #[cfg(target_arch = "x86_64")]
    if super::winners::applies(geo, pool) {
        return super::winners::backward(geo, pool, saved, x_grad);
    }
    let Saved { x, w, y, idx, g } = saved;
    let lay = Layout::new(geo, pool);
    let (ckk, o, q, pw) = (geo.ckk(), geo.o, lay.q, lay.width());
    let chw = geo.c * geo.h * geo.w;
    assert!(
        g.len() == geo.n * o * q && idx.len() == g.len() && y.is_none_or(|y| y.len() == g.len()),
        "conv2d_pool: gradient, indices and output must be [N, O, HO / PH, WO / PW]"
    );
    // Images per block: the block's unfolded columns, output gradient and (with `x_grad`)
    // unfolded input gradient, `(2·CKK + O)·nb·D·Q` values, within 64 Ki values (256 KiB,
    // well inside a core's L2 cache). Measured on the Keras convnet (Xeon, AVX-512): 32–128 Ki
    // train alike, 1 Mi is 20 % slower.
    let per_image = (ckk * (1 + usize::from(x_grad)) + o) * pw;
    let nb = (64 * 1024 / per_image.max(1)).clamp(1, 16);
    let mut gx = vec![0.0f32; if x_grad { geo.n * chw } else { 0 }];
    let (per_thread, tasks) = super::image_tasks(geo.n, chw, &mut gx);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = tasks
        .into_par_iter()
        .map(|(start, gx_part)| {
            let end = (start + per_thread).min(geo.n);
            let mut gw = vec![0.0f32; o * ckk];
            let mut gb = vec![0.0f32; o];
            let lens = [
                lay.grids_len(geo),
                lay.phases_len(geo),
                ckk * nb * pw,
                o * nb * pw,
                if x_grad { ckk * nb * pw } else { 0 },
            ];
            super::scratch::with(lens, |[grid, phases, cols, dz, xcols]| {
                let mut first = true;
                let mut b0 = start;
                while b0 < end {
                    let b1 = (b0 + nb).min(end);
                    let width = (b1 - b0) * pw;
                    let dz = &mut dz[..o * width];
                    for (j, img) in (b0..b1).enumerate() {
                        let xi = &x[img * chw..(img + 1) * chw];
                        grids_best(geo, &lay, xi, phases, grid);
                        im2col(geo, &lay, grid, cols, width, j * pw);
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
                            col0: j * pw,
                        };
                        route(src, q, lay.d, dst, &mut gb);
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
                                col0: j * pw,
                            };
                            col2im_best(geo, &lay, cols, grid, phases, gxi);
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
