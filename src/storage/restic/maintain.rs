//! Keeping a restic repository: the retention rules of `retention.rs` applied to the tool's
//! snapshots of each volume and engine on its own (then `forget` and `prune` as restic does
//! them), and `check`, reading all or a sample of the pack files.

use std::collections::BTreeMap;

use anyhow::Result;
use rustic_core::repofile::SnapshotId;
use rustic_core::{CheckOptions, Open, PruneOptions, ReadSubsetOption, Repository};

use super::list::Snapshot;
use crate::retention::{self, Decision, Policy};

/// The verdict on each of the tool's snapshots, grouped by (host, volume): the rules see one
/// volume of one engine at a time, so a busy volume never pushes out another's snapshots.
/// Snapshots the tool did not make are not candidates (and not returned).
pub fn decide(all: &[Snapshot], volume: Option<&str>, policy: &Policy) -> Vec<Group> {
    let mut groups: BTreeMap<(String, String), Vec<Snapshot>> = BTreeMap::new();
    for s in all.iter().filter(|s| s.ours) {
        let v = s.volume.clone().unwrap_or_default();
        if volume.is_some_and(|want| want != v) {
            continue;
        }
        groups
            .entry((s.host.clone(), v))
            .or_default()
            .push(s.clone());
    }
    groups
        .into_iter()
        .map(|((host, volume), mut snaps)| {
            snaps.sort_by_key(|s| std::cmp::Reverse(s.created));
            let times: Vec<_> = snaps.iter().map(|s| s.created).collect();
            let decisions = retention::apply(&times, policy);
            Group {
                host,
                volume,
                verdicts: snaps.into_iter().zip(decisions).collect(),
            }
        })
        .collect()
}

/// One volume of one engine and what the rules say of each of its snapshots (newest first).
#[derive(Debug)]
pub struct Group {
    pub host: String,
    pub volume: String,
    pub verdicts: Vec<(Snapshot, Decision)>,
}

/// What `forget_and_prune` did.
#[derive(Debug, Default)]
pub struct Pruned {
    pub forgotten: usize,
    /// Pack files no snapshot needs any more, now marked for deletion.
    pub packs_marked: u64,
    /// Pack files repacked (their live blobs copied, the pack then marked).
    pub packs_repacked: u64,
    /// Pack files an earlier prune marked at least 23 hours ago, removed now, and their bytes.
    pub packs_removed: u64,
    pub bytes_removed: u64,
}

/// Removes the snapshots `ids`, then prunes with rustic's defaults: packs no snapshot needs are
/// marked for deletion and removed by a prune at least 23 hours later (rustic takes no lock, so
/// this two-phase delete is what keeps a save running meanwhile safe), partly used ones are
/// repacked while more than 5% of the repository is unused (at most 10% of it per run).
/// Blocking.
pub fn forget_and_prune<S: Open>(repo: &Repository<S>, ids: &[String]) -> Result<Pruned> {
    let ids: Vec<SnapshotId> = ids
        .iter()
        .map(|id| {
            id.parse::<rustic_core::Id>()
                .map(SnapshotId::from)
                .map_err(|e| super::failed(&format!("snapshot ID {id}"), e))
        })
        .collect::<Result<_>>()?;
    if !ids.is_empty() {
        repo.delete_snapshots(&ids)
            .map_err(|e| super::failed("removing the snapshots", e))?;
    }
    let opts = PruneOptions::default();
    let plan = repo
        .prune_plan(&opts)
        .map_err(|e| super::failed("planning the prune", e))?;
    let stats = &plan.stats;
    let pruned = Pruned {
        forgotten: ids.len(),
        packs_marked: stats.packs.unused,
        packs_repacked: stats.packs.repack,
        packs_removed: stats.packs_to_delete.remove,
        bytes_removed: stats.size_to_delete.remove,
    };
    repo.prune(&opts, plan)
        .map_err(|e| super::failed("pruning unused data", e))?;
    Ok(pruned)
}

/// `verify restic:REPO [--read-data-subset S]`: how much pack data a check reads.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadData {
    /// Structure only: index, snapshots, trees, and that every blob is in a pack.
    None,
    /// Every pack file, or a sample (`10%`, `1/5`, `500M`), as restic's `--read-data-subset`.
    Subset(String),
}

/// The problems a check found: errors, then warnings (restic's words).
#[derive(Debug, Default)]
pub struct Checked {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Parses a `--read-data-subset` value as restic writes it: `all`, `n/m`, `x%` or a size.
pub fn parse_subset(s: &str) -> Result<(), String> {
    s.parse::<ReadSubsetOption>()
        .map(|_| ())
        .map_err(|e| format!("{s}: {}", super::brief(&e)))
}

/// Checks the repository like `restic check` (with `--read-data-subset` when asked). Blocking.
pub fn check<S: Open>(repo: &Repository<S>, read: &ReadData) -> Result<Checked> {
    let mut opts = CheckOptions::default();
    if let ReadData::Subset(s) = read {
        let subset: ReadSubsetOption = s
            .parse()
            .map_err(|e: Box<rustic_core::RusticError>| anyhow::anyhow!("{}", super::brief(&e)))?;
        opts = opts.read_data(true).read_data_subset(subset);
    }
    let results = repo
        .check(opts)
        .map_err(|e| super::failed("checking the repository", e))?;
    let mut checked = Checked::default();
    for (level, err) in results.0 {
        match () {
            // The level's type is not exported: its name tells.
            _ if format!("{level:?}") == "Error" => checked
                .errors
                .push(super::fault::one_line(&err.to_string())),
            _ => checked
                .warnings
                .push(super::fault::one_line(&err.to_string())),
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn snap(id: &str, volume: &str, host: &str, secs: i64) -> Snapshot {
        Snapshot {
            id: id.into(),
            created: DateTime::<Utc>::from_timestamp(secs, 0).unwrap(),
            host: host.into(),
            volume: Some(volume.into()),
            engine: None,
            ours: true,
            paths: vec![format!("/{volume}")],
            tags: vec![],
            size: None,
            manifest: None,
        }
    }

    #[test]
    fn rules_apply_per_volume_and_engine() {
        let day = 86_400;
        let all = vec![
            snap("a1", "db", "vm-1", day),
            snap("a2", "db", "vm-1", 2 * day),
            snap("a3", "db", "vm-1", 3 * day),
            snap("b1", "db", "vm-2", day),
            snap("c1", "web", "vm-1", day),
            snap("c2", "web", "vm-1", 2 * day),
            Snapshot {
                ours: false,
                ..snap("f1", "db", "vm-1", 0)
            },
        ];
        let policy = Policy {
            last: Some(1),
            ..Policy::default()
        };
        let groups = decide(&all, None, &policy);
        let seen: Vec<_> = groups
            .iter()
            .map(|g| {
                let kept: Vec<_> = g
                    .verdicts
                    .iter()
                    .filter(|(_, d)| d.keep)
                    .map(|(s, _)| s.id.as_str())
                    .collect();
                (g.host.as_str(), g.volume.as_str(), kept, g.verdicts.len())
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("vm-1", "db", vec!["a3"], 3),
                ("vm-1", "web", vec!["c2"], 2),
                ("vm-2", "db", vec!["b1"], 1),
            ]
        );
        let only_web = decide(&all, Some("web"), &policy);
        assert_eq!(only_web.len(), 1);
        assert_eq!(only_web[0].volume, "web");
    }

    #[test]
    fn subsets_as_restic_writes_them() {
        for ok in ["all", "10%", "1/5", "500M"] {
            assert!(parse_subset(ok).is_ok(), "{ok}");
        }
        assert!(parse_subset("ten").is_err());
    }
}
