//! A split (train or test) of images with labels, the batches a model trains on, and the
//! order of an epoch.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{IMAGE_SHAPE, Normalization, Pixels, SIDE, idx};
use crate::error::{Error, Result};

/// One split (train or test) of images `[C, H, W]` with labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// `len()·C·H·W` pixels, image after image, each channel after channel, row-major
    /// (MNIST: 0 = background, 255 = ink): in memory, or a view of a packed file.
    pub pixels: Pixels,
    /// One class index per image.
    pub labels: Vec<u32>,
    /// The shape `[C, H, W]` of one image.
    pub shape: [usize; 3],
    /// How pixels become the network's input.
    pub normalization: Normalization,
}

impl Split {
    /// MNIST-style digits from an IDX file: checks that images and labels agree and that the
    /// images are `rows × cols` as `shape` says.
    pub fn from_idx(
        images: idx::IdxImages,
        labels: Vec<u8>,
        images_path: &Path,
        normalization: Normalization,
    ) -> Result<Self> {
        if images.rows != SIDE || images.cols != SIDE {
            return Err(Error::data(
                images_path,
                format!("images are {}x{}, expected 28x28", images.rows, images.cols),
            ));
        }
        if images.count != labels.len() {
            return Err(Error::data(
                images_path,
                format!(
                    "{} images but the label file has {} labels",
                    images.count,
                    labels.len()
                ),
            ));
        }
        Ok(Self {
            pixels: images.pixels.into(),
            labels: labels.into_iter().map(u32::from).collect(),
            shape: IMAGE_SHAPE,
            normalization,
        })
    }

    /// Values per image, `C·H·W`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` images (all of them if `n >= len()`); no pixel is copied.
    pub fn take(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            pixels: self.pixels.slice(0..n * self.image_len()),
            labels: self.labels[..n].to_vec(),
            shape: self.shape,
            normalization: self.normalization.clone(),
        }
    }

    /// The raw pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// The same images, normalised by `normalization` from now on.
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// Builds a batch from the images at `indices`, shifting each by a random offset of up to
    /// `shift` pixels in each direction when `augment` is given (the pixels shifted in are 0).
    ///
    /// # Shapes
    /// - images: `[indices.len(), C, H, W]`; labels: `[indices.len()]`
    pub fn batch(
        &self,
        indices: &[usize],
        device: &Device,
        augment: Option<(&mut ChaCha8Rng, usize)>,
    ) -> Batch {
        self.host_batch(indices, augment).to_device(device)
    }

    /// The values of [`batch`](Self::batch), on the host: what a prefetching reader prepares
    /// ahead of the step.
    pub fn host_batch(
        &self,
        indices: &[usize],
        augment: Option<(&mut ChaCha8Rng, usize)>,
    ) -> HostBatch {
        let [c, h, w] = self.shape;
        let mut data = Vec::with_capacity(indices.len() * self.image_len());
        match augment {
            Some((rng, shift)) if shift > 0 => {
                let s = shift as i64;
                for &i in indices {
                    let dx = rng.random_range(-s..=s);
                    let dy = rng.random_range(-s..=s);
                    self.push_shifted(&mut data, self.image(i), dx, dy);
                }
            }
            _ => {
                for &i in indices {
                    self.push_normalized(&mut data, self.image(i));
                }
            }
        }
        HostBatch {
            images: data,
            labels: indices.iter().map(|&i| self.labels[i] as i64).collect(),
            dims: [indices.len(), c, h, w],
        }
    }

    pub(super) fn push_normalized(&self, out: &mut Vec<f32>, img: &[u8]) {
        let plane = self.shape[1] * self.shape[2];
        for (ch, values) in img.chunks_exact(plane.max(1)).enumerate() {
            out.extend(values.iter().map(|&p| self.normalization.apply(ch, p)));
        }
    }
}

/// A batch's normalised images and labels in the host's memory, before they go to a device.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// `N·C·H·W` values, image after image.
    pub images: Vec<f32>,
    /// `N` class indices.
    pub labels: Vec<i64>,
    /// `[N, C, H, W]`.
    pub dims: [usize; 4],
}

impl HostBatch {
    /// The batch as tensors on `device`.
    ///
    /// # Shapes
    /// - images: `dims`; labels: `[N]`
    pub fn to_device(self, device: &Device) -> Batch {
        let n = self.dims[0];
        Batch {
            images: Tensor::from_data(TensorData::new(self.images, self.dims), device),
            labels: Tensor::from_data(TensorData::new(self.labels, [n]), device),
        }
    }
}

/// A batch of images and labels on a device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[N, C, H, W]`, normalised.
    pub images: Tensor<4>,
    /// `[N]` class indices.
    pub labels: Tensor<1, Int>,
}

/// The order of the training images in epoch `epoch`: a shuffle seeded by `(seed, epoch)`, so a
/// resumed run sees the same order as an uninterrupted one.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(crate::seed::stream(seed, epoch as u64));
    idx.shuffle(&mut rng);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::data::Dataset;
    use crate::testing::{test_device, values};

    #[test]
    fn batches_are_normalized_and_shaped() {
        let d = test_device();
        let m = Dataset::bundled().unwrap();
        let b = m.train.batch(&[0, 5, 7], &d, None);
        assert_eq!(b.images.dims(), [3, 1, 28, 28]);
        let labels: Vec<i64> = b.labels.into_data().convert::<i64>().try_to_vec().unwrap();
        let wanted: Vec<i64> = [0, 5, 7]
            .iter()
            .map(|&i| m.train.labels[i] as i64)
            .collect();
        assert_eq!(labels, wanted);
        let px = values(b.images);
        // background pixels are (0 - 0.1307)/0.3081 = -0.424213
        assert!((px[0] - (-0.424_213)).abs() < 1e-5);
        let max = px.iter().cloned().fold(f32::MIN, f32::max);
        // ink 255 -> (1 - 0.1307)/0.3081 = 2.821487
        assert!((max - 2.821_487).abs() < 1e-4, "{max}");
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 0);
        assert_eq!(a, epoch_order(100, 7, 0));
        assert_ne!(a, epoch_order(100, 7, 1));
        assert_ne!(a, epoch_order(100, 8, 0));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }
}
