//! The helpers that the AVX-512 kernels share: lane masks and a strided gather.

use std::arch::x86_64::*;

use super::simd::Avx512;

/// The first `min(n, 16)` lanes of a vector.
#[inline(always)]
pub(super) fn first_lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// The lanes of a vector that hold elements `i..min(i + 16, n)`.
#[inline(always)]
pub(super) fn lanes(i: usize, n: usize) -> __mmask16 {
    first_lanes(n - i)
}

/// `dst[c·dst_plane + i] = src[i·stride + c]` for `c < planes`, `i < p`: channels-last values
/// into channels-first planes, 16 positions of one channel per gather, stored contiguously.
#[target_feature(enable = "avx512f")]
pub(super) fn gather_strided(
    _: Avx512,
    src: &[f32],
    stride: usize,
    p: usize,
    planes: usize,
    dst: &mut [f32],
    dst_plane: usize,
) {
    if p == 0 || planes == 0 {
        return;
    }
    assert!((p - 1) * stride + planes <= src.len());
    assert!((planes - 1) * dst_plane + p <= dst.len() && stride * 16 < i32::MAX as usize);
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_mullo_epi32(lane, _mm512_set1_epi32(stride as i32));
    for c in 0..planes {
        let mut i = 0;
        while i < p {
            let k = lanes(i, p);
            // SAFETY: the lanes in `k` read positions `i..min(i + 16, p)` of channel `c` and
            // write the same run of plane `c`, inside the slices (asserted above).
            unsafe {
                let base = src.as_ptr().add(i * stride + c);
                let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), k, step, base.cast());
                _mm512_mask_storeu_ps(dst.as_mut_ptr().add(c * dst_plane + i), k, v);
            }
            i += 16;
        }
    }
}
