//! User images: the one place where PNG and JPEG files and uploads are decoded, bounded and
//! turned into what a network sees. Image folders ([`crate::app::data::folder`]), `predict`,
//! `explain` and `serve` all call [`prepare`] or [`read`].
//!
//! - **Bounded before decoding** ([`decode`]): the file's size, then the width and height that
//!   its header declares, are checked against [`ImageLimits`] before any pixel is allocated;
//!   the decoder itself runs under `image`'s [`image::Limits`] (`max_alloc`). An 8 KB PNG that
//!   declares 8192 × 8192 pixels is refused with [`Error::ImageTooLarge`], which names the
//!   declared size and the cap.
//! - **Small copies**: a photo read as a digit is shrunk to at most [`PHOTO_SIDE`] pixels a
//!   side before its ink is found ([`digit`]); an image read at the model's size is converted
//!   once, with no alpha copy when it has no alpha ([`to_input`]).
mod decode;
pub mod digit;
mod resize;

use std::path::Path;

pub use decode::{
    DEFAULT_MAX_IMAGE_PIXELS, ImageLimits, MAX_FILE_BYTES, MAX_SIDE, decode, dimensions,
};
pub use digit::{PHOTO_SIDE, digit_from_gray, ink_from_photo};
pub use resize::to_input;

use crate::app::data::{DataInfo, IMAGE_SHAPE, Preprocess};
use crate::error::{Error, Result};

/// PNG or JPEG bytes as the network of `info` sees them (`C·H·W` bytes): read as an MNIST
/// digit or resized, as [`DataInfo::preprocess`] says, within `limits`. `origin` names the
/// bytes in errors (a file, or "request body").
pub fn prepare(
    bytes: &[u8],
    origin: &Path,
    info: &DataInfo,
    limits: &ImageLimits,
) -> Result<Vec<u8>> {
    match info.preprocess {
        Preprocess::Digit if info.shape == IMAGE_SHAPE => prepare_digit(bytes, origin, limits),
        _ => prepare_resized(bytes, origin, info.shape, limits),
    }
}

/// PNG or JPEG bytes as an MNIST-style digit (28×28, white ink on black): see
/// [`digit_from_gray`].
pub fn prepare_digit(bytes: &[u8], origin: &Path, limits: &ImageLimits) -> Result<Vec<u8>> {
    let img = decode(bytes, origin, limits)?;
    digit_from_gray(img.into_luma8()).ok_or_else(|| Error::Image {
        path: origin.to_path_buf(),
        message: "image is empty".into(),
        source: None,
    })
}

/// PNG or JPEG bytes as a model of input `[C, H, W]` reads them (see [`to_input`]).
pub fn prepare_resized(
    bytes: &[u8],
    origin: &Path,
    shape: [usize; 3],
    limits: &ImageLimits,
) -> Result<Vec<u8>> {
    let img = decode(bytes, origin, limits)?;
    Ok(to_input(img, shape))
}

/// An image file as the network of `info` sees it: [`read_bytes`], then [`prepare`].
pub fn read(path: &Path, info: &DataInfo, limits: &ImageLimits) -> Result<Vec<u8>> {
    let bytes = read_bytes(path, limits)?;
    prepare(&bytes, path, info, limits)
}

/// The bytes of an image file, refusing one larger than [`ImageLimits::max_file_bytes`]
/// before reading it.
pub fn read_bytes(path: &Path, limits: &ImageLimits) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > limits.max_file_bytes {
        return Err(Error::Image {
            path: path.to_path_buf(),
            message: format!(
                "the file is {len} bytes, more than the {} accepted",
                limits.max_file_bytes
            ),
            source: None,
        });
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
