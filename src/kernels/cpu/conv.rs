//! 2D convolution as im2col + one matrix product: forward, input gradient (`Wᵀ·dY` + col2im)
//! and weight/bias gradients (blocks of unfolded images, one product each).

use rayon::prelude::*;

use super::gemm::{forward_product, input_grad_product, weight_grad_product};
use crate::functional::window::window_positions;

/// Sizes of one convolution.
pub(crate) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geometry {
    pub fn new(x: [usize; 4], w: [usize; 4], s: [usize; 2], p: [usize; 2]) -> Self {
        let [n, c, h, wd] = x;
        let [o, _, kh, kw] = w;
        // 0 where the kernel does not fit: the callers check that it does
        let ho = window_positions(h, kh, s[0], p[0]).unwrap_or(0);
        let wo = window_positions(wd, kw, s[1], p[1]).unwrap_or(0);
        Self {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            sh: s[0],
            sw: s[1],
            ph: p[0],
            pw: p[1],
            ho,
            wo,
        }
    }
    pub(super) fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn p(&self) -> usize {
        self.ho * self.wo
    }
    /// For kernel column `kx`: the output columns `ox` whose input column
    /// `ox·SW + kx − PW` lies inside the image, as a half-open range.
    fn ox_range(&self, kx: usize) -> (usize, usize) {
        range_inside(self.wo, self.sw, kx, self.pw, self.w)
    }
    fn oy_range(&self, ky: usize) -> (usize, usize) {
        range_inside(self.ho, self.sh, ky, self.ph, self.h)
    }
}

/// Output indices `i` in `0..out` with `0 <= i·s + k − p < len`.
pub(super) fn range_inside(out: usize, s: usize, k: usize, p: usize, len: usize) -> (usize, usize) {
    // first i with i·s + k >= p
    let lo = if k >= p { 0 } else { (p - k).div_ceil(s) };
    // last i with i·s + k − p <= len − 1
    let hi = if len + p < k + 1 {
        0
    } else {
        ((len + p - k - 1) / s + 1).min(out)
    };
    (lo.min(hi), hi)
}

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
                    let iy = oy * geo.sh + ky - geo.ph;
                    let src = &xc[iy * geo.w..(iy + 1) * geo.w];
                    dst[..ox0].fill(0.0);
                    dst[ox1..].fill(0.0);
                    if geo.sw == 1 {
                        let ix0 = ox0 + kx - geo.pw;
                        dst[ox0..ox1].copy_from_slice(&src[ix0..ix0 + (ox1 - ox0)]);
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate().take(ox1).skip(ox0) {
                            *d = src[ox * geo.sw + kx - geo.pw];
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
                    let iy = oy * geo.sh + ky - geo.ph;
                    let src = &row[oy * geo.wo + ox0..oy * geo.wo + ox1];
                    let dst = &mut gc[iy * geo.w..(iy + 1) * geo.w];
                    if geo.sw == 1 {
                        let ix0 = ox0 + kx - geo.pw;
                        for (d, s) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (i, s) in src.iter().enumerate() {
                            dst[(ox0 + i) * geo.sw + kx - geo.pw] += s;
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
/// On AVX-512 with stride 1, the direct convolution of `direct` instead (the fused block's
/// arithmetic).
pub(crate) fn forward(geo: &Geometry, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if super::direct::conv_applies(geo) {
        return super::direct::conv(geo, x, w, b);
    }
    let (ckk, p, o) = (geo.ckk(), geo.p(), geo.o);
    let chw = geo.c * geo.h * geo.w;
    let mut y = vec![0.0f32; geo.n * o * p];
    if super::parallel(geo.n * o * p * ckk) {
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

/// The sum of per-thread (weight, bias) gradients.
pub(super) fn sum_partials(
    partials: Vec<(Vec<f32>, Vec<f32>)>,
    nw: usize,
    nb: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut parts = partials.into_iter();
    let (mut gw, mut gb) = parts
        .next()
        .unwrap_or_else(|| (vec![0.0; nw], vec![0.0; nb]));
    for (w2, b2) in parts {
        gw.iter_mut().zip(&w2).for_each(|(a, b)| *a += b);
        gb.iter_mut().zip(&b2).for_each(|(a, b)| *a += b);
    }
    (gw, gb)
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

#[cfg(test)]
mod tests {
    use super::range_inside;

    #[test]
    fn inside_ranges() {
        // 5 outputs, stride 1, padding 1, kernel 3 over length 5: tap 0 misses output 0,
        // tap 2 misses output 4.
        assert_eq!(range_inside(5, 1, 0, 1, 5), (1, 5));
        assert_eq!(range_inside(5, 1, 1, 1, 5), (0, 5));
        assert_eq!(range_inside(5, 1, 2, 1, 5), (0, 4));
        // stride 2, padding 0, kernel 3 over 7: 3 outputs, all inside
        assert_eq!(range_inside(3, 2, 2, 0, 7), (0, 3));
    }
}
