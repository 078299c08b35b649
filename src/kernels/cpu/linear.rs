//! The dense layer `y = x · W + b` and its gradients: matrix products (gemm crate; on
//! AVX-512 one or two forward outputs past a multiple of 16 by dot products, see `dense`) with
//! the rows of the result split over the threads.

use super::gemm::{columns, rows, sgemm};
use super::{for_each_chunk, parallel};

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

/// How many of a dense layer's `o` outputs (of `i` inputs each) go to gemm; the dot-product
/// kernel of `dense` takes the rest. On AVX-512 gemm pads the outputs to a multiple of 16, so
/// one or two outputs past it cost gemm 16: then the dot products take those, where the inputs
/// are long enough to pay for the sums across the lanes (measured on the Xeon: 784 → 50 about
/// 10 % faster; 784 → 20 or 22 and 50 → 25 slower, so those stay with gemm). Elsewhere, all.
fn gemm_outputs(i: usize, o: usize) -> usize {
    let rest = o % 16;
    if o > 16
        && (1..=2).contains(&rest)
        && i >= 256
        && super::simd::level() == super::simd::Level::Avx512
    {
        o - rest
    } else {
        o
    }
}

/// A dense layer: `y[N, O] = x[N, I] · w[I, O] + b`, rows of `y` split over the threads.
pub(crate) fn forward([n, i, o]: [usize; 3], x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; n * o];
    if n * o == 0 {
        return y;
    }
    let lanes = gemm_outputs(i, o);
    // the weight columns that the dot products take, as rows (once, for every task)
    let mut wr = vec![0.0f32; (o - lanes) * i];
    #[cfg(target_arch = "x86_64")]
    if lanes < o {
        super::dense::gather_columns(i, o, lanes, w, &mut wr);
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
        if lanes < o {
            // SAFETY: `lanes < o` only where the level says the CPU has AVX-512F.
            unsafe { super::dense::columns((i, o, lanes), xs, &wr, b, ys) };
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
