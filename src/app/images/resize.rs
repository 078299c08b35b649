//! An image at the model's input size: its channels converted, its size changed.

use image::DynamicImage;
use image::imageops::FilterType;

/// `img` converted to `C` channels (alpha composited onto black, 16 bits scaled to 8),
/// resized to `H × W` with a triangle (bilinear) filter, channel after channel. An image
/// without alpha is converted to RGB once; only one with alpha goes through RGBA.
///
/// # Shapes
/// - output: `C·H·W` bytes
pub fn to_input(img: DynamicImage, [c, h, w]: [usize; 3]) -> Vec<u8> {
    let rgb = if img.color().has_alpha() {
        let rgba = img.into_rgba8();
        let (iw, ih) = rgba.dimensions();
        // composite onto black: each colour times its alpha
        let mut rgb = image::RgbImage::new(iw, ih);
        for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
            let a = src[3] as u32;
            for k in 0..3 {
                dst[k] = ((src[k] as u32 * a + 127) / 255) as u8;
            }
        }
        rgb
    } else {
        img.into_rgb8()
    };
    let (iw, ih) = rgb.dimensions();
    let (w32, h32) = (w as u32, h as u32);
    let sized = if (iw, ih) == (w32, h32) {
        rgb
    } else {
        image::imageops::resize(&rgb, w32, h32, FilterType::Triangle)
    };
    if c == 1 {
        sized
            .pixels()
            .map(|p| {
                ((2126 * p[0] as u32 + 7152 * p[1] as u32 + 722 * p[2] as u32 + 5000) / 10000) as u8
            })
            .collect()
    } else {
        let raw = sized.into_raw();
        let plane = w * h;
        let mut out = vec![0u8; 3 * plane];
        for (i, px) in raw.chunks_exact(3).enumerate() {
            for k in 0..3 {
                out[k * plane + i] = px[k];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgb, Rgba};

    #[test]
    fn conversions_by_hand() {
        // RGB (200, 100, 50) -> grey (2126·200 + 7152·100 + 722·50) / 10000 = 117.65 -> 118
        let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(2, 2, Rgb([200, 100, 50])));
        assert_eq!(to_input(rgb.clone(), [1, 2, 2]), vec![118; 4]);
        assert_eq!(to_input(rgb, [3, 1, 1]), vec![200, 100, 50]);
        // grey to RGB: repeated
        let grey = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(1, 1, Luma([77])));
        assert_eq!(to_input(grey, [3, 1, 1]), vec![77, 77, 77]);
        // half transparent white: 255 · 128 / 255 = 128 on black
        let rgba =
            DynamicImage::ImageRgba8(ImageBuffer::from_pixel(1, 1, Rgba([255, 255, 255, 128])));
        assert_eq!(to_input(rgba, [3, 1, 1]), vec![128, 128, 128]);
        // 16-bit: 32768 · 255 / 65535 = 127.5 -> 128
        let deep = DynamicImage::ImageLuma16(ImageBuffer::from_pixel(1, 1, Luma([32768u16])));
        assert_eq!(to_input(deep, [1, 1, 1]), vec![128]);
        // resized to H × W, the aspect ratio not kept: a 5×3 image of 123 to 2×2
        let flat = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(5, 3, Luma([123u8])));
        assert_eq!(to_input(flat, [1, 2, 2]), vec![123; 4]);
        // a brighter right half stays brighter on the right (the filter blends at the edge)
        let halves = ImageBuffer::from_fn(8, 2, |x, _| Luma([if x < 4 { 0u8 } else { 200 }]));
        let small = to_input(DynamicImage::ImageLuma8(halves), [1, 1, 2]);
        assert!(small[0] < 100 && small[1] > 100, "{small:?}");
    }
}
