//! A folder of images decoded once into one packed file, memory-mapped when read.
//!
//! A packed file holds every image of a folder already decoded and resized to the model's
//! input (`u8`, `C×H×W`, as [`super::folder`] reads them), the labels, and a header with the
//! class names, the normalisation of the training images, the folder's [`Fingerprint`] and the
//! options that shaped the split. `netcalc pack` writes one on request; `train --data DIR`
//! writes one on first use into netcalc's cache (`packs/`, keyed by the folder's
//! fingerprint, the shape and the split's options) and maps it on every later run, resume
//! and `eval`. The pixels are read from the map, so the process holds none of them: the page
//! cache does, as the operating system decides.
//!
//! # Layout (format version 1, little-endian)
//! ```text
//! 0        "NCPACK\r\n"  magic            8 bytes
//! 8        format version, u32           4
//! 12       reserved (0), u32             4
//! 16       train pixels                  n_train · C·H·W bytes
//!          test pixels                   n_test · C·H·W
//!          train labels, u32 each        4 · n_train
//!          test labels, u32 each         4 · n_test
//!          header, JSON ([`PackHeader`])
//! end-24   header length, u64            8
//! end-16   CRC-32 of the header, u32     4
//! end-12   CRC-32 of bytes 16..header, u32  4
//! end-8    "NCPKEND\n"                   8
//! ```
//!
//! # Damage
//! Opening checks the magic, the version, the end marker, the header's CRC, that the file's
//! length is what the header's counts say, every label, and the CRC of the pixels and labels
//! (one sequential read of the file). A file that fails any check is refused with what
//! failed, and never gives images; a cached file that fails is rebuilt from its folder.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::folder::{self, Entry, FolderOptions, Listing};
use super::normalization::Moments;
use super::record::{Fingerprint, absolute};
use super::{DataInfo, DataSource, Dataset, Normalization, Pixels, Preprocess, Split};
use crate::error::{Error, Result};

/// The format version this netcalc writes and reads.
pub const PACK_VERSION: u32 = 1;
/// A packed file's extension.
pub const EXTENSION: &str = "ncpack";
const MAGIC: &[u8; 8] = b"NCPACK\r\n";
const END: &[u8; 8] = b"NCPKEND\n";
const PRELUDE: usize = 16;
const FOOTER: usize = 24;
/// The most bytes a header may take (it lists skipped files, so it grows with bad files).
const MAX_HEADER: u64 = 256 << 20;

/// What a packed file says of its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackHeader {
    /// The format version (also in the file's first bytes).
    pub version: u32,
    /// The netcalc that wrote it.
    pub netcalc: String,
    /// The dataset's name (the folder's).
    pub name: String,
    /// The folder it was packed from, absolute.
    pub source: PathBuf,
    /// The folder's fingerprint when it was packed.
    pub fingerprint: Fingerprint,
    /// `[C, H, W]` of every image.
    pub shape: [usize; 3],
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// The share of each class held out, for a folder without `train/` and `test/`.
    pub val_split: Option<f64>,
    /// The seed of that held-out split (0 when there is none).
    pub seed: u64,
    /// Unreadable images were left out.
    pub skip_bad: bool,
    /// Training images.
    pub train: usize,
    /// Held-out images.
    pub test: usize,
    /// The training images' per-channel means, as f32 bits (exact).
    pub mean_bits: Vec<u32>,
    /// Their standard deviations, as f32 bits.
    pub std_bits: Vec<u32>,
    /// Files left out with `skip_bad`, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Files in the class folders that are not images.
    pub ignored: usize,
}

impl PackHeader {
    /// The training images' normalisation.
    pub fn normalization(&self) -> Normalization {
        Normalization {
            mean: self.mean_bits.iter().map(|&b| f32::from_bits(b)).collect(),
            std: self.std_bits.iter().map(|&b| f32::from_bits(b)).collect(),
        }
    }

    fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The file's length for these counts and a header of `header_len` bytes.
    fn file_len(&self, header_len: u64) -> Option<u64> {
        let n = (self.train as u64).checked_add(self.test as u64)?;
        let body = n.checked_mul(self.image_len() as u64 + 4)?;
        (PRELUDE as u64 + FOOTER as u64)
            .checked_add(body)?
            .checked_add(header_len)
    }
}

/// A packed file, opened and checked.
#[derive(Debug, Clone)]
pub struct PackedFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub header: PackHeader,
    /// The file's own fingerprint (what a run records for `--data FILE`): one file, its
    /// length, and a SHA-256 over its header and its pixels' checksum.
    pub identity: Fingerprint,
    /// The images, mapped.
    pub data: Dataset,
}

/// The cached packed file of the folder `dir` for `opts` (its shape, held-out split, seed
/// and `skip_bad`) when its fingerprint is `fingerprint`.
pub fn cache_path(dir: &Path, fingerprint: &Fingerprint, opts: &FolderOptions) -> PathBuf {
    let [c, h, w] = opts.shape;
    let mut key = Sha256::new();
    key.update(
        format!(
            "v{PACK_VERSION}|{}|{}|{}|{c}x{h}x{w}|{:?}|{}|{}",
            fingerprint.sha256,
            fingerprint.files,
            fingerprint.bytes,
            opts.val_split,
            if opts.val_split.is_some() {
                opts.seed
            } else {
                0
            },
            opts.skip_bad
        )
        .as_bytes(),
    );
    let key: String = key.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name: String = folder::folder_name(&absolute(dir))
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' {
                ch
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    opts.pack_dir()
        .join(format!("{name}-{c}x{h}x{w}-{key}.{EXTENSION}"))
}

/// The folder `dir` from its cached packed file: mapped when the file is there and sound,
/// else packed now (a damaged or outdated file is replaced).
pub fn load_cached(dir: &Path, opts: &FolderOptions) -> Result<Dataset> {
    folder::check(dir, opts)?;
    let fingerprint = Fingerprint::of_folder(dir)?;
    let path = cache_path(dir, &fingerprint, opts);
    if path.is_file() {
        match open(&path) {
            Ok(p) if p.header.fingerprint == fingerprint && p.header.shape == opts.shape => {
                return Ok(with_folder_source(p, dir));
            }
            // damaged, outdated or from another version: the folder is here, pack it again
            _ => {}
        }
    }
    let dir_listing = folder::list(dir, opts)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::io(
                parent,
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot make the cache of packed folders ({e}); set NETCALC_CACHE_DIR, or give --in-memory"
                    ),
                ),
            )
        })?;
    }
    write_listing(dir, dir_listing, fingerprint, opts, &path)?;
    let p = open(&path)?;
    Ok(with_folder_source(p, dir))
}

fn with_folder_source(p: PackedFile, dir: &Path) -> Dataset {
    let mut data = p.data;
    data.source = DataSource::Folder(dir.to_path_buf());
    data.packed = Some(p.path);
    data
}

/// Packs the folder `dir` (read as `opts` says) into `out`: decoded in parallel, written
/// atomically (a temporary file renamed over `out`), with a progress bar when
/// `opts.progress`. Returns the header written.
pub fn pack_folder(dir: &Path, opts: &FolderOptions, out: &Path) -> Result<PackHeader> {
    let listing = folder::list(dir, opts)?;
    let fingerprint = Fingerprint::of_folder(dir)?;
    write_listing(dir, listing, fingerprint, opts, out)
}

fn write_listing(
    dir: &Path,
    listing: Listing,
    fingerprint: Fingerprint,
    opts: &FolderOptions,
    out: &Path,
) -> Result<PackHeader> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".netcalc-pack-")
        .suffix(".tmp")
        .tempfile_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    let io = |e: std::io::Error| Error::io(out, e);
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, tmp.as_file()),
        crc: crc32fast::Hasher::new(),
    };
    let mut prelude = [0u8; PRELUDE];
    prelude[..8].copy_from_slice(MAGIC);
    prelude[8..12].copy_from_slice(&PACK_VERSION.to_le_bytes());
    w.out.write_all(&prelude).map_err(io)?;
    let total = (listing.train.len() + listing.test.len()) as u64;
    let bar = folder::progress_bar(opts.progress, total);
    let mut skipped = Vec::new();
    let mut moments = Moments::new(opts.shape);
    let train = write_split(
        &listing.train,
        opts,
        &bar,
        &mut w,
        &mut skipped,
        Some(&mut moments),
        out,
    )?;
    let test = write_split(&listing.test, opts, &bar, &mut w, &mut skipped, None, out)?;
    bar.finish_and_clear();
    for (labels, what) in [(&train, "train"), (&test, "test")] {
        if labels.is_empty() {
            return Err(folder::no_readable(dir, what));
        }
    }
    for l in train.iter().chain(&test) {
        w.body(&l.to_le_bytes()).map_err(io)?;
    }
    let normalization = moments.finish();
    let header = PackHeader {
        version: PACK_VERSION,
        netcalc: env!("CARGO_PKG_VERSION").into(),
        name: folder::folder_name(dir),
        source: absolute(dir),
        fingerprint,
        shape: opts.shape,
        classes: listing.classes,
        val_split: opts.val_split,
        seed: if opts.val_split.is_some() {
            opts.seed
        } else {
            0
        },
        skip_bad: opts.skip_bad,
        train: train.len(),
        test: test.len(),
        mean_bits: normalization.mean.iter().map(|m| m.to_bits()).collect(),
        std_bits: normalization.std.iter().map(|s| s.to_bits()).collect(),
        skipped,
        ignored: listing.ignored,
    };
    let json = serde_json::to_vec(&header).map_err(|e| Error::data(out, e.to_string()))?;
    let body_crc = w.crc.clone().finalize();
    w.out.write_all(&json).map_err(io)?;
    let mut footer = [0u8; FOOTER];
    footer[..8].copy_from_slice(&(json.len() as u64).to_le_bytes());
    footer[8..12].copy_from_slice(&crc32fast::hash(&json).to_le_bytes());
    footer[12..16].copy_from_slice(&body_crc.to_le_bytes());
    footer[16..].copy_from_slice(END);
    w.out.write_all(&footer).map_err(io)?;
    w.out.flush().map_err(io)?;
    drop(w);
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    crate::app::fsio::sync_dir(&parent)?;
    Ok(header)
}

struct Writer<'a> {
    out: BufWriter<&'a std::fs::File>,
    crc: crc32fast::Hasher,
}

impl Writer<'_> {
    fn body(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }
}

/// Decodes `entries` ([`folder::decode_each`]) and writes their pixels in order, feeding
/// `moments` on the way; returns their labels. A write error names `out`.
fn write_split(
    entries: &[Entry],
    opts: &FolderOptions,
    bar: &indicatif::ProgressBar,
    w: &mut Writer<'_>,
    skipped: &mut Vec<(PathBuf, String)>,
    mut moments: Option<&mut Moments>,
    out: &Path,
) -> Result<Vec<u32>> {
    let mut labels = Vec::with_capacity(entries.len());
    folder::decode_each(entries, opts, bar, skipped, |px, class| {
        w.body(px).map_err(|e| Error::io(out, e))?;
        if let Some(m) = moments.as_deref_mut() {
            m.add(px);
        }
        labels.push(class);
        Ok(())
    })?;
    Ok(labels)
}

/// The fingerprint of the packed file `path` ([`PackedFile::identity`]) from its header and
/// end alone: what a run records, checked again at a resume.
pub fn identity(path: &Path) -> Result<Fingerprint> {
    Ok(open_with(path, false)?.identity)
}

/// The header of the packed file `path`, its fixed parts checked (not its pixels).
pub fn header(path: &Path) -> Result<PackHeader> {
    Ok(open_with(path, false)?.header)
}

/// Opens and checks the packed file `path` (see the [module docs](self) for what is
/// checked), its pixels mapped.
pub fn open(path: &Path) -> Result<PackedFile> {
    open_with(path, true)
}

fn open_with(path: &Path, verify_body: bool) -> Result<PackedFile> {
    let damaged = |what: String| {
        Error::data(
            path,
            format!("is not a sound netcalc packed file: {what}; pack the folder again"),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len < (PRELUDE + FOOTER) as u64 {
        return Err(damaged(format!(
            "it is {len} bytes, shorter than a packed file's fixed parts (truncated?)"
        )));
    }
    // SAFETY: the map is read-only and private to this process's reading; netcalc writes a
    // packed file once, to a temporary name, and renames it into place, so no netcalc
    // process changes a file after it can be opened. Another program that truncates or
    // rewrites the file while it is mapped is outside what is supported (reading would then
    // see other bytes, or fault), as for every memory-mapped reader.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let map = Arc::new(map);
    let bytes: &[u8] = &map;
    if &bytes[..8] != MAGIC {
        return Err(Error::data(
            path,
            "is not a netcalc packed file (its first bytes are not NCPACK); pack a folder with `netcalc pack`",
        ));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != PACK_VERSION {
        return Err(Error::data(
            path,
            format!(
                "is a packed file of format version {version}; this netcalc reads version {PACK_VERSION}: pack the folder again"
            ),
        ));
    }
    let footer = &bytes[bytes.len() - FOOTER..];
    if &footer[16..] != END {
        return Err(damaged("its end marker is missing (truncated?)".into()));
    }
    let header_len = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
    let header_crc = u32::from_le_bytes(footer[8..12].try_into().expect("4 bytes"));
    let body_crc = u32::from_le_bytes(footer[12..16].try_into().expect("4 bytes"));
    if header_len > MAX_HEADER || header_len > len - (PRELUDE + FOOTER) as u64 {
        return Err(damaged(format!(
            "its header length {header_len} is impossible"
        )));
    }
    let header_end = bytes.len() - FOOTER;
    let header_start = header_end - header_len as usize;
    let json = &bytes[header_start..header_end];
    if crc32fast::hash(json) != header_crc {
        return Err(damaged("its header's checksum does not match".into()));
    }
    let header: PackHeader =
        serde_json::from_slice(json).map_err(|e| damaged(format!("its header: {e}")))?;
    if header.version != PACK_VERSION {
        return Err(damaged(
            "its header's version differs from its prelude's".into(),
        ));
    }
    let [c, h, w] = header.shape;
    if !(c == 1 || c == 3) || h == 0 || w == 0 || header.classes.len() < 2 {
        return Err(damaged(format!(
            "its header says {:?} images of {} classes",
            header.shape,
            header.classes.len()
        )));
    }
    if header.file_len(header_len) != Some(len) {
        return Err(damaged(format!(
            "it is {len} bytes; {} + {} images of {c}×{h}×{w} with their labels take {} (truncated or extended)",
            header.train,
            header.test,
            header
                .file_len(header_len)
                .map_or("more than can be addressed".into(), |n| n.to_string())
        )));
    }
    if header.mean_bits.len() != c || header.std_bits.len() != c {
        return Err(damaged(
            "its normalisation has the wrong number of channels".into(),
        ));
    }
    if verify_body && crc32fast::hash(&bytes[PRELUDE..header_start]) != body_crc {
        return Err(damaged(
            "the checksum of its pixels and labels does not match (a byte changed)".into(),
        ));
    }
    let image = header.image_len();
    let (n_train, n_test) = (header.train, header.test);
    let pixels_end = PRELUDE + (n_train + n_test) * image;
    let labels: Vec<u32> = bytes[pixels_end..header_start]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    if let Some(bad) = labels
        .iter()
        .position(|&l| l as usize >= header.classes.len())
        .filter(|_| verify_body)
    {
        return Err(damaged(format!(
            "image {bad} has label {}, of {} classes",
            labels[bad],
            header.classes.len()
        )));
    }
    let normalization = header.normalization();
    normalization
        .check("pack", c)
        .map_err(|e| damaged(e.to_string()))?;
    let identity = {
        let mut s = Sha256::new();
        s.update(json);
        s.update(body_crc.to_le_bytes());
        Fingerprint {
            files: 1,
            bytes: len,
            sha256: s.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        }
    };
    let split = |range: std::ops::Range<usize>, labels: &[u32]| Split {
        pixels: Pixels::mapped(Arc::clone(&map), range),
        labels: labels.to_vec(),
        shape: header.shape,
        normalization: normalization.clone(),
    };
    let train_end = PRELUDE + n_train * image;
    let data = Dataset {
        train: split(PRELUDE..train_end, &labels[..n_train]),
        test: split(train_end..pixels_end, &labels[n_train..]),
        source: DataSource::Pack(path.to_path_buf()),
        name: header.name.clone(),
        info: DataInfo {
            classes: header.classes.clone(),
            shape: header.shape,
            normalization,
            preprocess: Preprocess::Resize,
        },
        skipped: header.skipped.clone(),
        ignored: header.ignored,
        packed: Some(path.to_path_buf()),
    };
    Ok(PackedFile {
        path: path.to_path_buf(),
        header,
        identity,
        data,
    })
}

/// A packed file given by the user (`--data FILE`): opened and checked, and refused when the
/// folder it was packed from is still there and has changed since.
pub fn open_given(path: &Path) -> Result<PackedFile> {
    let p = open(path)?;
    let src = &p.header.source;
    if src.is_dir() {
        let now = Fingerprint::of_folder(src)?;
        if let Some(diff) = p.header.fingerprint.difference(&now) {
            return Err(Error::data(
                path,
                format!(
                    "was packed from {}, which has changed since ({diff}); pack it again with `netcalc pack --data {} --input-shape {}x{}x{} --out {}`",
                    src.display(),
                    src.display(),
                    p.header.shape[0],
                    p.header.shape[1],
                    p.header.shape[2],
                    path.display()
                ),
            ));
        }
    }
    Ok(p)
}
