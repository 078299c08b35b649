//! The per-channel normalisation of pixels, and MNIST's published constants.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Mean of the MNIST training pixels scaled to [0, 1] (full 60,000-image training set).
pub const MNIST_MEAN: f32 = 0.1307;
/// Standard deviation of the MNIST training pixels scaled to [0, 1].
pub const MNIST_STD: f32 = 0.3081;

/// The per-channel normalisation of pixels: `(p / 255 − mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// Mean of each channel's pixels scaled to [0, 1].
    pub mean: Vec<f32>,
    /// Standard deviation of each channel's pixels scaled to [0, 1].
    pub std: Vec<f32>,
}

impl Normalization {
    /// MNIST's constants (mean 0.1307, standard deviation 0.3081), on every one of `channels`.
    pub fn mnist(channels: usize) -> Self {
        Self {
            mean: vec![MNIST_MEAN; channels],
            std: vec![MNIST_STD; channels],
        }
    }

    /// The mean and standard deviation of each channel of `pixels` (images `[C, H, W]` one
    /// after the other); a channel that never varies gets a standard deviation of 1.
    pub fn of(pixels: &[u8], shape: [usize; 3]) -> Self {
        let mut m = Moments::new(shape);
        m.add(pixels);
        m.finish()
    }

    /// `(p / 255 − mean) / std` for a pixel of channel `c`.
    pub fn apply(&self, c: usize, p: u8) -> f32 {
        (p as f32 / 255.0 - self.mean[c]) / self.std[c]
    }

    /// An error unless there is one finite mean and one positive standard deviation per
    /// channel; `what` names the source.
    pub fn check(&self, what: &str, channels: usize) -> Result<()> {
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(Error::setting(
                what,
                format!(
                    "{} means and {} standard deviations for {channels} channels",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite())
            || self.std.iter().any(|s| s.is_nan() || *s <= 0.0)
        {
            return Err(Error::setting(
                what,
                "means must be finite and standard deviations above 0",
            ));
        }
        Ok(())
    }
}

/// The running sums behind [`Normalization::of`], fed images in order (a packed file's are
/// fed as they are written): the same additions in the same order, so the same result.
#[derive(Debug, Clone)]
pub struct Moments {
    shape: [usize; 3],
    sum: Vec<f64>,
    sq: Vec<f64>,
    values: usize,
}

impl Moments {
    /// No images yet, of `shape` `[C, H, W]`.
    pub fn new(shape: [usize; 3]) -> Self {
        let c = shape[0];
        Self {
            shape,
            sum: vec![0.0; c],
            sq: vec![0.0; c],
            values: 0,
        }
    }

    /// Adds the images in `pixels` (whole images, one after the other).
    pub fn add(&mut self, pixels: &[u8]) {
        let [c, h, w] = self.shape;
        let plane = h * w;
        for image in pixels.chunks_exact((c * plane).max(1)) {
            for ch in 0..c {
                for &p in &image[ch * plane..(ch + 1) * plane] {
                    let v = p as f64 / 255.0;
                    self.sum[ch] += v;
                    self.sq[ch] += v * v;
                }
            }
        }
        self.values += pixels.len();
    }

    /// The normalisation of the images added so far.
    pub fn finish(&self) -> Normalization {
        let c = self.shape[0];
        let n = (self.values / c.max(1)).max(1) as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let std = self
            .sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let sd = (s / n - m * m).max(0.0).sqrt();
                if sd < 1e-6 { 1.0 } else { sd as f32 }
            })
            .collect();
        Normalization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_per_channel_by_hand() {
        // two 1×2 images of two channels: channel 0 holds 0, 255, 0, 255 -> mean 0.5, std 0.5;
        // channel 1 is 51 everywhere (0.2) -> std 1 (it never varies)
        let px = [0, 255, 51, 51, 255, 0, 51, 51];
        let n = Normalization::of(&px, [2, 1, 2]);
        assert!(
            (n.mean[0] - 0.5).abs() < 1e-6 && (n.std[0] - 0.5).abs() < 1e-6,
            "{n:?}"
        );
        assert!((n.mean[1] - 0.2).abs() < 1e-6 && n.std[1] == 1.0, "{n:?}");
        assert!((n.apply(0, 255) - 1.0).abs() < 1e-6);
        assert!(n.check("x", 2).is_ok() && n.check("x", 3).is_err());
        // fed an image at a time, the same numbers to the bit
        let mut m = Moments::new([2, 1, 2]);
        m.add(&px[..4]);
        m.add(&px[4..]);
        assert_eq!(m.finish(), n);
    }
}
