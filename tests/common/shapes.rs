//! Small labelled image folders for the tests: circles, crosses and squares on noise, 28×28
//! grey PNGs, the same for every seed.

/// A deterministic 28×28 grey picture of a `shape` ("circle", "cross", "square") at a
/// position and size drawn from `seed`, with a little noise: data that is not digits.
pub fn shape_image(shape: &str, seed: u64) -> image::GrayImage {
    let mut s = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut next = move |n: u64| {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (s >> 33) % n
    };
    let (cx, cy, r) = (9 + next(10) as i64, 9 + next(10) as i64, 4 + next(4) as i64);
    let noise: Vec<u8> = (0..28 * 28).map(|_| next(40) as u8).collect();
    image::GrayImage::from_fn(28, 28, |x, y| {
        let (dx, dy) = (x as i64 - cx, y as i64 - cy);
        let ink = match shape {
            "circle" => ((dx * dx + dy * dy) as f64).sqrt().round() as i64 == r,
            "cross" => (dx.abs() <= 1 || dy.abs() <= 1) && dx.abs() <= r && dy.abs() <= r,
            _ => (dx.abs() == r && dy.abs() <= r) || (dy.abs() == r && dx.abs() <= r),
        };
        image::Luma([if ink {
            230
        } else {
            noise[(y * 28 + x) as usize]
        }])
    })
}

/// `DIR/train/<class>/…` and `DIR/test/<class>/…` of [`shape_image`]s.
pub fn write_shapes(dir: &std::path::Path, train: u64, test: u64) {
    for (k, class) in ["circle", "cross", "square"].iter().enumerate() {
        for (split, n, base) in [("train", train, 0), ("test", test, 10_000)] {
            let d = dir.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let seed = base + 100 * i + k as u64;
                shape_image(class, seed)
                    .save(d.join(format!("{i:04}.png")))
                    .unwrap();
            }
        }
    }
}
