//! Dumping a database container into any `Write`: the dump tool runs inside the container, its
//! stdout streams through the compressor into the writer, and the writer is handed back only
//! when the tool exited 0 without errors on stderr. Callers decide what a complete writer
//! becomes (`Sink::commit` for a file; a compose bundle may embed it).

use std::io::{self, Read, Write};
use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::format::{DbManifest, DbTrailer};
use super::{mysql, postgres, DumpFormat, Flavor, Scope, Server};
use crate::archive::{Counters, EncodeOptions, Encoder};
use crate::docker::exec::{self, Exec};
use crate::error::{Kind, UserError};
use crate::output::{Measure, Printer};
use crate::pipe::{self, ChannelReader};

/// A dump about to run: what, how, and the manifest it will carry.
pub struct DumpPlan {
    pub server: Server,
    pub scope: Scope,
    pub format: DumpFormat,
    pub exec: Exec,
    pub manifest: DbManifest,
}

impl DumpPlan {
    /// Decides what to dump (`--database`, `--all`, else the database the container was made
    /// for, else all), finds the dump tool, and checks the credentials by asking the server for
    /// its version: a wrong password fails here, before any output exists.
    pub async fn prepare(
        server: Server,
        database: Option<String>,
        all: bool,
        format: DumpFormat,
    ) -> Result<DumpPlan> {
        let usage = |m: String| -> anyhow::Error { UserError::new(Kind::Usage, m).into() };
        let scope = match (database, all) {
            (Some(db), _) => Scope::Database(db),
            (None, true) => Scope::All,
            (None, false) => match super::detect::default_database(server.flavor, &server.env) {
                Some(db) => Scope::Database(db),
                None => Scope::All,
            },
        };
        if format == DumpFormat::Custom {
            if server.flavor != Flavor::Postgres {
                return Err(usage(format!(
                    "--format custom is PostgreSQL's; `{}` runs {}",
                    server.name,
                    server.flavor.name()
                )));
            }
            if scope == Scope::All {
                return Err(usage(
                    "--format custom dumps one database (pg_dumpall writes SQL only): give \
                     --database DB, or drop --format custom"
                        .into(),
                ));
            }
        }
        let user = server.credentials.user.clone();
        let (tool, version, cmd) = match server.flavor {
            Flavor::Postgres => {
                let name = if scope == Scope::All {
                    "pg_dumpall"
                } else {
                    "pg_dump"
                };
                let tool = server.find_tool(&[name]).await?;
                let version = server.pg_version().await?;
                (tool, version, postgres::dump_command(&user, &scope, format))
            }
            Flavor::MySql | Flavor::MariaDb => {
                let tool = server.find_tool(&["mariadb-dump", "mysqldump"]).await?;
                let client = mysql::client_for(&tool.name);
                let version = server.my_version(client).await?;
                let cmd = mysql::dump_command(&tool.name, &user, &scope);
                (tool, version, cmd)
            }
        };
        if let Scope::Database(db) = &scope {
            let exists = match server.flavor {
                Flavor::Postgres => server.pg_database_exists(db).await?,
                _ => {
                    let client = mysql::client_for(&tool.name);
                    server.my_database_exists(client, db).await?
                }
            };
            if !exists {
                return Err(UserError::new(
                    Kind::NotFound,
                    format!("container `{}` has no database `{db}`", server.name),
                )
                .hint("--database DB chooses another; --all dumps every database")
                .into());
            }
        }
        // A MariaDB server is MariaDB whatever the image is called.
        let flavor = match server.flavor {
            Flavor::MySql if version.contains("MariaDB") => Flavor::MariaDb,
            f => f,
        };
        let manifest = DbManifest {
            tool: env!("CARGO_PKG_NAME").into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            engine: flavor,
            engine_version: version,
            database: match &scope {
                Scope::Database(db) => Some(db.clone()),
                Scope::All => None,
            },
            format,
            dump_tool: tool.version,
            container: server.name.clone(),
            created: chrono::Utc::now(),
        };
        let exec = server.exec(cmd);
        Ok(DumpPlan {
            server,
            scope,
            format,
            exec,
            manifest,
        })
    }

    /// `MySQL 8.0.36, all databases` / `PostgreSQL 15.18, database app, custom format`.
    pub fn describe(&self) -> String {
        let what = match &self.scope {
            Scope::All => "all databases".to_string(),
            Scope::Database(db) => format!("database {db}"),
        };
        let version = self
            .manifest
            .engine_version
            .split([' ', '-'])
            .next()
            .unwrap_or("");
        let how = match (self.server.flavor, self.format) {
            (Flavor::Postgres, DumpFormat::Custom) => ", custom format",
            (Flavor::Postgres, _) => "",
            _ => ", --single-transaction",
        };
        format!("{} {version}, {what}{how}", self.manifest.engine.name())
    }
}

/// Streams the dump into `out`, compressed with `encode` (plain SQL starts with the manifest
/// line and ends with the trailer line). Returns `out` only if the dump tool succeeded; on failure or cancellation `out` is
/// dropped (a `Sink` then removes its temporary file) and the error carries the tool's message.
pub async fn dump_into<W: Write + Send + 'static>(
    plan: &DumpPlan,
    out: W,
    encode: EncodeOptions,
    counters: Arc<Counters>,
    cancel: &CancellationToken,
) -> Result<W> {
    let (tx, rx) = pipe::channel();
    let header = (plan.format == DumpFormat::Plain).then(|| plan.manifest.to_line());
    let writer = tokio::task::spawn_blocking(move || -> io::Result<W> {
        let mut input = ChannelReader::new(rx);
        let mut enc = Encoder::new(out, encode)?;
        // The trailer's checksum covers every byte before it, the manifest line included.
        let mut hasher = blake3::Hasher::new();
        let mut written = 0u64;
        if let Some(line) = &header {
            enc.write_all(line.as_bytes())?;
            hasher.update(line.as_bytes());
            written += line.len() as u64;
        }
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            enc.write_all(&buf[..n])?;
            hasher.update(&buf[..n]);
            written += n as u64;
            counters.add_tar_bytes(n as u64);
        }
        if header.is_some() {
            let trailer = DbTrailer {
                bytes: written,
                blake3: hasher.finalize().to_hex().to_string(),
            };
            enc.write_all(trailer.to_line().as_bytes())?;
        }
        enc.finish()
    });
    let server = &plan.server;
    let ran = exec::run(
        &server.docker,
        &server.id,
        &plan.exec,
        None,
        tx,
        true,
        cancel,
    )
    .await;
    // The exec is over and the channel closed: the writer sees the end of its input.
    let written = writer.await.expect("the dump writer panicked");
    let finished = ran?;
    server.check(&plan.exec, &finished)?;
    Ok(written?)
}

/// `dump_into` with a progress line labelled with the container and what is dumped: `out` and
/// the uncompressed bytes dumped, or the error in the container's name.
pub async fn dump_with_progress<W: Write + Send + 'static>(
    plan: &DumpPlan,
    out: W,
    encode: EncodeOptions,
    cancel: &CancellationToken,
    printer: Printer,
) -> Result<(W, u64)> {
    printer.debug(&format!(
        "running `{}` in {}",
        plan.exec.display(),
        plan.server.name
    ));
    let label = format!("{}: {}", plan.server.name, plan.describe());
    let counters: Arc<Counters> = Arc::default();
    let progress = printer.progress(&label, Arc::clone(&counters), None, Measure::DumpBytes);
    let result = dump_into(plan, out, encode, Arc::clone(&counters), cancel).await;
    progress.finish();
    let out = result.map_err(|e| e.context(format!("dumping `{}`", plan.server.name)))?;
    Ok((out, counters.tar_bytes()))
}
