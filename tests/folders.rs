//! Training on folders of images: the bundled digits written as PNG files (some in colour, some
//! larger than 28×28) and synthetic 32×32 RGB images of 3 classes, each trained to ≥ 95 % held
//! out; and every kind of bad folder refused with one line naming what is wrong, or (with
//! `skip_bad`) left out and listed.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, Luma, Rgb, Rgba};
use netcalc::app::data::Dataset;
use netcalc::app::data::folder::{FolderOptions, load_folder};
use netcalc::app::train::{ProgressMode, RunOptions, TrainConfig, train};
use netcalc::{BackendKind, CnnConfig};

fn device() -> (BackendKind, netcalc::burn::tensor::Device) {
    let kind = if BackendKind::Flex.is_compiled() {
        BackendKind::Flex
    } else {
        netcalc::compiled_backends()[0]
    };
    (kind, netcalc::device_of(kind).unwrap())
}

fn save(path: &Path, img: DynamicImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

/// Options for images of `shape`, their packed files kept in the temporary directory, not in
/// the user's cache.
fn opts(shape: [usize; 3]) -> FolderOptions {
    FolderOptions {
        pack_dir: Some(std::env::temp_dir().join("netcalc-folders-test-packs")),
        ..FolderOptions::new(shape)
    }
}

/// Trains `model` on `data` for `epochs` and returns the held-out accuracy.
fn train_on(model: CnnConfig, data: &Dataset, epochs: usize, out: &Path) -> f64 {
    let (kind, d) = device();
    let cfg = TrainConfig {
        model,
        epochs,
        ..TrainConfig::default()
    };
    let opts = RunOptions {
        out: out.to_path_buf(),
        resume: false,
        stop_after: None,
        progress: ProgressMode::Quiet,
        backend: kind,
        interrupt: None,
        data_record: None,
    };
    train(&cfg, data, &d, &opts).unwrap().evaluation.accuracy
}

/// The bundled sample as `train/<digit>/*.png` and `test/<digit>/*.png`: every third digit in
/// colour (ink in a random-ish colour on black), every fifth scaled up to 40×40.
fn write_digits(root: &Path) {
    let data = Dataset::bundled().unwrap();
    for (split, name) in [(&data.train, "train"), (&data.test, "test")] {
        for i in 0..split.len() {
            let px = split.image(i).to_vec();
            let grey = ImageBuffer::<Luma<u8>, _>::from_raw(28, 28, px).unwrap();
            let img = if i % 3 == 0 {
                let tint = [(1.0, 0.6, 0.3), (0.4, 1.0, 0.8), (0.9, 0.9, 1.0)][i % 9 / 3];
                DynamicImage::ImageRgb8(ImageBuffer::from_fn(28, 28, |x, y| {
                    let v = grey.get_pixel(x, y)[0] as f32;
                    Rgb([(v * tint.0) as u8, (v * tint.1) as u8, (v * tint.2) as u8])
                }))
            } else {
                DynamicImage::ImageLuma8(grey)
            };
            let img = if i % 5 == 0 {
                img.resize_exact(40, 40, image::imageops::FilterType::Triangle)
            } else {
                img
            };
            let label = split.labels[i];
            save(
                &root
                    .join(name)
                    .join(label.to_string())
                    .join(format!("{i:05}.png")),
                img,
            );
        }
    }
}

#[test]
fn digits_as_png_files_train_to_95_percent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("digits");
    write_digits(&root);
    let data = load_folder(&root, &opts([1, 28, 28])).unwrap();
    assert_eq!(
        data.info.classes,
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
    assert_eq!((data.train.len(), data.test.len()), (8000, 2000));
    let acc = train_on(
        CnnConfig::mnist_default(),
        &data,
        3,
        &dir.path().join("run"),
    );
    eprintln!("digits as PNG files: {:.2} % held out", 100.0 * acc);
    assert!(acc >= 0.95, "held-out accuracy {acc}");
    // the run keeps the class names and the normalisation computed on the training split
    let m = netcalc::app::session::TrainedModel::open(&dir.path().join("run"), None).unwrap();
    assert_eq!(m.info, data.info);
}

/// 32×32 RGB images of three classes: a red square, a green bar, a blue ring, each at a random
/// place on a noisy grey background.
fn write_shapes(root: &Path, per_class: usize) {
    let mut state = 12345u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (k, class) in ["ring", "bar", "square"].iter().enumerate() {
        for i in 0..per_class {
            let (cx, cy) = (8 + next() % 16, 8 + next() % 16);
            let mut img = ImageBuffer::from_fn(32, 32, |_, _| {
                let g = 60 + (next() % 60) as u8;
                Rgb([g, g, g])
            });
            for y in 0..32u64 {
                for x in 0..32u64 {
                    let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
                    let inside = match k {
                        0 => (9..=25).contains(&(dx * dx + dy * dy)),
                        1 => dx.abs() <= 1 && dy.abs() <= 6,
                        _ => dx.abs() <= 3 && dy.abs() <= 3,
                    };
                    if inside {
                        let c = [Rgb([40, 40, 220]), Rgb([40, 200, 60]), Rgb([220, 40, 40])][k];
                        img.put_pixel(x as u32, y as u32, c);
                    }
                }
            }
            save(
                &root.join(class).join(format!("{i}.png")),
                DynamicImage::ImageRgb8(img),
            );
        }
    }
}

#[test]
fn three_classes_of_rgb_images_train_to_95_percent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    write_shapes(&root, 200);
    let mut opts = opts([3, 32, 32]);
    opts.val_split = Some(0.25);
    let data = load_folder(&root, &opts).unwrap();
    assert_eq!(data.info.classes, ["bar", "ring", "square"]);
    assert_eq!((data.train.len(), data.test.len()), (450, 150));
    let model = CnnConfig::keras_mnist().for_data([3, 32, 32], 3).unwrap();
    let run = dir.path().join("run");
    let acc = train_on(model, &data, 4, &run);
    eprintln!(
        "3 classes of 32×32 RGB images: {:.2} % held out",
        100.0 * acc
    );
    assert!(acc >= 0.95, "held-out accuracy {acc}");

    // predict names the class; the web API takes an upload (no drawing canvas for this model)
    let m = netcalc::app::session::TrainedModel::open(&run, None).unwrap();
    let ring = root.join("ring/0.png");
    let image = netcalc::app::predict::load_image(&ring, &m.info).unwrap();
    let probs =
        netcalc::app::predict::class_probabilities(&m.model, &m.info, &[image], &m.device).unwrap();
    let (best, _) = netcalc::app::predict::top_k(&probs[0], 1)[0];
    assert_eq!(m.info.class_name(best), "ring");
    let server = netcalc::app::serve::Server::bind(
        netcalc::app::serve::App::of(m),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let s = server.clone();
    std::thread::spawn(move || s.run(2));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = format!("http://{}", server.addr());
    let info: serde_json::Value = serde_json::from_str(
        &agent
            .get(format!("{base}/api/info"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info["draw"], false);
    assert_eq!(
        info["classes"],
        serde_json::json!(["bar", "ring", "square"])
    );
    let answer: serde_json::Value = serde_json::from_str(
        &agent
            .post(format!("{base}/api/predict"))
            .header("Content-Type", "image/png")
            .send(std::fs::read(&ring).unwrap().as_slice())
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer["name"], "ring", "{answer}");
    assert_eq!(answer["top"][0]["name"], "ring");
    server.stop();
}

/// A folder of `classes` with `n` grey 4×4 PNGs each.
fn small_folder(root: &Path, classes: &[&str], n: usize) {
    for (k, c) in classes.iter().enumerate() {
        for i in 0..n {
            let img = ImageBuffer::from_pixel(4, 4, Luma([(k * 60 + i) as u8]));
            save(
                &root.join(c).join(format!("{i}.png")),
                DynamicImage::ImageLuma8(img),
            );
        }
    }
}

fn err(root: &Path, opts: &FolderOptions) -> String {
    let e = load_folder(root, opts).expect_err("refused").to_string();
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

fn split(f: f64) -> FolderOptions {
    let mut o = opts([1, 4, 4]);
    o.val_split = Some(f);
    o
}

#[test]
fn an_empty_class_or_a_single_class_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 3);
    std::fs::create_dir(dir.path().join("c")).unwrap();
    let e = err(dir.path(), &split(0.3));
    assert!(
        e.contains("/c: class `c` has no .png, .jpg or .jpeg images"),
        "{e}"
    );
    let one = tempfile::tempdir().unwrap();
    small_folder(one.path(), &["only"], 3);
    let e = err(one.path(), &split(0.3));
    assert!(
        e.contains("has one class folder (`only`); a classifier needs at least 2"),
        "{e}"
    );
}

#[test]
fn a_truncated_image_among_many_is_named_or_skipped_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 50);
    let bad = dir.path().join("b/7.png");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let not_png = dir.path().join("a/not-an-image.png");
    std::fs::write(&not_png, b"just text").unwrap();
    let e = err(dir.path(), &split(0.2));
    assert!(
        e.contains("b/7.png") || e.contains("not-an-image.png"),
        "{e}"
    );
    assert!(e.contains("cannot read the image"), "{e}");
    let mut skip = split(0.2);
    skip.skip_bad = true;
    let d = load_folder(dir.path(), &skip).unwrap();
    let skipped: Vec<&PathBuf> = d.skipped.iter().map(|(p, _)| p).collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped.contains(&&bad) && skipped.contains(&&not_png),
        "{skipped:?}"
    );
    // 100 images and the text file, less the 2 left out
    assert_eq!(d.train.len() + d.test.len(), 99);
    assert!(
        d.describe().contains("2 unreadable files skipped"),
        "{}",
        d.describe()
    );
}

#[test]
fn other_files_are_left_out_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 3);
    std::fs::write(dir.path().join("a/README.txt"), "notes").unwrap();
    std::fs::write(dir.path().join("b/.DS_Store"), "x").unwrap();
    let d = load_folder(dir.path(), &split(0.3)).unwrap();
    assert_eq!(d.ignored, 2);
    assert!(
        d.describe()
            .contains("2 files that are not images left out"),
        "{}",
        d.describe()
    );
}

#[test]
fn a_huge_image_header_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 3);
    // a PNG whose header says 20000×20000 (then nothing): refused from the header
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey, no interlacing
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d".to_vec();
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.sum().to_be_bytes());
    std::fs::write(dir.path().join("a/huge.png"), &png).unwrap();
    let e = err(dir.path(), &split(0.3));
    assert!(
        e.contains("huge.png") && e.contains("20000×20000") && e.contains("8192 a side"),
        "{e}"
    );
    // a bomb within the sides but over the pixel cap (8000 × 8000 = 64 M): a bad file too,
    // left out and listed with --skip-bad
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&8000u32.to_be_bytes());
    ihdr.extend_from_slice(&8000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d".to_vec();
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.sum().to_be_bytes());
    std::fs::remove_file(dir.path().join("a/huge.png")).unwrap();
    std::fs::write(dir.path().join("b/bomb.png"), &png).unwrap();
    let e = err(dir.path(), &split(0.3));
    assert!(
        e.contains("bomb.png") && e.contains("8000×8000") && e.contains("24000000 in all"),
        "{e}"
    );
    let mut skip = split(0.3);
    skip.skip_bad = true;
    let d = load_folder(dir.path(), &skip).unwrap();
    assert_eq!(d.skipped.len(), 1);
    assert!(d.skipped[0].0.ends_with("b/bomb.png"), "{:?}", d.skipped);
}

#[test]
fn grey_rgb_rgba_and_16_bit_images_mix() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    save(
        &a.join("grey.png"),
        DynamicImage::ImageLuma8(ImageBuffer::from_pixel(2, 2, Luma([100]))),
    );
    save(
        &a.join("rgb.png"),
        DynamicImage::ImageRgb8(ImageBuffer::from_pixel(2, 2, Rgb([100, 100, 100]))),
    );
    save(
        &a.join("rgba.png"),
        DynamicImage::ImageRgba8(ImageBuffer::from_pixel(2, 2, Rgba([200, 200, 200, 128]))),
    );
    save(
        &a.join("deep.png"),
        DynamicImage::ImageLuma16(ImageBuffer::from_pixel(2, 2, Luma([25700u16]))),
    );
    small_folder(dir.path(), &["b"], 4);
    let mut o = opts([1, 2, 2]);
    o.val_split = Some(0.25);
    let d = load_folder(dir.path(), &o).unwrap();
    // every image of class a is 100 once converted: grey 100; RGB 100 (luma); RGBA 200 half
    // transparent on black: (200·128 + 127) / 255 = 100; 16-bit 25700: 25700·255/65535 = 100
    for split in [&d.train, &d.test] {
        for i in 0..split.len() {
            if split.labels[i] == 0 {
                assert_eq!(split.image(i), &[100; 4], "image {i}");
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn file_names_that_are_not_utf8_load_and_folder_names_are_named() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 3);
    let odd = dir.path().join("a").join(OsStr::from_bytes(b"caf\xe9.png"));
    std::fs::copy(dir.path().join("a/0.png"), &odd).unwrap();
    let d = load_folder(dir.path(), &split(0.3)).unwrap();
    assert_eq!(d.train.len() + d.test.len(), 7);
    let bad = tempfile::tempdir().unwrap();
    small_folder(bad.path(), &["a"], 3);
    let folder = bad.path().join(OsStr::from_bytes(b"b\xff"));
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(bad.path().join("a/0.png"), folder.join("0.png")).unwrap();
    let e = err(bad.path(), &split(0.3));
    assert!(
        e.contains("is not UTF-8; class names come from folder names"),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 3);
    std::os::unix::fs::symlink(dir.path().join("loop"), dir.path().join("loop")).unwrap();
    let e = err(dir.path(), &split(0.3));
    assert!(e.contains("/loop"), "{e}");
}

#[test]
fn a_test_folder_without_a_class_of_train_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(&dir.path().join("train"), &["a", "b", "c"], 2);
    small_folder(&dir.path().join("test"), &["a", "b"], 2);
    let e = err(dir.path(), &opts([1, 4, 4]));
    assert!(
        e.contains("test: has no folder for class `c` of train/"),
        "{e}"
    );
    // and --val-split with train/ and test/ already there
    let e = err(dir.path(), &split(0.2));
    assert!(e.contains("has train/ and test/ already"), "{e}");
}

#[test]
fn held_out_shares_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 3);
    for f in [0.0, 1.0, -0.5, 2.0, f64::NAN] {
        let e = err(dir.path(), &split(f));
        assert!(
            e.contains("`val-split`: must be between 0 and 1"),
            "{f}: {e}"
        );
    }
    let e = err(dir.path(), &opts([1, 4, 4]));
    assert!(e.contains("give --val-split F"), "{e}");
    // a class with one image cannot give one to train on and one to hold out
    let one = tempfile::tempdir().unwrap();
    small_folder(one.path(), &["a"], 3);
    small_folder(one.path(), &["b"], 1);
    let e = err(one.path(), &split(0.3));
    assert!(
        e.contains("class `b` has 1 image; --val-split needs at least 2"),
        "{e}"
    );
}

#[test]
fn a_dataset_over_the_memory_limit_is_refused_with_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 10);
    let mut o = split(0.2);
    o.shape = [3, 512, 512];
    o.max_memory = 4 << 20;
    o.in_memory = true;
    let e = err(dir.path(), &o);
    // 20 images of 3×512×512 bytes = 15 MiB
    assert!(
        e.contains(
            "20 images of 3×512×512 take 15.0 MiB in memory, more than the limit of 4.0 MiB"
        ),
        "{e}"
    );
}

/// Options that keep packed files in `packs` (not the user's cache).
fn packed_in(packs: &Path, shape: [usize; 3], val_split: Option<f64>) -> FolderOptions {
    FolderOptions {
        val_split,
        pack_dir: Some(packs.to_path_buf()),
        ..FolderOptions::new(shape)
    }
}

/// The one `.ncpack` file in `dir`.
fn the_pack(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ncpack"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_packed_folder_gives_the_in_memory_images_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, packs) = (dir.path().join("shapes"), dir.path().join("packs"));
    write_shapes(&data, 12);
    let opts = packed_in(&packs, [3, 16, 16], Some(0.25));
    let memory = load_folder(
        &data,
        &FolderOptions {
            in_memory: true,
            ..opts.clone()
        },
    )
    .unwrap();
    assert!(!memory.train.pixels.is_mapped() && memory.packed.is_none());
    let packed = load_folder(&data, &opts).unwrap();
    let file = the_pack(&packs);
    assert_eq!(packed.packed.as_deref(), Some(file.as_path()));
    assert!(packed.train.pixels.is_mapped() && packed.test.pixels.is_mapped());
    // the same bytes, labels, classes and normalisation (to the bit) as the decoded folder
    assert_eq!(packed.train, memory.train);
    assert_eq!(packed.test, memory.test);
    assert_eq!(packed.info, memory.info);
    assert_eq!(
        packed.describe(),
        format!(
            "{}, decoded once into {}",
            memory.describe(),
            file.display()
        )
    );
    // a second load maps the same file: not written again
    let written = std::fs::metadata(&file).unwrap().modified().unwrap();
    let again = load_folder(&data, &opts).unwrap();
    assert_eq!(again.train, memory.train);
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        written
    );
    // another shape is another packed file
    load_folder(&data, &packed_in(&packs, [1, 8, 8], Some(0.25))).unwrap();
    assert_eq!(std::fs::read_dir(&packs).unwrap().count(), 2);
    // `netcalc pack`'s writer: the same images in a file of one's choosing
    let out = dir.path().join("shapes.ncpack");
    let h = netcalc::app::data::pack::pack_folder(&data, &opts, &out).unwrap();
    assert_eq!((h.train, h.test, h.classes.len()), (27, 9, 3));
    let given = netcalc::app::data::pack::open_given(&out).unwrap();
    assert_eq!(given.data.train, memory.train);
    assert_eq!(given.data.test, memory.test);
    assert_eq!(given.data.info, memory.info);
}

#[test]
fn a_damaged_packed_file_is_refused_and_a_cached_one_rebuilt() {
    use netcalc::app::data::pack;
    let dir = tempfile::tempdir().unwrap();
    let (data, packs) = (dir.path().join("digits"), dir.path().join("packs"));
    small_folder(&data, &["a", "b", "c"], 6);
    let opts = packed_in(&packs, [1, 4, 4], Some(0.5));
    let good = load_folder(&data, &opts).unwrap();
    let file = the_pack(&packs);
    let sound = std::fs::read(&file).unwrap();
    let open_err = |bytes: &[u8]| -> String {
        std::fs::write(&file, bytes).unwrap();
        let e = pack::open(&file).expect_err("refused").to_string();
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        assert!(e.contains(&file.display().to_string()), "{e}");
        // the cache rebuilds it from the folder: the same images as before
        let again = load_folder(&data, &opts).unwrap();
        assert_eq!((&again.train, &again.test), (&good.train, &good.test));
        assert_eq!(std::fs::read(&file).unwrap(), sound);
        e
    };
    // truncated
    let e = open_err(&sound[..sound.len() - 100]);
    assert!(e.contains("end marker is missing (truncated?)"), "{e}");
    let e = open_err(&sound[..10]);
    assert!(
        e.contains("shorter than a packed file's fixed parts"),
        "{e}"
    );
    // one pixel changed
    let mut bad = sound.clone();
    bad[16 + 5] ^= 0x40;
    let e = open_err(&bad);
    assert!(
        e.contains("checksum of its pixels and labels does not match"),
        "{e}"
    );
    // a label changed (the checksum covers the labels too)
    let mut bad = sound.clone();
    let labels_at = 16 + 18 * 16;
    bad[labels_at] = 9;
    let e = open_err(&bad);
    assert!(e.contains("does not match"), "{e}");
    // another format version
    let mut bad = sound.clone();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    let e = open_err(&bad);
    assert!(
        e.contains("is a packed file of format version 2; this netcalc reads version 1"),
        "{e}"
    );
    // the header edited
    let mut bad = sound.clone();
    let at = sound.len() - 30;
    bad[at] ^= 1;
    let e = open_err(&bad);
    assert!(e.contains("header's checksum does not match"), "{e}");
    // not a packed file at all
    let e = open_err(b"P6\n4 4\n255\n0123456789012345678901234567890123456789012345");
    assert!(e.contains("is not a netcalc packed file"), "{e}");

    // a file given by name whose folder has changed since it was packed: refused, and the
    // cache packs the changed folder into another file
    let given = dir.path().join("digits.ncpack");
    pack::pack_folder(&data, &opts, &given).unwrap();
    save(
        &data.join("a/extra.png"),
        DynamicImage::ImageLuma8(ImageBuffer::from_pixel(4, 4, Luma([7]))),
    );
    let e = pack::open_given(&given).unwrap_err().to_string();
    assert!(
        e.contains("which has changed since (18 files then, 19 now") && e.contains("netcalc pack"),
        "{e}"
    );
    let changed = load_folder(&data, &opts).unwrap();
    assert_eq!(changed.train.len() + changed.test.len(), 19);
    assert_eq!(std::fs::read_dir(&packs).unwrap().count(), 2);
    // a copy of the file where its folder is not: read as it is
    std::fs::remove_dir_all(&data).unwrap();
    let copied = pack::open_given(&given).unwrap();
    assert_eq!(copied.data.train, good.train);
}

#[test]
fn a_packed_folder_is_not_held_to_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    small_folder(dir.path(), &["a", "b"], 10);
    let mut o = split(0.2);
    o.shape = [3, 64, 64];
    o.max_memory = 64 << 10;
    o.pack_dir = Some(dir.path().join("packs"));
    // 20 images of 3×64×64 = 240 KiB: over the limit in memory, mapped from a file without it
    let e = err(
        dir.path(),
        &FolderOptions {
            in_memory: true,
            ..o.clone()
        },
    );
    assert!(
        e.contains("take 0.2 MiB in memory, more than the limit of 0.1 MiB"),
        "{e}"
    );
    let d = load_folder(dir.path(), &o).unwrap();
    assert_eq!(d.train.len() + d.test.len(), 20);
    assert!(d.train.pixels.is_mapped());
}
