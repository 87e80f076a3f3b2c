//! Many volumes at once: which volumes `save --all`, `--project P` and `--filter` mean, and the
//! summary table printed after saving several.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use bollard::Docker;

use crate::docker::quiesce::Downtime;
use crate::docker::volumes;
use crate::error::{Kind, UserError};
use crate::output::{self, Column, Printer, Table};

/// Which volumes `--all`, `--project P` and `--filter` choose: engine filters (none for `--all`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--project P`, for the message when nothing matches.
    pub project: Option<String>,
    pub filters: HashMap<String, Vec<String>>,
}

/// Names of the selected volumes, sorted; the tool's own scratch volumes are never included.
pub async fn volume_names(docker: &Docker, select: &Selection) -> Result<Vec<String>> {
    let mut names: Vec<String> = volumes::list(docker, select.filters.clone())
        .await?
        .into_iter()
        .map(|v| v.name)
        .collect();
    names.sort();
    if names.is_empty() {
        let what = match &select.project {
            Some(p) => format!("compose project `{p}` has no volumes"),
            None => "no volume matches".to_string(),
        };
        return Err(UserError::new(Kind::NotFound, what)
            .hint("`docker volumebackup ls` lists the volumes with their compose project")
            .into());
    }
    Ok(names)
}

/// One saved volume, for the summary.
#[derive(Debug, Clone)]
pub struct Saved {
    pub volume: String,
    pub path: Option<PathBuf>,
    pub size: Option<u64>,
    pub entries: u64,
    pub content_bytes: u64,
    pub seconds: f64,
}

/// The table after a save of several volumes, with how long containers were down.
pub fn print_summary(saved: &[Saved], downtimes: &[Downtime], out: Printer) {
    if out.quiet() {
        return;
    }
    output::message(&summary_table(saved));
    if !downtimes.is_empty() {
        output::message(&format!(
            "containers down: {}",
            crate::docker::quiesce::describe_downtimes(downtimes)
        ));
    }
}

fn summary_table(saved: &[Saved]) -> String {
    let mut table = Table::new(["VOLUME", "DATA", "ENTRIES", "TIME", "ARCHIVE"].map(Column::left));
    for s in saved {
        table.row([
            s.volume.clone(),
            output::bytes(s.content_bytes),
            output::thousands(s.entries),
            format!("{:.1} s", s.seconds),
            match (&s.path, s.size) {
                (Some(p), Some(size)) => format!("{} ({})", p.display(), output::bytes(size)),
                (Some(p), None) => p.display().to_string(),
                (None, _) => "stdout".into(),
            },
        ]);
    }
    let total: u64 = saved.iter().map(|s| s.content_bytes).sum();
    let seconds: f64 = saved.iter().map(|s| s.seconds).sum();
    format!(
        "{}{} volumes, {} of data, {:.1} s",
        table.render(),
        saved.len(),
        output::bytes(total),
        seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_every_volume() {
        let saved = vec![
            Saved {
                volume: "shop_db".into(),
                path: Some("backups/shop_db_x.tar.zst".into()),
                size: Some(1000),
                entries: 12345,
                content_bytes: 2_000_000,
                seconds: 1.25,
            },
            Saved {
                volume: "cache".into(),
                path: None,
                size: None,
                entries: 1,
                content_bytes: 0,
                seconds: 0.5,
            },
        ];
        let t = summary_table(&saved);
        let lines: Vec<_> = t.lines().collect();
        assert!(lines[0].starts_with("VOLUME"));
        assert!(lines[1].starts_with("shop_db  ") && lines[1].contains("12,345"));
        assert!(lines[2].starts_with("cache    ") && lines[2].ends_with("stdout"));
        assert_eq!(lines[3], "2 volumes, 2.00 MB of data, 1.8 s");
        assert_eq!(
            t,
            "\
VOLUME   DATA     ENTRIES  TIME   ARCHIVE
shop_db  2.00 MB  12,345   1.2 s  backups/shop_db_x.tar.zst (1.00 kB)
cache    0 B      1        0.5 s  stdout
2 volumes, 2.00 MB of data, 1.8 s"
        );
    }
}
