//! Many volumes at once: which volumes `save --all`, `--project P` and `--filter` mean, and the
//! summary table printed after saving several.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use bollard::Docker;

use crate::cli::SelectArgs;
use crate::docker::quiesce::Downtime;
use crate::docker::{labels, volumes};
use crate::error::{Kind, UserError};
use crate::output;

/// The engine filters for a selection: `--project P` is the label filter compose's volumes
/// carry; `--filter` values pass through in the engine's own `key=value` syntax.
pub fn engine_filters(select: &SelectArgs) -> Result<HashMap<String, Vec<String>>> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(p) = &select.project {
        filters
            .entry("label".into())
            .or_default()
            .push(format!("{}={p}", labels::COMPOSE_PROJECT));
    }
    for f in &select.filter {
        let (key, value) = f.split_once('=').ok_or_else(|| {
            UserError::new(
                Kind::Usage,
                format!("--filter {f:?} is not KEY=VALUE (e.g. label=backup=nightly)"),
            )
        })?;
        filters
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }
    Ok(filters)
}

/// Names of the selected volumes, sorted; the tool's own scratch volumes are never included.
pub async fn volume_names(docker: &Docker, select: &SelectArgs) -> Result<Vec<String>> {
    let filters = engine_filters(select)?;
    let mut names: Vec<String> = volumes::list(docker, filters)
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
pub fn print_summary(saved: &[Saved], downtimes: &[Downtime]) {
    if output::quiet() {
        return;
    }
    eprintln!("{}", summary_table(saved));
    if !downtimes.is_empty() {
        eprintln!(
            "containers down: {}",
            crate::docker::quiesce::describe_downtimes(downtimes)
        );
    }
}

fn summary_table(saved: &[Saved]) -> String {
    let rows: Vec<[String; 5]> = saved
        .iter()
        .map(|s| {
            [
                s.volume.clone(),
                output::bytes(s.content_bytes),
                output::thousands(s.entries),
                format!("{:.1} s", s.seconds),
                match (&s.path, s.size) {
                    (Some(p), Some(size)) => format!("{} ({})", p.display(), output::bytes(size)),
                    (Some(p), None) => p.display().to_string(),
                    (None, _) => "stdout".into(),
                },
            ]
        })
        .collect();
    let header = ["VOLUME", "DATA", "ENTRIES", "TIME", "ARCHIVE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String; 5]| {
        row.iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let total: u64 = saved.iter().map(|s| s.content_bytes).sum();
    let seconds: f64 = saved.iter().map(|s| s.seconds).sum();
    let mut out = vec![line(&header)];
    out.extend(rows.iter().map(line));
    out.push(format!(
        "{} volumes, {} of data, {:.1} s",
        saved.len(),
        output::bytes(total),
        seconds
    ));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_the_engine_syntax() {
        let select = SelectArgs {
            all: false,
            project: Some("shop".into()),
            filter: vec!["label=backup=nightly".into(), "driver=local".into()],
        };
        let f = engine_filters(&select).unwrap();
        assert_eq!(
            f["label"],
            vec!["com.docker.compose.project=shop", "backup=nightly"]
        );
        assert_eq!(f["driver"], vec!["local"]);
        let bad = SelectArgs {
            filter: vec!["nonsense".into()],
            ..Default::default()
        };
        assert!(engine_filters(&bad).is_err());
    }

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
    }
}
