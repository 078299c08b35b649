//! The dense layer `y = x · W + b` and its gradients: matrix products (gemm crate; on
//! AVX-512 one or two forward outputs past a multiple of 16 by dot products, see
//! `dense_remainder`) with the rows of the result split over the threads.

#[cfg(target_arch = "x86_64")]
use super::dense_remainder;
use super::gemm::{columns, rows, sgemm};
use super::path::Path;
use super::threads::{for_each_chunk, parallel};

/// Rows per task for an `[rows, ·]` output of `macs_per_row` multiply-adds a row, and whether
/// the tasks run in parallel: all rows on the calling thread for small products, else an
/// even split over the threads.
fn rows_per_task(rows: usize, macs_per_row: usize) -> (usize, bool) {
    if parallel(rows.saturating_mul(macs_per_row)) {
        (rows.div_ceil(rayon::current_num_threads()).max(1), true)
    } else {
        (rows.max(1), false)
    }
}

/// A dense layer: `y[N, O] = x[N, I] · w[I, O] + b`, rows of `y` split over the threads: all
/// outputs by gemm ([`Path::Gemm`]), or the first `gemm_outputs` and the rest by AVX-512 dot
/// products ([`Path::GemmAndDots`]).
pub(crate) fn forward(
    path: Path,
    [n, i, o]: [usize; 3],
    x: &[f32],
    w: &[f32],
    b: &[f32],
) -> Vec<f32> {
    let mut y = vec![0.0f32; n * o];
    if n * o == 0 {
        return y;
    }
    // the outputs gemm computes, and the token of the dot products that compute the rest
    #[cfg(target_arch = "x86_64")]
    let (lanes, dots) = match path {
        Path::GemmAndDots {
            avx512,
            gemm_outputs,
        } => (gemm_outputs, Some(avx512)),
        other => {
            debug_assert_eq!(other, Path::Gemm, "the path of a dense layer");
            (o, None)
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let lanes = {
        debug_assert_eq!(path, Path::Gemm, "the path of a dense layer");
        o
    };
    // the weight columns that the dot products take, as rows (once, for every task)
    #[cfg(target_arch = "x86_64")]
    let mut wr = vec![0.0f32; (o - lanes) * i];
    #[cfg(target_arch = "x86_64")]
    if dots.is_some() {
        dense_remainder::gather_columns(i, o, lanes, w, &mut wr);
    }
    let (per, par) = rows_per_task(n, i * o);
    for_each_chunk(&mut y, per * o, par, |t, ys| {
        let rows_here = ys.len() / o;
        let xs = &x[t * per * i..(t * per + rows_here) * i];
        for row in ys.chunks_exact_mut(o) {
            row[..lanes].copy_from_slice(&b[..lanes]);
        }
        sgemm(
            (rows_here, lanes, i),
            (ys, o),
            true,
            rows(xs, i),
            rows(w, o),
        );
        #[cfg(target_arch = "x86_64")]
        if let Some(avx512) = dots {
            // SAFETY: the `Avx512` token proves detection.
            unsafe { dense_remainder::columns(avx512, (i, o, lanes), xs, &wr, b, ys) };
        }
    });
    y
}

/// The input gradient of [`forward`]: `gx[N, I] = g[N, O] · wᵀ[O, I]`.
pub(crate) fn x_grad([n, i, o]: [usize; 3], g: &[f32], w: &[f32]) -> Vec<f32> {
    let mut gx = vec![0.0f32; n * i];
    if n * i == 0 {
        return gx;
    }
    let (per, par) = rows_per_task(n, i * o);
    for_each_chunk(&mut gx, per * i, par, |t, gs| {
        let rows_here = gs.len() / i;
        let gt = &g[t * per * o..(t * per + rows_here) * o];
        sgemm(
            (rows_here, i, o),
            (gs, i),
            false,
            rows(gt, o),
            columns(w, o),
        );
    });
    gx
}

/// The weight and bias gradients of [`forward`]: `gw[I, O] = xᵀ[I, N] · g[N, O]`
/// (rows of `gw` split over the threads) and `gb[O] = Σₙ g[n, ·]`.
pub(crate) fn wb_grad([n, i, o]: [usize; 3], x: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut gw = vec![0.0f32; i * o];
    let mut gb = vec![0.0f32; o];
    if n > 0 {
        for row in g.chunks_exact(o).take(n) {
            gb.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
    }
    if i * o == 0 || n == 0 {
        return (gw, gb);
    }
    let (per, par) = rows_per_task(i, n * o);
    for_each_chunk(&mut gw, per * o, par, |t, ws| {
        let rows_here = ws.len() / o;
        // columns t·per.. of x, as the rows of xᵀ
        let xs = &x[t * per..];
        sgemm(
            (rows_here, o, n),
            (ws, o),
            false,
            columns(xs, i),
            rows(g, o),
        );
    });
    (gw, gb)
}
