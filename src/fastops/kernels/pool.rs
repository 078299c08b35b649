//! Non-overlapping ("tiled") max pooling: forward with the position of each window's maximum,
//! and the backward that routes each output gradient to that position.

use rayon::prelude::*;

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
    let task = |p0: usize, ys: &mut [f32], is: &mut [u32]| {
        for (k, yp) in ys.chunks_mut(out).enumerate() {
            let xp = &x[(p0 + k) * hw..(p0 + k + 1) * hw];
            let ip = if with_indices {
                &mut is[k * out..(k + 1) * out]
            } else {
                &mut []
            };
            plane(xp, [h, w], [kh, kw], yp, ip);
        }
    };
    let chunk = PLANES_PER_TASK * out;
    if with_indices {
        y.par_chunks_mut(chunk)
            .zip(idx.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(t, (ys, is))| task(t * PLANES_PER_TASK, ys, is));
    } else {
        y.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, ys)| task(t * PLANES_PER_TASK, ys, &mut []));
    }
    (y, idx)
}

/// Max over each `KH×KW` window of one plane `xp` (`[H, W]`) into `yp` (`[H / KH, W / KW]`);
/// unless `ip` is empty, also the position of each maximum (`iy·W + ix`; the first maximum
/// wins, NaN wins).
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

/// The larger of two candidates with their positions; on a tie the first wins, NaN wins.
#[inline(always)]
fn pick(x: f32, ix: u32, y: f32, iy: u32) -> (f32, u32) {
    if y > x || (y.is_nan() && !x.is_nan()) {
        (y, iy)
    } else {
        (x, ix)
    }
}

/// 2×2 windows of one plane (`w` columns): outputs `y` (`[HO, WO]`) and, unless `idx` is
/// empty, the position of each maximum.
fn plane_2x2(x: &[f32], w: usize, y: &mut [f32], idx: &mut [u32], ho: usize, wo: usize) {
    for oy in 0..ho {
        let r0 = &x[2 * oy * w..2 * oy * w + 2 * wo];
        let r1 = &x[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * wo];
        let yr = &mut y[oy * wo..(oy + 1) * wo];
        let base = (2 * oy * w) as u32;
        let (w32, mut col) = (w as u32, 0u32);
        if idx.is_empty() {
            for ((a, b), out) in r0
                .chunks_exact(2)
                .zip(r1.chunks_exact(2))
                .zip(yr.iter_mut())
            {
                let (m0, _) = pick(a[0], 0, a[1], 0);
                let (m1, _) = pick(b[0], 0, b[1], 0);
                *out = pick(m0, 0, m1, 0).0;
            }
        } else {
            let ir = &mut idx[oy * wo..(oy + 1) * wo];
            for (((a, b), out), at) in r0
                .chunks_exact(2)
                .zip(r1.chunks_exact(2))
                .zip(yr.iter_mut())
                .zip(ir.iter_mut())
            {
                let i = base + col;
                let (m0, i0) = pick(a[0], i, a[1], i + 1);
                let (m1, i1) = pick(b[0], i + w32, b[1], i + w32 + 1);
                let (m, im) = pick(m0, i0, m1, i1);
                *out = m;
                *at = im;
                col += 2;
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
