//! The check that every rank of a job trains the same run: rank 0 broadcasts what defines the
//! run (the config, the data's description and fingerprint, the split sizes), every other rank
//! compares it with its own, and a difference anywhere stops every rank, the differing rank
//! naming what differs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::group::Collective;
use crate::app::data::{DataInfo, Fingerprint};
use crate::app::train::TrainConfig;
use crate::error::{Error, Result};

/// What must be the same on every rank of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The training config, in full.
    pub config: TrainConfig,
    /// The classes, image shape, normalisation.
    pub data: DataInfo,
    /// The data files' fingerprint, where the run records its source.
    pub fingerprint: Option<Fingerprint>,
    /// Images in the training split (after `--limit`).
    pub train_images: usize,
    /// Images in the held-out split.
    pub test_images: usize,
    /// Whether the run continues from a checkpoint, and that checkpoint's optimizer step.
    pub resume_step: Option<usize>,
    /// The all-reduce calls each gradient sum is split into (`--allreduce-buckets`): ranks
    /// that split differently would call `MPI_Allreduce` with mismatched sizes.
    pub allreduce_buckets: usize,
}

/// Checks that every rank of `group` has the same [`RunIdentity`] as rank 0. Every rank calls
/// it; every rank gets the same verdict. A rank whose identity differs gets an
/// [`Error::Distributed`] naming the first difference (both values); the others one naming the
/// ranks that differ.
pub fn agree(group: &dyn Collective, mine: &RunIdentity) -> Result<()> {
    let json = |e: serde_json::Error| Error::Distributed {
        message: format!("cannot encode the run's identity: {e}"),
    };
    let my_value = serde_json::to_value(mine).map_err(json)?;
    let mut bytes = if group.rank() == 0 {
        serde_json::to_vec(&my_value).map_err(json)?
    } else {
        Vec::new()
    };
    group.broadcast(&mut bytes);
    let difference = match serde_json::from_slice::<Value>(&bytes) {
        // the data's fingerprint first: other data changes its statistics too
        Ok(lead) => first_difference(
            "fingerprint",
            &lead["fingerprint"],
            &my_value["fingerprint"],
        )
        .or_else(|| first_difference("", &lead, &my_value))
        .map(|d| describe(d, &lead, &my_value)),
        Err(e) => Some(format!("rank 0's run description cannot be read here: {e}")),
    };
    let verdicts = group.gather(u64::from(difference.is_some()));
    let differing: Vec<String> = verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != 0)
        .map(|(r, _)| r.to_string())
        .collect();
    match difference {
        _ if differing.is_empty() => Ok(()),
        Some(d) => Err(Error::Distributed {
            message: format!(
                "rank {} does not train the same run as rank 0: {d}; every rank must be started with the same flags and see the same data",
                group.rank()
            ),
        }),
        None => Err(Error::Distributed {
            message: format!(
                "rank(s) {} of {} differ from rank 0 in config or data (each says how); no rank trains",
                differing.join(", "),
                group.size()
            ),
        }),
    }
}

/// One difference between rank 0's description and this rank's: its path and both values.
#[derive(Debug, PartialEq)]
pub struct Difference {
    /// `config.epochs`, `fingerprint.sha256`.
    pub path: String,
    /// Rank 0's value.
    pub lead: String,
    /// This rank's value.
    pub here: String,
}

/// The first place, in a depth-first walk with object keys in sorted order, where `lead` and
/// `here` differ.
pub fn first_difference(path: &str, lead: &Value, here: &Value) -> Option<Difference> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (lead, here) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                first_difference(&join(k), x, y)
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
        _ if lead == here => None,
        _ => Some(Difference {
            path: path.to_string(),
            lead: short(lead),
            here: short(here),
        }),
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 100 {
        format!("{}…", text.chars().take(100).collect::<String>())
    } else {
        text
    }
}

/// The message for a difference; a data fingerprint is named in full on both sides.
fn describe(d: Difference, lead: &Value, here: &Value) -> String {
    if d.path.starts_with("fingerprint") {
        let name = |v: &Value| {
            v.get("fingerprint")
                .and_then(|f| serde_json::from_value::<Fingerprint>(f.clone()).ok())
                .map_or_else(|| "no fingerprint".to_string(), |f| f.to_string())
        };
        format!(
            "its data differs: {} here, {} on rank 0",
            name(here),
            name(lead)
        )
    } else {
        format!("`{}` is {} here, {} on rank 0", d.path, d.here, d.lead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_difference_is_named_with_both_values() {
        let lead = json!({"config": {"epochs": 3, "seed": 0, "model": {"blocks": [1, 2]}}});
        let same = lead.clone();
        assert_eq!(first_difference("", &lead, &same), None);
        let here = json!({"config": {"epochs": 2, "seed": 1, "model": {"blocks": [1, 2]}}});
        let d = first_difference("", &lead, &here).unwrap();
        assert_eq!(
            d,
            Difference {
                path: "config.epochs".into(),
                lead: "3".into(),
                here: "2".into()
            }
        );
        let here = json!({"config": {"epochs": 3, "seed": 0, "model": {"blocks": [1, 5]}}});
        assert_eq!(
            first_difference("", &lead, &here).unwrap().path,
            "config.model.blocks[1]"
        );
        let here = json!({"config": {"epochs": 3, "seed": 0, "model": {"blocks": [1]}}});
        assert_eq!(
            first_difference("", &lead, &here).unwrap().path,
            "config.model.blocks"
        );
        let here = json!({"config": {"epochs": 3, "seed": 0, "model": {"blocks": [1, 2]}, "x": 1}});
        let d = first_difference("", &lead, &here).unwrap();
        assert_eq!((d.path.as_str(), d.lead.as_str()), ("config.x", "null"));
    }

    #[test]
    fn a_data_difference_names_both_fingerprints() {
        let fp = |files: u64| json!({"fingerprint": {"files": files, "bytes": 10, "sha256": "ab"}, "config": 1});
        let (lead, here) = (fp(960), fp(959));
        let d = first_difference("", &lead, &here).unwrap();
        let text = describe(d, &lead, &here);
        assert!(text.contains("959 files"), "{text}");
        assert!(text.contains("960 files"), "{text}");
        assert!(text.contains("on rank 0"), "{text}");
    }

    #[test]
    fn one_process_always_agrees_with_itself() {
        let mine = RunIdentity {
            config: TrainConfig::default(),
            data: DataInfo::mnist(),
            fingerprint: None,
            train_images: 8000,
            test_images: 2000,
            resume_step: None,
            allreduce_buckets: 1,
        };
        agree(&super::super::Single, &mine).unwrap();
    }
}
