//! The sizes of one convolution ([`Geometry`]), which every convolution kernel takes, and the
//! range of output positions whose taps fall inside the input ([`range_inside`]).

use crate::functional::window::window_positions;

/// Sizes of one convolution: `N` images of `C×H×W`, `O` filters of `C×KH×KW`, stride
/// `SH×SW`, zero padding `PadH×PadW` on each side, output `HO×WO`.
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
    /// Zero rows above and below the image.
    pub pad_h: usize,
    /// Zero columns left and right of the image.
    pub pad_w: usize,
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
            pad_h: p[0],
            pad_w: p[1],
            ho,
            wo,
        }
    }
    /// Taps per filter: `C·KH·KW`.
    pub(super) fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Output positions per plane: `HO·WO`.
    pub(super) fn p(&self) -> usize {
        self.ho * self.wo
    }
    /// For kernel column `kx`: the output columns `ox` whose input column
    /// `ox·SW + kx − PadW` lies inside the image, as a half-open range.
    pub(super) fn ox_range(&self, kx: usize) -> (usize, usize) {
        range_inside(self.wo, self.sw, kx, self.pad_w, self.w)
    }
    /// For kernel row `ky`: the output rows `oy` whose input row `oy·SH + ky − PadH` lies
    /// inside the image, as a half-open range.
    pub(super) fn oy_range(&self, ky: usize) -> (usize, usize) {
        range_inside(self.ho, self.sh, ky, self.pad_h, self.h)
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
