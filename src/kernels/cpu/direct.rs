//! The fused block's forward as a *direct* convolution on AVX-512: convolution (stride 1),
//! 2×2 max pooling, bias and ReLU computed in registers, with nothing unfolded and no
//! convolution output in memory.
//!
//! # How
//! The register tile is `NW` pooling windows side by side (`2 × 2·NW` output positions) by
//! `16·V` output channels: `4·NW·V` vectors of accumulators (24 for `NW = 3, V = 2`). For each
//! tap `k = (c, ky, kx)` of the filters, the tile loads `V` vectors of weights (packed once per
//! call as `[K][16·V]`, channels last) and broadcasts the input value under each of its output
//! positions: one fused multiply-add per accumulator, which is all the loop does. The input is
//! read where it is (channels first, `[C, H, W]`, zero-padded into a per-thread copy only when
//! the convolution pads): the tap's offset `c·H·W + ky·W + kx` moves the whole tile, and the
//! positions are fixed displacements from it.
//!
//! When the taps are done the accumulators hold `bias + Σ w·x` (the bias is where the sum
//! starts, as in the im2col path), and each window's four candidates are pooled in registers —
//! the first maximum wins and NaN wins, as everywhere in netcalc — then ReLU, and the tile is
//! stored channels last into a per-thread `[Q, O]` buffer, which is transposed into the
//! `[O, Q]` output of the image at the end. The winners' candidate numbers `d = dy·2 + dx` are
//! those of the im2col path, so its backward reads them unchanged.
//!
//! Images are spread over the threads; a batch with fewer images than threads splits each
//! image's window rows instead.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::avx512::gather_strided;
use super::geometry::Geometry;
use super::path::{direct_block_fits, direct_conv_fits};
use super::scratch;
use super::simd::Avx512;
use super::threads::{for_each_chunk, for_each_output_chunk, parallel};

/// What every tile of one call shares: the padded input's sizes, the taps' offsets, the
/// packed weights and biases.
struct Plan {
    /// Padded input rows and columns, and values per padded image.
    hp: usize,
    wp: usize,
    chw_p: usize,
    /// Output channels rounded up to 16, and windows per image.
    opad: usize,
    hq: usize,
    wq: usize,
    /// Offset of each tap `(c, ky, kx)` in a padded image: `c·HP·WP + ky·WP + kx`.
    taps: Vec<usize>,
    /// Weights per channel block of 32 (16 for a last odd block), each `[K][width]`.
    packed: Vec<f32>,
    /// Biases, zero past `O`.
    bias: Vec<f32>,
}

impl Plan {
    fn new(avx512: Avx512, geo: &Geometry, w: &[f32], bias: &[f32]) -> Self {
        let (hp, wp) = (geo.h + 2 * geo.pad_h, geo.w + 2 * geo.pad_w);
        let opad = geo.o.div_ceil(16) * 16;
        let ckk = geo.ckk();
        let mut taps = Vec::with_capacity(ckk);
        for c in 0..geo.c {
            for ky in 0..geo.kh {
                for kx in 0..geo.kw {
                    taps.push(c * hp * wp + ky * wp + kx);
                }
            }
        }
        let mut packed = vec![0.0f32; opad * ckk];
        for (o0, width) in blocks(opad) {
            let filters = (o0 + width).min(geo.o).saturating_sub(o0);
            // dst[k·width + j] = w[(o0 + j)·ckk + k]: the block's filters, tap by tap
            // SAFETY: the `Avx512` token proves detection.
            unsafe {
                gather_strided(
                    avx512,
                    &w[o0 * ckk..],
                    ckk,
                    filters,
                    ckk,
                    &mut packed[o0 * ckk..(o0 + width) * ckk],
                    width,
                )
            };
        }
        let mut b = vec![0.0f32; opad];
        b[..geo.o].copy_from_slice(&bias[..geo.o]);
        Self {
            hp,
            wp,
            chw_p: geo.c * hp * wp,
            opad,
            hq: geo.ho / 2,
            wq: geo.wo / 2,
            taps,
            packed,
            bias: b,
        }
    }
}

/// The channel blocks of `opad` channels: `(first channel, width)`, 32 wide but for a last
/// block of 16.
fn blocks(opad: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..opad)
        .step_by(32)
        .map(move |o0| (o0, (opad - o0).min(32)))
}

/// Forward of the fused block (stride 1, 2×2 windows): the output `[N, O, HQ, WQ]` and, with
/// `with_indices`, each window's winning candidate, as `fused::forward` returns them.
pub(crate) fn forward(
    avx512: Avx512,
    geo: &Geometry,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    relu: bool,
    with_indices: bool,
) -> (Vec<f32>, Vec<u32>) {
    assert!(
        direct_block_fits(geo, [2, 2]),
        "direct::forward: stride 1, 2×2"
    );
    let chw = geo.c * geo.h * geo.w;
    assert!(x.len() >= geo.n * chw && w.len() >= geo.o * geo.ckk() && bias.len() >= geo.o);
    let plan = Plan::new(avx512, geo, w, bias);
    let (o, q) = (geo.o, plan.hq * plan.wq);
    let mut y = vec![0.0f32; geo.n * o * q];
    let mut idx = vec![0u32; if with_indices { geo.n * o * q } else { 0 }];
    if o * q == 0 {
        return (y, idx);
    }
    let padded = geo.pad_h > 0 || geo.pad_w > 0;
    let lens = [
        if padded { plan.chw_p } else { 0 },
        q * plan.opad,
        if with_indices { q * plan.opad } else { 0 },
    ];
    let threads = rayon::current_num_threads().max(1);
    let par = parallel(geo.n * o * geo.ho * geo.wo * geo.ckk());
    if geo.n >= threads || !par {
        // one image per task
        let image = |img: usize, ys: &mut [f32], is: &mut [u32]| {
            scratch::with(lens, |[xp, tile, tidx]| {
                let src = pad(geo, &plan, &x[img * chw..(img + 1) * chw], xp);
                rows(avx512, &plan, src, 0..plan.hq, relu, tile, tidx);
                transpose(avx512, &plan, o, tile, tidx, ys, is);
            })
        };
        for_each_output_chunk(&mut y, &mut idx, o * q, par, image);
    } else {
        // few images: each image's window rows spread over the threads
        let mut xp = vec![0.0f32; lens[0]];
        let mut tile = vec![0.0f32; lens[1]];
        let mut tidx = vec![0.0f32; lens[2]];
        let row_len = plan.wq * plan.opad;
        let per_task = plan.hq.div_ceil(threads).max(1);
        for img in 0..geo.n {
            let src = pad(geo, &plan, &x[img * chw..(img + 1) * chw], &mut xp);
            let rows_of = |t: usize, ts: &mut [f32], is: &mut [f32]| {
                let r0 = t * per_task;
                let r1 = (r0 + per_task).min(plan.hq);
                rows_at(avx512, &plan, src, r0..r1, relu, ts, is);
            };
            if with_indices {
                tile.par_chunks_mut(per_task * row_len)
                    .zip(tidx.par_chunks_mut(per_task * row_len))
                    .enumerate()
                    .for_each(|(t, (ts, is))| rows_of(t, ts, is));
            } else {
                tile.par_chunks_mut(per_task * row_len)
                    .enumerate()
                    .for_each(|(t, ts)| rows_of(t, ts, &mut []));
            }
            let at = img * o * q..(img + 1) * o * q;
            let is = if with_indices {
                &mut idx[at.clone()]
            } else {
                &mut []
            };
            transpose(avx512, &plan, o, &tile, &tidx, &mut y[at], is);
        }
    }
    (y, idx)
}

/// The image to read: `x` itself, or `x` zero-padded into `xp` when the convolution pads.
fn pad<'a>(geo: &Geometry, plan: &Plan, x: &'a [f32], xp: &'a mut [f32]) -> &'a [f32] {
    if geo.pad_h == 0 && geo.pad_w == 0 {
        return x;
    }
    xp.fill(0.0);
    for c in 0..geo.c {
        for iy in 0..geo.h {
            let src = &x[(c * geo.h + iy) * geo.w..][..geo.w];
            let at = (c * plan.hp + iy + geo.pad_h) * plan.wp + geo.pad_w;
            xp[at..at + geo.w].copy_from_slice(src);
        }
    }
    &xp[..plan.chw_p]
}

/// Window rows `rows` of one image into `tile` (`[Q, OPAD]`, the whole image's) and, unless
/// `tidx` is empty, the winners into `tidx`.
fn rows(
    avx512: Avx512,
    plan: &Plan,
    src: &[f32],
    range: std::ops::Range<usize>,
    relu: bool,
    tile: &mut [f32],
    tidx: &mut [f32],
) {
    let at = range.start * plan.wq * plan.opad;
    let tidx = if tidx.is_empty() {
        tidx
    } else {
        &mut tidx[at..]
    };
    rows_at(avx512, plan, src, range, relu, &mut tile[at..], tidx);
}

/// Window rows `rows` of one image into `tile`, whose first value is window row
/// `rows.start`'s (and `tidx` likewise, unless empty).
fn rows_at(
    avx512: Avx512,
    plan: &Plan,
    src: &[f32],
    rows: std::ops::Range<usize>,
    relu: bool,
    tile: &mut [f32],
    tidx: &mut [f32],
) {
    let ckk = plan.taps.len();
    let (wq, opad) = (plan.wq, plan.opad);
    let n_rows = rows.len();
    assert!(tile.len() >= n_rows * wq * opad);
    assert!(tidx.is_empty() || tidx.len() >= n_rows * wq * opad);
    let last_tap = plan.taps.last().copied().unwrap_or(0);
    for (o0, width) in blocks(opad) {
        let wts = &plan.packed[o0 * ckk..(o0 + width) * ckk];
        let b = &plan.bias[o0..o0 + width];
        for (r, py) in rows.clone().enumerate() {
            let mut px = 0;
            while px < wq {
                let nw = (wq - px).min(MAX_COLUMNS / 2);
                let origin = 2 * py * plan.wp + 2 * px;
                // the tile reads rows 2py, 2py + 1 and columns 2px .. 2px + 2·nw of every tap
                assert!(origin + last_tap + plan.wp + 2 * nw <= src.len());
                let out = (r * wq + px) * opad + o0;
                let t = Tile {
                    src: src[origin..].as_ptr(),
                    wp: plan.wp,
                    taps: &plan.taps,
                    w: wts.as_ptr(),
                    bias: b.as_ptr(),
                    out: tile[out..].as_mut_ptr(),
                    opad,
                    end: Epilogue::Pool {
                        relu,
                        idx: if tidx.is_empty() {
                            std::ptr::null_mut()
                        } else {
                            tidx[out..].as_mut_ptr()
                        },
                    },
                };
                // SAFETY: the assertions above keep every read inside `src`, `wts` and `b`
                // (`width` channels, `ckk` taps) and every write inside this row of `tile` /
                // `tidx` (`nw` windows of `width` channels).
                unsafe { run_tile(avx512, 2, 2 * nw, width, &t) };
                px += nw;
            }
        }
    }
}

/// Output positions a tile spans in a row, at most.
const MAX_COLUMNS: usize = 6;

/// What a tile does with its sums.
#[derive(Clone, Copy)]
enum Epilogue {
    /// Pools each 2×2 window (its columns in pairs) and stores window `j` at `out + j·opad`,
    /// then ReLU if `relu`; the winners at `idx` likewise (as `u32` bits) unless null.
    Pool { relu: bool, idx: *mut f32 },
    /// Stores position `(r, col)` at `out + (r·row + col)·opad`.
    Store { row: usize },
}

/// One tile's pointers: see [`tile_kernel`].
struct Tile<'a> {
    /// The input under the tile's first position, channel 0.
    src: *const f32,
    /// Padded row length.
    wp: usize,
    /// Tap offsets.
    taps: &'a [usize],
    /// Packed weights of the channel block, `[K][16·V]`.
    w: *const f32,
    /// The block's `16·V` biases.
    bias: *const f32,
    /// Where the tile's first output goes (`16·V` channels).
    out: *mut f32,
    /// Values between neighbouring positions of the output buffer.
    opad: usize,
    end: Epilogue,
}

/// [`tile_kernel`] for `rows × cols` positions and `width` channels.
///
/// # Safety
/// As [`tile_kernel`]; `rows` is 1 or 2, `cols` in `1..=MAX_COLUMNS`, `width` 16 or 32.
unsafe fn run_tile(avx512: Avx512, rows: usize, cols: usize, width: usize, t: &Tile) {
    macro_rules! arms {
        ($($r:literal $c:literal),*) => {
            // SAFETY: the `Avx512` token proves detection; the pointers are the caller's.
            unsafe {
                match (rows, cols, width) {
                    $(($r, $c, 32) => tile_kernel::<$r, $c, 2>(avx512, t),
                      ($r, $c, _) => tile_kernel::<$r, $c, 1>(avx512, t),)*
                    _ => unreachable!("tile of {rows}×{cols}"),
                }
            }
        };
    }
    arms!(1 1, 1 2, 1 3, 1 4, 1 5, 1 6, 2 1, 2 2, 2 3, 2 4, 2 5, 2 6)
}

/// `R × C` output positions by `16·V` channels: the taps' multiply-adds (from the bias), then
/// the epilogue.
///
/// # Safety
/// `t.src` must be readable at every tap offset plus `r·wp + col` (`r < R`, `col < C`), `t.w`
/// for `K·16·V` values, `t.bias` for `16·V`, and the epilogue's outputs writable. (The CPU's
/// AVX-512 is the token's.)
#[target_feature(enable = "avx512f")]
unsafe fn tile_kernel<const R: usize, const C: usize, const V: usize>(_: Avx512, t: &Tile) {
    // accumulator of position (r, col) at `r·C + col`
    let mut acc = [[_mm512_setzero_ps(); V]; 12];
    let width = 16 * V;
    // SAFETY: (whole body) the caller keeps every pointer valid (see the function's docs).
    unsafe {
        let b: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(t.bias.add(16 * v)));
        for a in acc.iter_mut().take(R * C) {
            *a = b;
        }
        let mut wk = t.w;
        for &off in t.taps {
            let wv: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(wk.add(16 * v)));
            let r0 = t.src.add(off);
            for r in 0..R {
                let row = r0.add(r * t.wp);
                for col in 0..C {
                    let xb = _mm512_set1_ps(*row.add(col));
                    let a = &mut acc[r * C + col];
                    for v in 0..V {
                        a[v] = _mm512_fmadd_ps(xb, wv[v], a[v]);
                    }
                }
            }
            wk = wk.add(width);
        }
        match t.end {
            Epilogue::Store { row } => {
                for r in 0..R {
                    for col in 0..C {
                        let at = (r * row + col) * t.opad;
                        for (v, &a) in acc[r * C + col].iter().enumerate() {
                            _mm512_storeu_ps(t.out.add(at + 16 * v), a);
                        }
                    }
                }
            }
            Epilogue::Pool { relu, idx } => {
                let zero = _mm512_setzero_ps();
                for j in 0..C / 2 {
                    // candidates d = dy·2 + dx of window j
                    let cands = [
                        acc[2 * j],
                        acc[2 * j + 1],
                        acc[C + 2 * j],
                        acc[C + 2 * j + 1],
                    ];
                    for v in 0..V {
                        let mut m = cands[0][v];
                        let mut at = _mm512_setzero_si512();
                        for (d, cand) in cands.iter().enumerate().skip(1) {
                            let c = cand[v];
                            // `beats(m, c)`: larger, or NaN over a number
                            let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(c, m)
                                | (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(c, c)
                                    & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(m, m));
                            m = _mm512_mask_blend_ps(take, m, c);
                            at = _mm512_mask_blend_epi32(take, at, _mm512_set1_epi32(d as i32));
                        }
                        if relu {
                            // burn's ReLU: NaN stays NaN, everything not above 0 becomes +0
                            let keep = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, zero)
                                | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(m, m);
                            m = _mm512_maskz_mov_ps(keep, m);
                        }
                        let at_out = j * t.opad + 16 * v;
                        _mm512_storeu_ps(t.out.add(at_out), m);
                        if !idx.is_null() {
                            _mm512_storeu_ps(idx.add(at_out), _mm512_castsi512_ps(at));
                        }
                    }
                }
            }
        }
    }
}

/// Convolution alone (stride 1): `[N, O, HO, WO]`, with the fused block's arithmetic (the same
/// bits before pooling).
pub(crate) fn conv(avx512: Avx512, geo: &Geometry, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    assert!(direct_conv_fits(geo), "direct::conv: stride 1");
    let chw = geo.c * geo.h * geo.w;
    assert!(x.len() >= geo.n * chw && w.len() >= geo.o * geo.ckk() && bias.len() >= geo.o);
    let plan = Plan::new(avx512, geo, w, bias);
    let (o, p) = (geo.o, geo.ho * geo.wo);
    let mut y = vec![0.0f32; geo.n * o * p];
    if o * p == 0 {
        return y;
    }
    let padded = geo.pad_h > 0 || geo.pad_w > 0;
    let lens = [if padded { plan.chw_p } else { 0 }, p * plan.opad];
    let ckk = plan.taps.len();
    let last_tap = plan.taps.last().copied().unwrap_or(0);
    let par = parallel(geo.n * o * p * ckk);
    for_each_chunk(&mut y, o * p, par, |img, ys| {
        scratch::with(lens, |[xp, tile]| {
            let src = pad(geo, &plan, &x[img * chw..(img + 1) * chw], xp);
            for (o0, width) in blocks(plan.opad) {
                let wts = &plan.packed[o0 * ckk..(o0 + width) * ckk];
                let b = &plan.bias[o0..o0 + width];
                let mut oy = 0;
                while oy < geo.ho {
                    let rows = (geo.ho - oy).min(2);
                    let mut ox = 0;
                    while ox < geo.wo {
                        let cols = (geo.wo - ox).min(MAX_COLUMNS);
                        let origin = oy * plan.wp + ox;
                        assert!(origin + last_tap + (rows - 1) * plan.wp + cols <= src.len());
                        let out = (oy * geo.wo + ox) * plan.opad + o0;
                        assert!(
                            out + ((rows - 1) * geo.wo + cols - 1) * plan.opad + width
                                <= tile.len()
                        );
                        let t = Tile {
                            src: src[origin..].as_ptr(),
                            wp: plan.wp,
                            taps: &plan.taps,
                            w: wts.as_ptr(),
                            bias: b.as_ptr(),
                            out: tile[out..].as_mut_ptr(),
                            opad: plan.opad,
                            end: Epilogue::Store { row: geo.wo },
                        };
                        // SAFETY: reads and writes inside the slices, as asserted just above.
                        unsafe { run_tile(avx512, rows, cols, width, &t) };
                        ox += cols;
                    }
                    oy += rows;
                }
            }
            // SAFETY: the `Avx512` token proves detection.
            unsafe { gather_strided(avx512, tile, plan.opad, p, o, ys, p) };
        })
    });
    y
}

/// One image's `[Q, OPAD]` tile (and winners) into its `[O, Q]` output (and winners).
fn transpose(
    avx512: Avx512,
    plan: &Plan,
    o: usize,
    tile: &[f32],
    tidx: &[f32],
    ys: &mut [f32],
    is: &mut [u32],
) {
    let q = plan.hq * plan.wq;
    // SAFETY: the `Avx512` token proves detection.
    unsafe {
        gather_strided(avx512, tile, plan.opad, q, o, ys, q);
        if !is.is_empty() {
            let is: &mut [f32] = bytemuck_u32(is);
            gather_strided(avx512, tidx, plan.opad, q, o, is, q);
        }
    }
}

/// `u32`s seen as the `f32`s with their bits (the winners travel as float bits).
fn bytemuck_u32(v: &mut [u32]) -> &mut [f32] {
    // SAFETY: `u32` and `f32` have the same size and alignment, and every bit pattern is a
    // valid `f32`; the slice is borrowed mutably for the result's lifetime.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<f32>(), v.len()) }
}
