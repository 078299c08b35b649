//! Reader for the IDX files of the original MNIST distribution, raw or gzip-compressed.
//!
//! Layout (big-endian): two zero bytes, a type byte (`0x08` = unsigned byte), the number of
//! dimensions, one `u32` per dimension, then the data. Gzip is detected by its magic bytes
//! (`1f 8b`), not by the file name. Every check failure is an [`Error::Data`] naming the file.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{Error, Result};

/// Magic number of an IDX file of unsigned bytes with `ndims` dimensions.
const fn magic(ndims: u8) -> [u8; 4] {
    [0, 0, 0x08, ndims]
}

/// A set of images from an `idx3-ubyte` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count·rows·cols` pixels, row-major, 0 = background.
    pub pixels: Vec<u8>,
}

/// The largest IDX content (after decompression) the reader accepts: 256 MiB, more than five
/// times full MNIST's training images (47 MB). Larger files, and headers announcing more, are
/// refused before their data is allocated.
pub const MAX_IDX_BYTES: usize = 256 << 20;

/// Reads a whole file, decompressing it when it starts with the gzip magic bytes; refuses
/// content above [`MAX_IDX_BYTES`] without reading (or inflating) more than that.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_IDX_BYTES as u64 {
        return Err(too_big(path));
    }
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_maybe_gzip(path, raw)
}

fn too_big(path: &Path) -> Error {
    Error::data(
        path,
        format!("holds more than {MAX_IDX_BYTES} bytes, the most an IDX file may have here"),
    )
}

/// [`read_maybe_gzip`] for bytes already in memory (`path` only names them in errors): inflates
/// them when they start with the gzip magic bytes, never past [`MAX_IDX_BYTES`].
pub fn decode_maybe_gzip(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.len() > MAX_IDX_BYTES {
        return Err(too_big(path));
    }
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity((raw.len() * 4).min(MAX_IDX_BYTES));
        GzDecoder::new(raw.as_slice())
            .take(MAX_IDX_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, format!("gzip data is corrupt or truncated: {e}")))?;
        if out.len() > MAX_IDX_BYTES {
            return Err(too_big(path));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses the header of an IDX file of unsigned bytes with `ndims` dimensions and checks that
/// the file holds exactly the data the header announces. Returns the dimensions and the data.
fn parse<'a>(
    path: &Path,
    bytes: &'a [u8],
    ndims: u8,
    what: &str,
) -> Result<(Vec<usize>, &'a [u8])> {
    let header_len = 4 + 4 * ndims as usize;
    if bytes.len() < 4 {
        return Err(Error::data(
            path,
            format!("file is {} bytes, too short for an IDX header", bytes.len()),
        ));
    }
    if bytes[..4] != magic(ndims) {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number {:02x} {:02x} {:02x} {:02x}: expected 00 00 08 {:02x} (IDX {what}, unsigned bytes, {ndims} dimensions)",
                bytes[0], bytes[1], bytes[2], bytes[3], ndims
            ),
        ));
    }
    if bytes.len() < header_len {
        return Err(Error::data(
            path,
            format!("header is truncated: {} of {header_len} bytes", bytes.len()),
        ));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            Error::data(
                path,
                format!(
                    "header announces dimensions {dims:?}, more than the {MAX_IDX_BYTES} bytes an IDX file may hold here"
                ),
            )
        })?;
    let data = &bytes[header_len..];
    if data.len() != expected {
        let per_item: usize = dims[1..].iter().product::<usize>().max(1);
        return Err(Error::data(
            path,
            format!(
                "header says {} {what}, file holds {} ({} data bytes, expected {expected})",
                dims[0],
                data.len() / per_item,
                data.len()
            ),
        ));
    }
    Ok((dims, data))
}

/// Parses an `idx3-ubyte` image file already in memory (`path` only names it in errors).
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<IdxImages> {
    let (dims, data) = parse(path, bytes, 3, "images")?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(Error::data(
            path,
            format!("images of {}x{} pixels", dims[1], dims[2]),
        ));
    }
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels: data.to_vec(),
    })
}

/// Parses an `idx1-ubyte` label file already in memory; every label must be below
/// `num_classes`.
pub fn parse_labels(path: &Path, bytes: &[u8], num_classes: u8) -> Result<Vec<u8>> {
    if num_classes == 0 {
        return Err(Error::setting("num_classes", "must be at least 1"));
    }
    let (_, data) = parse(path, bytes, 1, "labels")?;
    if let Some(i) = data.iter().position(|&l| l >= num_classes) {
        return Err(Error::data(
            path,
            format!(
                "label {} at index {i} is not a class 0..{}",
                data[i],
                num_classes - 1
            ),
        ));
    }
    Ok(data.to_vec())
}

/// Reads an `idx3-ubyte` image file, raw or gzip.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    parse_images(path, &read_maybe_gzip(path)?)
}

/// Reads an `idx1-ubyte` label file (digits 0–9), raw or gzip.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    parse_labels(path, &read_maybe_gzip(path)?, 10)
}

/// Writes images in IDX format (raw), e.g. for tests and for converting data.
pub fn encode_images(images: &IdxImages) -> Vec<u8> {
    let mut out = magic(3).to_vec();
    for d in [images.count, images.rows, images.cols] {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

/// Writes labels in IDX format (raw).
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = magic(1).to_vec();
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn sample() -> IdxImages {
        IdxImages {
            count: 2,
            rows: 2,
            cols: 3,
            pixels: (0..12).collect(),
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn valid_raw_and_gzip_files() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("imgs-idx3-ubyte");
        std::fs::write(&raw, encode_images(&sample())).unwrap();
        assert_eq!(read_images(&raw).unwrap(), sample());
        // a gzip file with a name that does not say so: detected by the magic bytes
        let gz = dir.path().join("imgs-no-extension");
        std::fs::write(&gz, gzip(&encode_images(&sample()))).unwrap();
        assert_eq!(read_images(&gz).unwrap(), sample());
        let lab = dir.path().join("labels.gz");
        std::fs::write(&lab, gzip(&encode_labels(&[3, 9, 0]))).unwrap();
        assert_eq!(read_labels(&lab).unwrap(), vec![3, 9, 0]);
    }

    #[test]
    fn truncated_file_names_the_counts() {
        let p = Path::new("train-labels-idx1-ubyte.gz");
        let mut bytes = encode_labels(&[1u8; 60000]);
        bytes.truncate(bytes.len() - 128);
        let err = parse_labels(p, &bytes, 10).unwrap_err().to_string();
        assert_eq!(
            err,
            "train-labels-idx1-ubyte.gz: header says 60000 labels, file holds 59872 (59872 data bytes, expected 60000)"
        );
        let mut img = encode_images(&sample());
        img.truncate(10);
        let err = parse_images(Path::new("x"), &img).unwrap_err().to_string();
        assert!(err.contains("header is truncated"), "{err}");
        let mut img = encode_images(&sample());
        img.push(0);
        let err = parse_images(Path::new("x"), &img).unwrap_err().to_string();
        assert!(
            err.contains("header says 2 images, file holds 2 (13 data bytes"),
            "{err}"
        );
    }

    #[test]
    fn wrong_magic_is_rejected() {
        // a label file read as images
        let err = parse_images(Path::new("t10k-images"), &encode_labels(&[1, 2]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t10k-images: wrong magic number 00 00 08 01"),
            "{err}"
        );
        let err = parse_labels(Path::new("l"), b"PK\x03\x04rest", 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong magic"), "{err}");
        assert!(parse_labels(Path::new("l"), b"", 10).is_err());
    }

    #[test]
    fn corrupt_gzip_and_bad_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.gz");
        let mut gz = gzip(&encode_labels(&[1; 1000]));
        gz.truncate(gz.len() / 2);
        std::fs::write(&p, gz).unwrap();
        let err = read_labels(&p).unwrap_err().to_string();
        assert!(err.contains("broken.gz: gzip data is corrupt"), "{err}");
        let err = parse_labels(Path::new("l"), &encode_labels(&[1, 12]), 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 12 at index 1"), "{err}");
        let missing = dir.path().join("nope");
        assert!(matches!(read_labels(&missing), Err(Error::Io { .. })));
        let err = parse_labels(Path::new("l"), &encode_labels(&[1]), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_classes"), "{err}");
    }

    /// Headers that announce absurd sizes, and files or gzip streams above the limit, are
    /// refused before their data is allocated.
    #[test]
    fn absurd_sizes_are_refused_before_allocating() {
        // 2^31 images of 28x28 announced by a 16-byte header
        let mut h = vec![0, 0, 8, 3];
        for d in [1u32 << 31, 28, 28] {
            h.extend(d.to_be_bytes());
        }
        let err = parse_images(Path::new("i"), &h).unwrap_err().to_string();
        assert!(
            err.contains("i: header announces dimensions [2147483648, 28, 28]"),
            "{err}"
        );
        // u32::MAX in every dimension overflows usize multiplication on 32-bit and the limit here
        let mut h = vec![0, 0, 8, 3];
        h.extend([0xff; 12]);
        assert!(parse_images(Path::new("i"), &h).is_err());
        // a gzip stream that inflates past the limit (a 256 MiB + 1 run of zeros, ~260 KB packed)
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bomb.gz");
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            e.write_all(&zeros).unwrap();
        }
        e.write_all(&[0]).unwrap();
        std::fs::write(&p, e.finish().unwrap()).unwrap();
        let err = read_images(&p).unwrap_err().to_string();
        assert!(
            err.contains("bomb.gz: holds more than 268435456 bytes"),
            "{err}"
        );
    }
}
