//! Augmentation: images shifted by a few pixels, the background filling in.

use super::Split;

impl Split {
    /// `img` moved by `(dx, dy)` pixels, normalised; what comes in from the edge is pixel 0.
    pub(super) fn push_shifted(&self, out: &mut Vec<f32>, img: &[u8], dx: i64, dy: i64) {
        let [c, h, w] = self.shape;
        let (hi, wi) = (h as i64, w as i64);
        for ch in 0..c {
            let plane = &img[ch * h * w..(ch + 1) * h * w];
            let background = self.normalization.apply(ch, 0);
            for y in 0..hi {
                let sy = y - dy;
                for x in 0..wi {
                    let sx = x - dx;
                    out.push(if (0..hi).contains(&sy) && (0..wi).contains(&sx) {
                        self.normalization.apply(ch, plane[(sy * wi + sx) as usize])
                    } else {
                        background
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::data::Normalization;

    #[test]
    fn shifting_moves_the_ink_and_fills_background() {
        let mut pixels = vec![0u8; 2 * 4 * 4];
        pixels[4 + 1] = 255; // channel 0, (x, y) = (1, 1)
        pixels[16 + 2 * 4 + 2] = 255; // channel 1, (2, 2)
        let split = Split {
            pixels: pixels.clone().into(),
            labels: vec![0],
            shape: [2, 4, 4],
            normalization: Normalization {
                mean: vec![0.0, 0.0],
                std: vec![1.0, 0.5],
            },
        };
        let mut out = Vec::new();
        split.push_shifted(&mut out, &pixels, 1, -1);
        let hot: Vec<(usize, f32)> = out
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, v)| (i, *v))
            .collect();
        // (1, 1) -> (2, 0) in channel 0 (value 1 / 1); (2, 2) -> (3, 1) in channel 1 (1 / 0.5)
        assert_eq!(hot, vec![(2, 1.0), (16 + 4 + 3, 2.0)]);
    }
}
