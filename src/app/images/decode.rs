//! Decoding within limits: the header first, then the pixels.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader};

use crate::error::{Error, Result};

/// The largest image file read: 64 MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// The largest width or height decoded: 8,192 pixels.
pub const MAX_SIDE: u32 = 8192;
/// The default cap on an image's pixels: 24 million (24 MP). A 12 MP phone photo
/// (4032 × 3024) is half of it and a 24 MP camera's (6000 × 4000) fits; decoded as RGB it
/// takes 72 MB, so the few decodes a server runs at once stay within a few hundred MB.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 24_000_000;

/// What an image may be before it is decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// The most pixels (width × height) an image may declare (default
    /// [`DEFAULT_MAX_IMAGE_PIXELS`]; `netcalc serve --max-image-pixels`).
    pub max_pixels: u64,
    /// The largest file or body, in bytes (default [`MAX_FILE_BYTES`]).
    pub max_file_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            max_file_bytes: MAX_FILE_BYTES,
        }
    }
}

impl ImageLimits {
    /// The default limits with at most `max_pixels` pixels an image.
    pub fn with_max_pixels(max_pixels: u64) -> Self {
        Self {
            max_pixels,
            ..Self::default()
        }
    }

    /// The most bytes the decoder may allocate: 8 bytes a pixel (16-bit RGBA) of the cap.
    pub fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(8)
    }
}

fn reader<'a>(bytes: &'a [u8], origin: &Path) -> Result<ImageReader<Cursor<&'a [u8]>>> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(origin, e))?;
    if reader.format().is_none() {
        return Err(Error::Image {
            path: origin.to_path_buf(),
            message: "cannot read the image: not a PNG or JPEG".into(),
            source: None,
        });
    }
    Ok(reader)
}

/// A PNG's declared width and height: its first chunk is always `IHDR`, whose data starts
/// with them (big-endian), so they are read before any other chunk, even from a truncated
/// file.
fn png_header(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}

/// The width and height that the image's header declares, read without decoding its pixels.
pub fn dimensions(bytes: &[u8], origin: &Path) -> Result<(u32, u32)> {
    if let Some(size) = png_header(bytes) {
        return Ok(size);
    }
    reader(bytes, origin)?
        .into_dimensions()
        .map_err(|e| Error::Image {
            path: origin.to_path_buf(),
            message: format!("cannot read the image: {e}"),
            source: Some(Box::new(e)),
        })
}

/// Decodes PNG or JPEG bytes within `limits`: the size of the bytes, then the declared width
/// and height (at most [`MAX_SIDE`] a side and [`ImageLimits::max_pixels`] in all) are checked
/// before any pixel is allocated, and the decoder runs under [`image::Limits`] with
/// [`ImageLimits::max_alloc`].
///
/// # Examples
/// ```
/// use netcalc::app::images::{ImageLimits, decode};
/// let mut png = Vec::new();
/// image::GrayImage::new(3, 2)
///     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
/// let img = decode(&png, "x.png".as_ref(), &ImageLimits::default())?;
/// assert_eq!((img.width(), img.height()), (3, 2));
/// // 6 pixels are more than a cap of 5: refused before decoding
/// let err = decode(&png, "x.png".as_ref(), &ImageLimits::with_max_pixels(5)).unwrap_err();
/// assert!(err.to_string().contains("3×2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode(bytes: &[u8], origin: &Path, limits: &ImageLimits) -> Result<DynamicImage> {
    let image_error = |message: String, e: Option<image::ImageError>| Error::Image {
        path: origin.to_path_buf(),
        message,
        source: e.map(|e| Box::new(e) as _),
    };
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(image_error(
            format!(
                "the image is {} bytes, more than the {} accepted",
                bytes.len(),
                limits.max_file_bytes
            ),
            None,
        ));
    }
    let (width, height) = dimensions(bytes, origin)?;
    if width == 0 || height == 0 {
        return Err(image_error("the image is empty".into(), None));
    }
    if width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(Error::ImageTooLarge {
            path: origin.to_path_buf(),
            width,
            height,
            max_side: MAX_SIDE,
            max_pixels: limits.max_pixels,
        });
    }
    let mut caps = image::Limits::default();
    caps.max_image_width = Some(width.min(MAX_SIDE));
    caps.max_image_height = Some(height.min(MAX_SIDE));
    caps.max_alloc = Some(limits.max_alloc());
    let mut reader = reader(bytes, origin)?;
    reader.limits(caps);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => image_error(
            format!("the image needs more memory to decode than its limits allow: {e}"),
            Some(e),
        ),
        e => image_error(format!("cannot read the image: {e}"), Some(e)),
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(image_error("the image is empty".into(), None));
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `w`×`h` whose header is rewritten to declare `dw`×`dh`.
    fn declaring(dw: u32, dh: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::GrayImage::new(1, 1)
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes[16..20].copy_from_slice(&dw.to_be_bytes());
        bytes[20..24].copy_from_slice(&dh.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        bytes
    }

    #[test]
    fn declared_sizes_are_checked_before_decoding() {
        let o = Path::new("bomb.png");
        let bomb = declaring(8192, 8192);
        assert_eq!(dimensions(&bomb, o).unwrap(), (8192, 8192));
        let err = decode(&bomb, o, &ImageLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ImageTooLarge {
                    width: 8192,
                    height: 8192,
                    max_pixels: DEFAULT_MAX_IMAGE_PIXELS,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("bomb.png") && text.contains("8192×8192") && text.contains("24000000"),
            "{text}"
        );
        // a side over MAX_SIDE, though few pixels
        let long = decode(&declaring(100_000, 10), o, &ImageLimits::default()).unwrap_err();
        assert!(long.to_string().contains("8192 a side"), "{long}");
        // a cap the size fits is passed to the decoder, which then finds the data missing
        let err = decode(&declaring(40, 40), o, &ImageLimits::default()).unwrap_err();
        assert!(matches!(err, Error::Image { .. }), "{err}");
    }

    #[test]
    fn the_alloc_cap_follows_the_pixel_cap() {
        assert_eq!(ImageLimits::with_max_pixels(1000).max_alloc(), 8000);
        assert_eq!(ImageLimits::with_max_pixels(u64::MAX).max_alloc(), u64::MAX);
    }
}
