//! What a dump file is: its manifest (a first SQL comment line written by `db-dump`) and its
//! trailer (a last comment line with the length and blake3 checksum of everything before it),
//! and, for files without a manifest, the format recognised from the first bytes (PostgreSQL
//! custom format, pg_dump / pg_dumpall SQL, mysqldump / mariadb-dump SQL).
//!
//! Both are SQL comments so that the file stays exactly what the dump tool wrote plus two lines
//! every client skips: `zstd -dc x.sql.zst | psql` and `| mysql` work by hand. The custom
//! format has neither: its file is pg_dump's, byte for byte.

use serde::{Deserialize, Serialize};

use super::{DumpFormat, Flavor};

/// The start of the manifest line.
pub const MANIFEST_PREFIX: &str = "-- docker-volume-backup db-dump ";

/// What `db-dump` records about a dump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbManifest {
    pub tool: String,
    pub tool_version: String,
    pub engine: Flavor,
    /// The server's version (`15.18`, `10.11.19-MariaDB`).
    pub engine_version: String,
    /// The database dumped, or `null` for all of them.
    pub database: Option<String>,
    pub format: DumpFormat,
    /// The dump tool and its version (`pg_dump (PostgreSQL) 15.18`).
    pub dump_tool: String,
    pub container: String,
    pub created: chrono::DateTime<chrono::Utc>,
}

impl DbManifest {
    /// The manifest as one comment line, ending in a line break.
    pub fn to_line(&self) -> String {
        format!(
            "{MANIFEST_PREFIX}{}\n",
            serde_json::to_string(self).expect("serialisable")
        )
    }

    /// Reads the manifest from the first line of a dump, if it has one.
    pub fn from_head(head: &[u8]) -> Option<DbManifest> {
        let line = head.split(|&b| b == b'\n').next()?;
        let json = std::str::from_utf8(line)
            .ok()?
            .strip_prefix(MANIFEST_PREFIX)?;
        serde_json::from_str(json).ok()
    }
}

/// The start of the trailer line.
pub const TRAILER_PREFIX: &str = "-- docker-volume-backup db-dump end ";

/// What `db-dump` writes after a SQL dump: the length and blake3 checksum of every byte before
/// the trailer line (the manifest line included), so that a restore can tell a damaged dump
/// from a whole one before anything is replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbTrailer {
    pub bytes: u64,
    pub blake3: String,
}

impl DbTrailer {
    /// The trailer as one comment line, ending in a line break.
    pub fn to_line(&self) -> String {
        format!(
            "{TRAILER_PREFIX}{}\n",
            serde_json::to_string(self).expect("serialisable")
        )
    }

    /// Finds a trailer as the last line of `tail` (the end of a dump): the trailer and where its
    /// line starts in `tail`.
    pub fn find(tail: &[u8]) -> Option<(DbTrailer, usize)> {
        let body = tail.strip_suffix(b"\n")?;
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let json = std::str::from_utf8(&body[start..])
            .ok()?
            .strip_prefix(TRAILER_PREFIX)?;
        Some((serde_json::from_str(json).ok()?, start))
    }
}

/// A dump's kind, as recognised from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    /// `pg_dump -Fc`: restored with pg_restore.
    PgCustom,
    /// `pg_dump` plain SQL of one database.
    PgSql,
    /// `pg_dumpall`: roles and every database, with their CREATE DATABASE statements.
    PgCluster,
    /// mysqldump / mariadb-dump SQL; `all` when it creates its databases itself.
    MySql { all: bool },
}

impl DumpKind {
    pub fn flavor_family(self) -> &'static str {
        match self {
            DumpKind::MySql { .. } => "mysql",
            _ => "postgres",
        }
    }

    /// Whether the dump covers every database (and so names them itself).
    pub fn is_all(self) -> bool {
        matches!(self, DumpKind::PgCluster | DumpKind::MySql { all: true })
    }
}

/// Recognises a dump from its first (decompressed) bytes and its manifest, if any.
pub fn sniff(head: &[u8], manifest: Option<&DbManifest>) -> Option<DumpKind> {
    if head.starts_with(b"PGDMP") {
        return Some(DumpKind::PgCustom);
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(16 * 1024)]);
    if let Some(m) = manifest {
        return Some(match (m.engine, m.format, &m.database) {
            (Flavor::Postgres, DumpFormat::Custom, _) => DumpKind::PgCustom,
            (Flavor::Postgres, _, Some(_)) => DumpKind::PgSql,
            (Flavor::Postgres, _, None) => DumpKind::PgCluster,
            (_, _, db) => DumpKind::MySql { all: db.is_none() },
        });
    }
    if text.contains("-- PostgreSQL database cluster dump") {
        Some(DumpKind::PgCluster)
    } else if text.contains("-- PostgreSQL database dump") {
        Some(DumpKind::PgSql)
    } else if text.contains("-- MySQL dump")
        || text.contains("-- MariaDB dump")
        || text.starts_with("/*M!999999")
    {
        // `--all-databases` and `--databases` dumps say so in their header and create their
        // databases themselves.
        let all = text.contains("CREATE DATABASE") || text.contains("-- Current Database:");
        Some(DumpKind::MySql { all })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(engine: Flavor, format: DumpFormat, database: Option<&str>) -> DbManifest {
        DbManifest {
            tool: "docker-volume-backup".into(),
            tool_version: "0.1.0".into(),
            engine,
            engine_version: "15.18".into(),
            database: database.map(String::from),
            format,
            dump_tool: "pg_dump (PostgreSQL) 15.18".into(),
            container: "db".into(),
            created: chrono::Utc::now(),
        }
    }

    #[test]
    fn manifest_line_round_trips_and_is_a_comment() {
        let m = manifest(Flavor::Postgres, DumpFormat::Plain, Some("app"));
        let line = m.to_line();
        assert!(line.starts_with("-- ") && line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "one line");
        let mut file = line.into_bytes();
        file.extend_from_slice(b"--\n-- PostgreSQL database dump\n--\n");
        assert_eq!(DbManifest::from_head(&file), Some(m.clone()));
        assert_eq!(sniff(&file, Some(&m)), Some(DumpKind::PgSql));
        assert_eq!(
            DbManifest::from_head(b"--\n-- PostgreSQL database dump\n"),
            None
        );
        let all = manifest(Flavor::MariaDb, DumpFormat::Plain, None);
        assert_eq!(sniff(b"", Some(&all)), Some(DumpKind::MySql { all: true }));
    }

    #[test]
    fn trailer_is_found_on_the_last_line() {
        let t = DbTrailer {
            bytes: 42,
            blake3: "ab".repeat(32),
        };
        let mut tail = b"x;\n-- Dump completed on 2026-11-30\n".to_vec();
        let at = tail.len();
        tail.extend_from_slice(t.to_line().as_bytes());
        assert_eq!(DbTrailer::find(&tail), Some((t.clone(), at)));
        assert_eq!(DbTrailer::find(t.to_line().as_bytes()), Some((t, 0)));
        // Cut, or followed by more: no trailer.
        assert_eq!(DbTrailer::find(&tail[..tail.len() - 1]), None);
        tail.extend_from_slice(b"DROP TABLE x;\n");
        assert_eq!(DbTrailer::find(&tail), None);
    }

    #[test]
    fn sniffs_files_without_a_manifest() {
        assert_eq!(sniff(b"PGDMP\x01\x0f\x00", None), Some(DumpKind::PgCustom));
        assert_eq!(
            sniff(b"--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n", None),
            Some(DumpKind::PgSql)
        );
        assert_eq!(
            sniff(b"--\n-- PostgreSQL database cluster dump\n--\n", None),
            Some(DumpKind::PgCluster)
        );
        let one = b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19  Distrib \
                    10.11.19-MariaDB\n--\n-- Host: localhost    Database: shop\n";
        assert_eq!(sniff(one, None), Some(DumpKind::MySql { all: false }));
        let all = b"-- MySQL dump 10.13  Distrib 8.0.36\n--\n-- Current Database: `shop`\n\
                    CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;\n";
        assert_eq!(sniff(all, None), Some(DumpKind::MySql { all: true }));
        assert_eq!(sniff(b"SELECT 1;\n", None), None);
        assert_eq!(sniff(b"\x00\x01binary", None), None);
    }
}
