//! 2D convolution as im2col + one matrix product: forward, input gradient (`Wᵀ·dY` + col2im)
//! and weight/bias gradients (blocks of unfolded images, one product each). The path of every
//! CPU, and of the convolutions the direct one does not take.

use rayon::prelude::*;

use super::gemm::{forward_product, input_grad_product, weight_grad_product};
use super::geometry::Geometry;
use super::threads::{parallel, sum_partials};

/// Unfolds image `x` (`[C, H, W]`) into `cols` (`[C·KH·KW, cols_stride]`, columns
/// `col0..col0 + HO·WO` written; rows indexed `(c, ky, kx)`). Out-of-image taps are 0.
fn im2col(geo: &Geometry, x: &[f32], cols: &mut [f32], cols_stride: usize, col0: usize) {
    let (hw, p) = (geo.h * geo.w, geo.p());
    for c in 0..geo.c {
        let xc = &x[c * hw..(c + 1) * hw];
        for ky in 0..geo.kh {
            let (oy0, oy1) = geo.oy_range(ky);
            for kx in 0..geo.kw {
                let r = (c * geo.kh + ky) * geo.kw + kx;
                let row = &mut cols[r * cols_stride + col0..r * cols_stride + col0 + p];
                let (ox0, ox1) = geo.ox_range(kx);
                for oy in 0..geo.ho {
                    let dst = &mut row[oy * geo.wo..(oy + 1) * geo.wo];
                    if oy < oy0 || oy >= oy1 || ox0 >= ox1 {
                        dst.fill(0.0);
                        continue;
                    }
                    let iy = oy * geo.sh + ky - geo.pad_h;
                    let src = &xc[iy * geo.w..(iy + 1) * geo.w];
                    dst[..ox0].fill(0.0);
                    dst[ox1..].fill(0.0);
                    if geo.sw == 1 {
                        let ix0 = ox0 + kx - geo.pad_w;
                        dst[ox0..ox1].copy_from_slice(&src[ix0..ix0 + (ox1 - ox0)]);
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate().take(ox1).skip(ox0) {
                            *d = src[ox * geo.sw + kx - geo.pad_w];
                        }
                    }
                }
            }
        }
    }
}

/// Adds `cols` (`[C·KH·KW, cols_stride]`, columns `col0..col0 + HO·WO` read) back into image
/// gradient `gx` (`[C, H, W]`).
fn col2im(geo: &Geometry, cols: &[f32], cols_stride: usize, col0: usize, gx: &mut [f32]) {
    let (hw, p) = (geo.h * geo.w, geo.p());
    for c in 0..geo.c {
        let gc = &mut gx[c * hw..(c + 1) * hw];
        for ky in 0..geo.kh {
            let (oy0, oy1) = geo.oy_range(ky);
            for kx in 0..geo.kw {
                let r = (c * geo.kh + ky) * geo.kw + kx;
                let row = &cols[r * cols_stride + col0..r * cols_stride + col0 + p];
                let (ox0, ox1) = geo.ox_range(kx);
                if ox0 >= ox1 {
                    continue;
                }
                for oy in oy0..oy1 {
                    let iy = oy * geo.sh + ky - geo.pad_h;
                    let src = &row[oy * geo.wo + ox0..oy * geo.wo + ox1];
                    let dst = &mut gc[iy * geo.w..(iy + 1) * geo.w];
                    if geo.sw == 1 {
                        let ix0 = ox0 + kx - geo.pad_w;
                        for (d, s) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (i, s) in src.iter().enumerate() {
                            dst[(ox0 + i) * geo.sw + kx - geo.pad_w] += s;
                        }
                    }
                }
            }
        }
    }
}

/// Images per matrix product in the weight gradient: enough columns (`nb·HO·WO`) for gemm
/// to run near peak, small enough for the unfolded block to stay in cache.
fn block_images(geo: &Geometry) -> usize {
    let per_image = geo.ckk() * geo.p();
    (256 * 1024 / per_image.max(1)).clamp(1, 16)
}

/// Weight and bias gradients: per thread, blocks of images unfolded side by side and one
/// product `dY_block[O, nb·P] · cols_blockᵀ[nb·P, C·K·K]`; the per-thread sums are added.
pub(crate) fn wb_grad(geo: &Geometry, x: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (ckk, p, o) = (geo.ckk(), geo.p(), geo.o);
    let chw = geo.c * geo.h * geo.w;
    let nb = block_images(geo);
    let threads = rayon::current_num_threads().max(1);
    let per_thread = geo.n.div_ceil(threads).max(1);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..geo.n)
        .step_by(per_thread)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let end = (start + per_thread).min(geo.n);
            let mut gw = vec![0.0f32; o * ckk];
            let mut gb = vec![0.0f32; o];
            let mut cols = vec![0.0f32; ckk * nb * p];
            let mut gblock = vec![0.0f32; o * nb * p];
            let mut first = true;
            let mut b0 = start;
            while b0 < end {
                let b1 = (b0 + nb).min(end);
                let width = (b1 - b0) * p;
                for (j, img) in (b0..b1).enumerate() {
                    im2col(geo, &x[img * chw..(img + 1) * chw], &mut cols, width, j * p);
                    let gi = &g[img * o * p..(img + 1) * o * p];
                    for oc in 0..o {
                        let src = &gi[oc * p..(oc + 1) * p];
                        gblock[oc * width + j * p..oc * width + (j + 1) * p].copy_from_slice(src);
                        gb[oc] += src.iter().sum::<f32>();
                    }
                }
                weight_grad_product((o, ckk, width), &gblock, &cols, &mut gw, !first);
                first = false;
                b0 = b1;
            }
            (gw, gb)
        })
        .collect();
    sum_partials(partials, o * ckk, o)
}

/// One image's convolution `z[O, P] = W[O, C·K·K] · cols[C·K·K, P] + b`, with `cols` as the
/// unfolding buffer.
fn conv_image(geo: &Geometry, x: &[f32], w: &[f32], b: &[f32], cols: &mut [f32], z: &mut [f32]) {
    let (ckk, p, o) = (geo.ckk(), geo.p(), geo.o);
    im2col(geo, x, cols, p, 0);
    forward_product((o, ckk, p), w, b, cols, z);
}

/// Forward: per image, `Yₙ[O, P] = W[O, C·K·K] · colsₙ[C·K·K, P] + b`.
pub(crate) fn forward(geo: &Geometry, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let (ckk, p, o) = (geo.ckk(), geo.p(), geo.o);
    let chw = geo.c * geo.h * geo.w;
    let mut y = vec![0.0f32; geo.n * o * p];
    if parallel(geo.n * o * p * ckk) {
        y.par_chunks_mut(o * p).enumerate().for_each_init(
            || vec![0.0f32; ckk * p],
            |cols, (img, yi)| conv_image(geo, &x[img * chw..(img + 1) * chw], w, b, cols, yi),
        );
    } else {
        let mut cols = vec![0.0f32; ckk * p];
        for (img, yi) in y.chunks_mut((o * p).max(1)).enumerate() {
            conv_image(geo, &x[img * chw..(img + 1) * chw], w, b, &mut cols, yi);
        }
    }
    y
}

/// Input gradient: per image, `cols = Wᵀ[C·K·K, O] · dYₙ[O, P]`, then col2im.
pub(crate) fn x_grad(geo: &Geometry, w: &[f32], g: &[f32]) -> Vec<f32> {
    let (ckk, p, o) = (geo.ckk(), geo.p(), geo.o);
    let chw = geo.c * geo.h * geo.w;
    let mut gx = vec![0.0f32; geo.n * chw];
    gx.par_chunks_mut(chw).enumerate().for_each_init(
        || vec![0.0f32; ckk * p],
        |cols, (img, gxi)| {
            input_grad_product((o, ckk, p), w, &g[img * o * p..(img + 1) * o * p], cols);
            col2im(geo, cols, p, 0, gxi);
        },
    );
    gx
}
