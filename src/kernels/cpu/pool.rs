//! Non-overlapping ("tiled") max pooling: forward with the position of each window's maximum,
//! and the backward that routes each output gradient to that position.

use rayon::prelude::*;

use super::element::beats;
use super::threads::{for_each_output_chunk, parallel};

/// Planes per parallel task in the pooling kernels.
const PLANES_PER_TASK: usize = 16;

/// Max over each `KH×KW` window of `planes` images `[H, W]`; with `with_indices`, also the
/// position of each maximum in its plane (`iy·W + ix`; the first maximum wins, NaN wins).
pub(crate) fn forward(
    x: &[f32],
    [planes, h, w]: [usize; 3],
    [kh, kw]: [usize; 2],
    with_indices: bool,
) -> (Vec<f32>, Vec<u32>) {
    let (ho, wo) = (h / kh, w / kw);
    let (hw, out) = (h * w, ho * wo);
    let mut y = vec![0.0f32; planes * out];
    let mut idx = vec![0u32; if with_indices { planes * out } else { 0 }];
    let par = parallel(planes * hw);
    for_each_output_chunk(&mut y, &mut idx, PLANES_PER_TASK * out, par, |t, ys, is| {
        let p0 = t * PLANES_PER_TASK;
        pool_planes(&x[p0 * hw..], [h, w], [kh, kw], ys, is);
    });
    (y, idx)
}

super::simd::multiversion! {
    /// [`plane`] for consecutive planes: `x` `[.., H, W]` into `ys` `[.., H / KH, W / KW]`
    /// (as many planes as `ys` holds), and their indices into `is` unless it is empty.
    pub(crate) fn pool_planes(x: &[f32], hw: [usize; 2], k: [usize; 2], ys: &mut [f32], is: &mut [u32]) {
        let (inp, out) = (hw[0] * hw[1], (hw[0] / k[0]) * (hw[1] / k[1]));
        for (j, yp) in ys.chunks_mut(out).enumerate() {
            let ip = if is.is_empty() {
                &mut []
            } else {
                &mut is[j * out..(j + 1) * out]
            };
            plane(&x[j * inp..(j + 1) * inp], hw, k, yp, ip);
        }
    }
}

/// Max over each `KH×KW` window of one plane `xp` (`[H, W]`) into `yp` (`[H / KH, W / KW]`);
/// unless `ip` is empty, also the position of each maximum (`iy·W + ix`; the first maximum
/// wins, NaN wins). Inlined into its callers, which are compiled per instruction set (`multiversion!`).
#[inline(always)]
pub(crate) fn plane(
    xp: &[f32],
    [h, w]: [usize; 2],
    [kh, kw]: [usize; 2],
    yp: &mut [f32],
    ip: &mut [u32],
) {
    let (ho, wo) = (h / kh, w / kw);
    debug_assert!(xp.len() >= h * w && yp.len() == ho * wo);
    if kh == 2 && kw == 2 {
        plane_2x2(xp, w, yp, ip, ho, wo);
        return;
    }
    for oy in 0..ho {
        for ox in 0..wo {
            let mut best = f32::NEG_INFINITY;
            let mut at = (oy * kh) * w + ox * kw;
            for dy in 0..kh {
                let row = (oy * kh + dy) * w + ox * kw;
                for (dx, &v) in xp[row..row + kw].iter().enumerate() {
                    if v > best || (v.is_nan() && !best.is_nan()) {
                        best = v;
                        at = row + dx;
                    }
                }
            }
            yp[oy * wo + ox] = best;
            if !ip.is_empty() {
                ip[oy * wo + ox] = at as u32;
            }
        }
    }
}

/// 2×2 windows of one plane (`w` columns): outputs `y` (`[HO, WO]`) and, unless `idx` is
/// empty, the position of each maximum. The window is read in row-major order: the larger of
/// the top pair, the larger of the bottom pair, then the larger of those two.
#[inline(always)]
fn plane_2x2(x: &[f32], w: usize, y: &mut [f32], idx: &mut [u32], ho: usize, wo: usize) {
    for oy in 0..ho {
        let r0 = &x[2 * oy * w..][..2 * wo];
        let r1 = &x[(2 * oy + 1) * w..][..2 * wo];
        let yr = &mut y[oy * wo..][..wo];
        if idx.is_empty() {
            for (i, out) in yr.iter_mut().enumerate() {
                let (a0, a1, b0, b1) = (r0[2 * i], r0[2 * i + 1], r1[2 * i], r1[2 * i + 1]);
                let m0 = if beats(a0, a1) { a1 } else { a0 };
                let m1 = if beats(b0, b1) { b1 } else { b0 };
                *out = if beats(m0, m1) { m1 } else { m0 };
            }
        } else {
            let ir = &mut idx[oy * wo..][..wo];
            let (top, w32) = ((2 * oy * w) as u32, w as u32);
            for (i, (out, at)) in yr.iter_mut().zip(ir.iter_mut()).enumerate() {
                let (a0, a1, b0, b1) = (r0[2 * i], r0[2 * i + 1], r1[2 * i], r1[2 * i + 1]);
                let i0 = top + 2 * i as u32;
                let (c0, c1) = (beats(a0, a1), beats(b0, b1));
                let m0 = if c0 { a1 } else { a0 };
                let j0 = if c0 { i0 + 1 } else { i0 };
                let m1 = if c1 { b1 } else { b0 };
                let j1 = if c1 { i0 + w32 + 1 } else { i0 + w32 };
                let c = beats(m0, m1);
                *out = if c { m1 } else { m0 };
                *at = if c { j1 } else { j0 };
            }
        }
    }
}

/// Routes each output gradient to the position its window's maximum came from.
pub(crate) fn backward(
    g: &[f32],
    idx: &[u32],
    [planes, h, w]: [usize; 3],
    [kh, kw]: [usize; 2],
) -> Vec<f32> {
    let (hw, out) = (h * w, (h / kh) * (w / kw));
    assert_eq!(g.len(), planes * out, "max_pool2d_tiled: gradient shape");
    let mut gx = vec![0.0f32; planes * hw];
    gx.par_chunks_mut(PLANES_PER_TASK * hw)
        .enumerate()
        .for_each(|(t, gxs)| {
            for (k, gp) in gxs.chunks_mut(hw).enumerate() {
                let p = t * PLANES_PER_TASK + k;
                for (&i, &v) in idx[p * out..(p + 1) * out]
                    .iter()
                    .zip(&g[p * out..(p + 1) * out])
                {
                    gp[i as usize] += v;
                }
            }
        });
    gx
}
