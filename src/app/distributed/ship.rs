//! A resume on several machines without a shared filesystem: rank 0 reads the files of the
//! run directory that a resume reads (the config, the data's description and record, the
//! checkpoint) and broadcasts them; every other rank unpacks them into a private temporary
//! directory and resumes from there. Only rank 0 ever touches the real run directory.

use std::path::{Component, Path, PathBuf};

use super::group::Collective;
use crate::app::train::{CheckpointInfo, RunDir};
use crate::error::{Error, Result};

/// The run directory's files a resume reads, next to `checkpoint.json`.
const TOP_FILES: [&str; 4] = [
    RunDir::CONFIG,
    RunDir::DATA,
    RunDir::SOURCE,
    RunDir::CHECKPOINT,
];

/// Rank 0's run directory `dir` on every rank: rank 0 gets `None` (it reads `dir` itself),
/// the others a temporary copy of what a resume reads (removed when dropped). Every rank calls
/// it. When rank 0 cannot read the directory, every rank gets an error.
pub fn share_run_dir(group: &dyn Collective, dir: &Path) -> Result<Option<tempfile::TempDir>> {
    if group.rank() == 0 {
        let packed = pack(dir);
        let mut bytes = match &packed {
            Ok(b) => {
                let mut v = vec![0u8];
                v.extend_from_slice(b);
                v
            }
            Err(e) => {
                let mut v = vec![1u8];
                v.extend_from_slice(e.to_string().as_bytes());
                v
            }
        };
        group.broadcast(&mut bytes);
        packed.map(|_| None)
    } else {
        let mut bytes = Vec::new();
        group.broadcast(&mut bytes);
        match bytes.split_first() {
            Some((0, archive)) => {
                fail::fail_point!("ship-unpack", |m: Option<String>| Err(Error::Fault {
                    point: "ship-unpack".into(),
                    message: m.unwrap_or_else(|| "cannot unpack the run directory".into()),
                }));
                unpack(archive).map(Some)
            }
            Some((_, message)) => Err(Error::Distributed {
                message: format!(
                    "rank 0 cannot read the run directory to resume: {}",
                    String::from_utf8_lossy(message)
                ),
            }),
            None => Err(Error::Distributed {
                message: "rank 0 sent nothing to resume from".into(),
            }),
        }
    }
}

/// `(relative name, contents)` of each file, length-prefixed: u32 name length, name, u64
/// content length, contents.
fn pack(dir: &Path) -> Result<Vec<u8>> {
    let run = RunDir::open(dir)?;
    let mut names: Vec<String> = TOP_FILES
        .iter()
        .filter(|n| run.file(n).is_file())
        .map(|n| n.to_string())
        .collect();
    if !names.iter().any(|n| n == RunDir::CHECKPOINT) {
        return Err(Error::io(
            run.file(RunDir::CHECKPOINT),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no checkpoint to resume from"),
        ));
    }
    let info: CheckpointInfo = crate::app::fsio::read_json(&run.file(RunDir::CHECKPOINT))?;
    let ckpt = run.file(&info.dir);
    let entries = std::fs::read_dir(&ckpt).map_err(|e| Error::io(&ckpt, e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(&ckpt, e))?;
        if e.path().is_file() {
            names.push(format!("{}/{}", info.dir, e.file_name().to_string_lossy()));
        }
    }
    let mut out = Vec::new();
    for name in names {
        let path = run.file(&name);
        let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(&data);
    }
    Ok(out)
}

fn unpack(mut archive: &[u8]) -> Result<tempfile::TempDir> {
    let bad = |what: &str| Error::Distributed {
        message: format!("the run directory rank 0 sent is damaged: {what}"),
    };
    let dir = tempfile::Builder::new()
        .prefix("netcalc-resume-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let mut take = |n: usize| -> Result<&[u8]> {
        if archive.len() < n {
            return Err(bad("it ends early"));
        }
        let (head, rest) = archive.split_at(n);
        archive = rest;
        Ok(head)
    };
    loop {
        let Ok(len) = take(4) else { break };
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let name = String::from_utf8(take(len)?.to_vec()).map_err(|_| bad("a name"))?;
        let size = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let data = take(usize::try_from(size).map_err(|_| bad("a size"))?)?;
        let rel = PathBuf::from(&name);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad(&format!("the name `{name}`")));
        }
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, data).map_err(|e| Error::io(&path, e))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_run_directory_unpacks_to_the_same_files_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("config.json"), b"{\"a\": 1}").unwrap();
        std::fs::write(d.join("metrics.csv"), b"not shipped").unwrap();
        std::fs::write(
            d.join("checkpoint.json"),
            br#"{"epoch": 1, "dir": "checkpoint-epoch-001", "seed": 0, "steps": 3, "backend": "flex"}"#,
        )
        .unwrap();
        std::fs::create_dir(d.join("checkpoint-epoch-001")).unwrap();
        std::fs::write(d.join("checkpoint-epoch-001/model.bpk"), [0u8, 1, 2, 255]).unwrap();
        let copy = unpack(&pack(d).unwrap()).unwrap();
        let c = copy.path();
        assert_eq!(std::fs::read(c.join("config.json")).unwrap(), b"{\"a\": 1}");
        assert_eq!(
            std::fs::read(c.join("checkpoint-epoch-001/model.bpk")).unwrap(),
            [0, 1, 2, 255]
        );
        assert!(!c.join("metrics.csv").exists());
        assert!(!c.join("data.json").exists());

        let mut evil = Vec::new();
        let name = b"../escape";
        evil.extend_from_slice(&(name.len() as u32).to_le_bytes());
        evil.extend_from_slice(name);
        evil.extend_from_slice(&1u64.to_le_bytes());
        evil.push(b'x');
        let e = unpack(&evil).unwrap_err().to_string();
        assert!(e.contains("../escape"), "{e}");
        let e = unpack(&evil[..6]).unwrap_err().to_string();
        assert!(e.contains("ends early"), "{e}");
        let e = pack(&d.join("nowhere")).unwrap_err().to_string();
        assert!(e.contains("nowhere"), "{e}");
    }
}
