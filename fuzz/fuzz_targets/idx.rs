//! The IDX reader, raw and gzip: `decode_maybe_gzip` → `parse_images` / `parse_labels` →
//! `Split::from_idx`, on arbitrary bytes. Never a panic; what is accepted round-trips.
//!
//! Input layout: `[num_classes, split_hi, split_lo, bytes…]`; the bytes are cut at `split` into
//! an image file and a label file (each raw IDX or gzip).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netcalc::app::data::{Normalization, Split, idx};

fuzz_target!(|data: &[u8]| {
    let [classes, hi, lo, rest @ ..] = data else {
        return;
    };
    let split = (usize::from(*hi) << 8 | usize::from(*lo)).min(rest.len());
    let (image_bytes, label_bytes) = rest.split_at(split);
    let images_path = Path::new("fuzz-images-idx3-ubyte");
    let labels_path = Path::new("fuzz-labels-idx1-ubyte");

    let images = idx::decode_maybe_gzip(images_path, image_bytes.to_vec())
        .and_then(|b| idx::parse_images(images_path, &b).map(|i| (i, b)));
    let labels = idx::decode_maybe_gzip(labels_path, label_bytes.to_vec())
        .and_then(|b| idx::parse_labels(labels_path, &b, *classes).map(|l| (l, b)));

    if let Ok((images, raw)) = &images {
        assert_eq!(
            images.pixels.len(),
            images.count * images.rows * images.cols
        );
        assert_eq!(&idx::encode_images(images), raw, "images round-trip");
    }
    if let Ok((labels, raw)) = &labels {
        assert!(labels.iter().all(|l| l < classes));
        assert_eq!(&idx::encode_labels(labels), raw, "labels round-trip");
    }
    if let (Ok((images, _)), Ok((labels, _))) = (images, labels) {
        let n = labels.len();
        if let Ok(split) = Split::from_idx(images, labels, images_path, Normalization::mnist(1)) {
            assert_eq!(split.len(), n);
        }
    }
    // Errors must render (they are what the user reads).
});
