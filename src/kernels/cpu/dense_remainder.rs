//! A dense layer's outputs past the last multiple of 16, on AVX-512, as dot products with the
//! 16 lanes along the inputs. The gemm crate computes outputs in tiles of 16 lanes, so a layer
//! of 50 outputs costs it 64: the MLP's first layer, most of its inference time, spent a fifth
//! of it on padding. `dense::forward` gives gemm the first 48 outputs of such a layer
//! and these kernels the rest (when they are few and the inputs many: `path::choose`), reading
//! `x` along its rows as it is and the remaining weight columns gathered into rows.

use std::arch::x86_64::*;

use super::avx512::first_lanes;
use super::simd::Avx512;

/// Images per register tile.
const R: usize = 4;

/// `wr[c·i + k] = w[k·o + c0 + c]` for `c < cols`: columns `c0..c0 + cols` of the `[i, o]`
/// weight as `cols` rows of `i` values.
pub(super) fn gather_columns(i: usize, o: usize, c0: usize, w: &[f32], wr: &mut [f32]) {
    let cols = wr.len() / i.max(1);
    assert!(w.len() >= i * o && c0 + cols <= o);
    for (k, row) in w.chunks_exact(o).take(i).enumerate() {
        for c in 0..cols {
            wr[c * i + k] = row[c0 + c];
        }
    }
}

/// `y[r·o + c0 + c] = b[c0 + c] + Σₖ x[r·i + k] · wr[c·i + k]` for every row `r` of `x`
/// (`[rows, i]`, `rows = y.len() / o`) and `c < cols` (`wr` from [`gather_columns`]).
#[target_feature(enable = "avx512f")]
pub(super) fn columns(
    avx512: Avx512,
    (i, o, c0): (usize, usize, usize),
    x: &[f32],
    wr: &[f32],
    b: &[f32],
    y: &mut [f32],
) {
    let rows = y.len() / o.max(1);
    let cols = wr.len() / i.max(1);
    assert!(x.len() >= rows * i && c0 + cols <= o && b.len() >= o && y.len() == rows * o);
    let mut r0 = 0;
    while r0 < rows {
        let rh = (rows - r0).min(R);
        let mut c = 0;
        while c < cols {
            let ch = (cols - c).min(2);
            // SAFETY: rows r0..r0 + rh of x and y and rows c..c + ch of wr exist (asserted
            // above); each tile reads and writes only those.
            unsafe {
                let xp = x.as_ptr().add(r0 * i);
                let wp = wr.as_ptr().add(c * i);
                let bp = b.as_ptr().add(c0 + c);
                let yp = y.as_mut_ptr().add(r0 * o + c0 + c);
                match (rh, ch) {
                    (R, 2) => tile::<2>(avx512, i, xp, wp, bp, yp, o),
                    (R, _) => tile::<1>(avx512, i, xp, wp, bp, yp, o),
                    _ => {
                        for r in 0..rh {
                            for j in 0..ch {
                                let d = dot(avx512, i, xp.add(r * i), wp.add(j * i));
                                *yp.add(r * o + j) = *bp.add(j) + d;
                            }
                        }
                    }
                }
            }
            c += ch;
        }
        r0 += rh;
    }
}

/// `R` rows by `CC` outputs of [`columns`]: rows `i` apart in `x` and `wr`, `o` apart in `y`.
/// Its own function (not inlined), so that the register allocator sees this loop alone and
/// keeps the `4·CC` accumulators in registers.
///
/// # Safety
/// `x` must point to 4 rows of `i` values (`i` apart), `wr` to `CC` rows of `i` values, `b`
/// to `CC` biases, and `y` to 4 rows of `CC` writable outputs (`o` apart). (The CPU's AVX-512
/// is the token's.)
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn tile<const CC: usize>(
    _: Avx512,
    i: usize,
    x: *const f32,
    wr: *const f32,
    b: *const f32,
    y: *mut f32,
    o: usize,
) {
    // SAFETY: (whole body) the caller guarantees 4 rows of `i` values at `x`, CC at `wr`, CC
    // biases at `b` and 4 rows of CC outputs (`o` apart) at `y`; the last, partial vector of
    // each row is read with a mask.
    unsafe {
        let z = _mm512_setzero_ps();
        let (mut a0, mut a1, mut a2, mut a3) = ([z; CC], [z; CC], [z; CC], [z; CC]);
        let mut k = 0;
        while k < i {
            let m = first_lanes(i - k);
            let x0 = _mm512_maskz_loadu_ps(m, x.add(k));
            let x1 = _mm512_maskz_loadu_ps(m, x.add(i + k));
            let x2 = _mm512_maskz_loadu_ps(m, x.add(2 * i + k));
            let x3 = _mm512_maskz_loadu_ps(m, x.add(3 * i + k));
            for c in 0..CC {
                let w = _mm512_maskz_loadu_ps(m, wr.add(c * i + k));
                a0[c] = _mm512_fmadd_ps(x0, w, a0[c]);
                a1[c] = _mm512_fmadd_ps(x1, w, a1[c]);
                a2[c] = _mm512_fmadd_ps(x2, w, a2[c]);
                a3[c] = _mm512_fmadd_ps(x3, w, a3[c]);
            }
            k += 16;
        }
        for (r, a) in [a0, a1, a2, a3].iter().enumerate() {
            for (c, v) in a.iter().enumerate() {
                *y.add(r * o + c) = *b.add(c) + _mm512_reduce_add_ps(*v);
            }
        }
    }
}

/// `Σₖ x[k] · w[k]` over `i` values (the rows past the last full tile).
///
/// # Safety
/// `x` and `w` must each point to `i` readable values. (The CPU's AVX-512 is the token's.)
#[target_feature(enable = "avx512f")]
unsafe fn dot(_: Avx512, i: usize, x: *const f32, w: *const f32) -> f32 {
    // SAFETY: the caller guarantees `i` values at `x` and at `w`; the last, partial vector is
    // read with a mask.
    unsafe {
        let mut a = _mm512_setzero_ps();
        let mut k = 0;
        while k < i {
            let m = first_lanes(i - k);
            let (xv, wv) = (
                _mm512_maskz_loadu_ps(m, x.add(k)),
                _mm512_maskz_loadu_ps(m, w.add(k)),
            );
            a = _mm512_fmadd_ps(xv, wv, a);
            k += 16;
        }
        _mm512_reduce_add_ps(a)
    }
}

#[cfg(test)]
mod tests {
    use super::{columns, gather_columns};
    use crate::kernels::cpu::simd::Avx512;

    #[test]
    fn gathers_weight_columns_into_rows() {
        // w = [[0, 1, 2], [3, 4, 5]] (i = 2, o = 3): columns 1 and 2 as rows
        let w = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let mut wr = [0.0; 4];
        gather_columns(2, 3, 1, &w, &mut wr);
        assert_eq!(wr, [1.0, 4.0, 2.0, 5.0]);
    }

    /// Every remainder width (1..=15 outputs past 16) and row count around the tile, against
    /// the sums written out; the first 16 outputs are left alone.
    #[test]
    fn columns_equal_the_sums_written_out() {
        let Some(avx512) = Avx512::try_new() else {
            return;
        };
        for (rows, i) in [(1, 1), (5, 16), (8, 37), (11, 50)] {
            for rest in 1..16 {
                let o = 16 + rest;
                let x: Vec<f32> = (0..rows * i)
                    .map(|v| ((v * 37) % 23) as f32 / 8.0 - 1.0)
                    .collect();
                let w: Vec<f32> = (0..i * o)
                    .map(|v| ((v * 53) % 19) as f32 / 16.0 - 0.5)
                    .collect();
                let b: Vec<f32> = (0..o).map(|c| c as f32 / 4.0).collect();
                let mut wr = vec![0.0; rest * i];
                gather_columns(i, o, 16, &w, &mut wr);
                let mut y = vec![-7.0; rows * o];
                // SAFETY: the `Avx512` token proves detection.
                unsafe { columns(avx512, (i, o, 16), &x, &wr, &b, &mut y) };
                for r in 0..rows {
                    assert!(y[r * o..r * o + 16].iter().all(|&v| v == -7.0));
                    for c in 16..o {
                        let want = b[c] + (0..i).map(|k| x[r * i + k] * w[k * o + c]).sum::<f32>();
                        let got = y[r * o + c];
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{rows}×{i}→{o}: y[{r}, {c}] = {got}, want {want}"
                        );
                    }
                }
            }
        }
    }
}
