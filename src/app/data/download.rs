//! Downloads of the IDX datasets (MNIST, Fashion-MNIST, KMNIST): their mirrors, SHA-256 sums
//! and class names, a per-user cache, and verified, atomic downloads.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::app::fsio::write_atomic;
use crate::error::{Error, Result};

/// One file of a remote dataset: its name, SHA-256 and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name on the mirror and in the cache.
    pub name: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The four files of full MNIST with their SHA-256 (as published by PyTorch's and
/// TensorFlow's dataset loaders).
pub fn full_mnist_files() -> Vec<RemoteFile> {
    [
        (
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ]
    .into_iter()
    .map(|(name, sha256)| RemoteFile {
        name: name.into(),
        sha256: sha256.into(),
    })
    .collect()
}

/// Public mirrors of full MNIST, tried in turn. (`yann.lecun.com/exdb/mnist/`, the original
/// home, answers 404 and is no longer one of them.)
pub const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `dir` holds `file` with the expected SHA-256.
pub fn is_cached(dir: &Path, file: &RemoteFile) -> bool {
    std::fs::read(dir.join(&file.name))
        .map(|b| sha256_hex(&b) == file.sha256)
        .unwrap_or(false)
}

/// Downloads `files` from the first mirror that serves each of them into `cache_dir`,
/// verifying every file's SHA-256 before it is renamed into place: a failed, truncated or
/// corrupted download never lands in the cache. Shows a progress bar when `progress` is set.
pub fn download_files(
    mirrors: &[String],
    files: &[RemoteFile],
    cache_dir: &Path,
    connect_timeout: Duration,
    progress: bool,
) -> Result<()> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(connect_timeout))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    for file in files {
        if is_cached(cache_dir, file) {
            continue;
        }
        let dest = cache_dir.join(&file.name);
        let mut failures = Vec::new();
        let mut done = false;
        for mirror in mirrors {
            let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
            match fetch(&agent, &url, progress) {
                Ok(bytes) => {
                    let got = sha256_hex(&bytes);
                    if got != file.sha256 {
                        failures.push(format!(
                            "{url}: SHA-256 mismatch (got {got}, expected {})",
                            file.sha256
                        ));
                        continue;
                    }
                    write_atomic(&dest, &bytes)?;
                    done = true;
                    break;
                }
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        if !done {
            return Err(Error::Download {
                file: file.name.clone(),
                message: failures.join("; "),
            });
        }
    }
    Ok(())
}

fn fetch(agent: &ureq::Agent, url: &str, progress: bool) -> std::result::Result<Vec<u8>, String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = response.into_body();
    let len = body.content_length();
    let bar = if progress {
        let bar = ProgressBar::new(len.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut reader = body.into_reader();
    let mut out = Vec::with_capacity(len.unwrap_or(0) as usize);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("connection broke after {} bytes: {e}", out.len()))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(len) = len
        && out.len() as u64 != len
    {
        return Err(format!("short body: {} of {len} bytes", out.len()));
    }
    Ok(out)
}

/// netcalc's per-user cache directory (`~/.cache/netcalc` on Linux), or `$NETCALC_CACHE_DIR`;
/// each dataset has a folder of its name in it.
pub fn cache_root() -> PathBuf {
    if let Ok(dir) = std::env::var("NETCALC_CACHE_DIR")
        && !dir.is_empty()
    {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("netcalc")
}
/// A dataset of IDX files that netcalc can download by name (`--dataset`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum NamedDataset {
    /// MNIST: handwritten digits (LeCun, Cortes, Burges).
    Mnist,
    /// Fashion-MNIST: Zalando's article images (Xiao, Rasul, Vollgraf, 2017).
    FashionMnist,
    /// Kuzushiji-MNIST: cursive Japanese (Clanuwat et al., 2018).
    Kmnist,
}

impl NamedDataset {
    /// Every dataset netcalc knows by name.
    pub const ALL: [NamedDataset; 3] = [
        NamedDataset::Mnist,
        NamedDataset::FashionMnist,
        NamedDataset::Kmnist,
    ];

    /// The dataset called `name` ([`NamedDataset::name`]), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Its name on the command line and in the cache.
    pub fn name(self) -> &'static str {
        match self {
            NamedDataset::Mnist => "mnist",
            NamedDataset::FashionMnist => "fashion-mnist",
            NamedDataset::Kmnist => "kmnist",
        }
    }

    /// Public mirrors of its four files, tried in turn.
    pub fn mirrors(self) -> &'static [&'static str] {
        match self {
            NamedDataset::Mnist => MNIST_MIRRORS,
            NamedDataset::FashionMnist => &[
                "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ],
            NamedDataset::Kmnist => &[
                "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            ],
        }
    }

    /// Its four files with their SHA-256 (the gzip files the mirrors serve).
    pub fn files(self) -> Vec<RemoteFile> {
        let sums: [&str; 4] = match self {
            NamedDataset::Mnist => return full_mnist_files(),
            NamedDataset::FashionMnist => [
                "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
                "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
                "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
                "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
            ],
            NamedDataset::Kmnist => [
                "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
                "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
                "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
                "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
            ],
        };
        IDX_NAMES
            .iter()
            .zip(sums)
            .map(|(name, sha256)| RemoteFile {
                name: name.to_string(),
                sha256: sha256.into(),
            })
            .collect()
    }

    /// Its class names, in label order.
    pub fn classes(self) -> Vec<String> {
        let names: [&str; 10] = match self {
            NamedDataset::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            NamedDataset::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            // one character of each row of hiragana: お き す つ な は ま や れ を
            NamedDataset::Kmnist => ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
        };
        names.iter().map(|n| n.to_string()).collect()
    }

    /// How a new image becomes this dataset's model input: MNIST reads photos of digits
    /// ([`super::Preprocess::Digit`]); the others take images as they are, resized.
    pub fn preprocess(self) -> super::Preprocess {
        match self {
            NamedDataset::Mnist => super::Preprocess::Digit,
            _ => super::Preprocess::Resize,
        }
    }

    /// Its per-user cache directory: [`cache_root`]`/<name>`.
    pub fn cache_dir(self) -> PathBuf {
        cache_root().join(self.name())
    }
}

impl std::fmt::Display for NamedDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The names every IDX dataset's files have on its mirrors, in the order train images, train
/// labels, test images, test labels.
const IDX_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Hosts known to serve none of the files any more (yann.lecun.com answers 404).
    const DEAD: &[&str] = &["yann.lecun.com"];

    #[test]
    fn every_dataset_has_live_distinct_directory_mirrors() {
        for dataset in [
            NamedDataset::Mnist,
            NamedDataset::FashionMnist,
            NamedDataset::Kmnist,
        ] {
            let mirrors = dataset.mirrors();
            assert!(!mirrors.is_empty(), "{dataset}");
            for (i, m) in mirrors.iter().enumerate() {
                assert!(
                    m.starts_with("https://") || m.starts_with("http://"),
                    "{dataset}: {m}"
                );
                assert!(m.ends_with('/'), "{dataset}: {m} is not a directory");
                let host = m.split('/').nth(2).unwrap();
                assert!(!DEAD.contains(&host), "{dataset}: dead mirror {m}");
                assert!(!mirrors[..i].contains(m), "{dataset}: {m} twice");
            }
        }
    }
}
