//! Feeding a dump back into a database container: the format is recognised from the content
//! (compressed or not), the target database is checked (and created or replaced as asked), and
//! the dump streams into psql, pg_restore or mysql/mariadb through the exec's stdin. A damaged
//! or cut input kills the client instead of ending its input, so a single-transaction restore
//! is rolled back rather than committed half-way.
//!
//! A database is replaced only by a dump known whole: a SQL dump must end with the line its
//! dump tool writes last (`end_marker`), checked before the client's input ends. Where that is
//! too late, the dump is read to its end first:
//!
//! - one PostgreSQL database over one that holds objects (`--force`) is restored into a new
//!   database, which takes the old one's place by rename only when the client succeeded and the
//!   end was seen; otherwise the new one is dropped and the old one was never touched;
//! - a pg_dumpall dump (its `DROP DATABASE` statements are inside the stream) and every MySQL
//!   dump (MySQL commits statement by statement) are spooled, compressed, to an unnamed
//!   temporary file in `$TMPDIR` and checked to the end before the client starts; a MySQL
//!   database replaced with `--force` is first replayed into a scratch database (MySQL cannot
//!   rename a database), and dropped and replayed only when that trial succeeded.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use super::format::{sniff, DbManifest, DbTrailer, DumpKind};
use super::postgres::ClusterFilter;
use super::{mysql, postgres, Flavor, Server};
use crate::archive::{ArchiveError, Counters, Decoder};
use crate::docker::exec;
use crate::error::{Kind, UserError};
use crate::output::{self, Measure, Printer};
use crate::pipe::{self, ChannelWriter, DynRead};

/// How much of the decompressed dump is read up front to recognise it.
const HEAD_LEN: usize = 64 * 1024;

/// What the user asked for.
#[derive(Debug, Default, Clone)]
pub struct RestoreRequest {
    pub database: Option<String>,
    pub create: bool,
    pub force: bool,
}

/// What was restored.
#[derive(Debug)]
pub struct Restored {
    pub kind: DumpKind,
    /// The database restored into; `None` for dumps of every database.
    pub database: Option<String>,
    pub manifest: Option<DbManifest>,
    /// Uncompressed bytes fed to the client.
    pub bytes: u64,
}

/// An opened dump: the decompressed stream with its first bytes read.
pub struct OpenedDump {
    reader: Box<dyn Read + Send>,
    head: Vec<u8>,
    pub kind: DumpKind,
    pub manifest: Option<DbManifest>,
}

/// Opens a dump (blocking): decompresses by content and recognises what it is.
pub fn open_dump(input: DynRead) -> Result<OpenedDump> {
    let mut reader = Decoder::new(input)?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    (&mut reader)
        .take(HEAD_LEN as u64)
        .read_to_end(&mut head)
        .map_err(ArchiveError::from_io)?;
    let manifest = DbManifest::from_head(&head);
    let kind = sniff(&head, manifest.as_ref()).ok_or_else(|| {
        UserError::new(
            Kind::Damaged,
            "not a database dump: neither PostgreSQL's custom format nor SQL written by \
             pg_dump, pg_dumpall, mysqldump or mariadb-dump",
        )
    })?;
    Ok(OpenedDump {
        reader: Box::new(reader),
        head,
        kind,
        manifest,
    })
}

/// Opens a dump (in a blocking task) that counts the compressed bytes read, for a progress line.
pub async fn open_counted(input: DynRead) -> Result<(OpenedDump, Arc<Counters>)> {
    let counters: Arc<Counters> = Arc::default();
    let counted = crate::archive::CountingReader::new(input, Arc::clone(&counters));
    let dump = tokio::task::spawn_blocking(move || open_dump(Box::new(counted)))
        .await
        .expect("the dump reader panicked")?;
    Ok((dump, counters))
}

/// `restore_into` with a progress line (`len`: the input's size when known); the error names
/// the container. SQL that `db-dump` did not write is restored with a warning: the clients run
/// what it says, their shell escapes (`\!`) included.
pub async fn restore_with_progress(
    server: &Server,
    (dump, counters): (OpenedDump, Arc<Counters>),
    label: &str,
    len: Option<u64>,
    req: &RestoreRequest,
    cancel: &CancellationToken,
    printer: Printer,
) -> Result<Restored> {
    if let Some(warning) = foreign_warning(&dump) {
        output::warn(&warning);
    }
    let progress = printer.progress(label, Arc::clone(&counters), len, Measure::InputBytes);
    let result = restore_into(server, dump, req, counters, cancel).await;
    progress.finish();
    result.map_err(|e| e.context(format!("restoring into `{}`", server.name)))
}

/// The warning for SQL without `db-dump`'s manifest line. pg_restore reads an archive, not
/// commands, and runs no shell: custom-format dumps get none.
pub fn foreign_warning(dump: &OpenedDump) -> Option<String> {
    (dump.manifest.is_none() && dump.kind != DumpKind::PgCustom).then(|| {
        format!(
            "this dump was not made by {} db-dump (it has no manifest line): the client runs \
             every command in it, and `\\!` lines run shell commands inside the database \
             container; restore only SQL from a source you trust",
            env!("CARGO_PKG_NAME")
        )
    })
}

/// The line a dump tool writes last, by which a complete SQL dump is known. PostgreSQL's custom
/// format has none: its table of contents comes first, and pg_restore fails on a cut archive.
pub fn end_marker(kind: DumpKind) -> Option<(&'static str, &'static str)> {
    match kind {
        DumpKind::PgCustom => None,
        DumpKind::PgSql => Some(("pg_dump", "-- PostgreSQL database dump complete")),
        DumpKind::PgCluster => Some(("pg_dumpall", "-- PostgreSQL database cluster dump complete")),
        DumpKind::MySql { .. } => Some(("mysqldump", "-- Dump completed")),
    }
}

/// Whether the last bytes of a dump end with the line `marker` (`-- Dump completed on DATE`
/// too), followed by nothing but blank lines, `--` and psql's `\unrestrict KEY` (which pg_dump
/// writes after its last comment since PostgreSQL 17.6, 16.10, 15.14).
fn ends_with_marker(tail: &[u8], marker: &str) -> bool {
    let text = String::from_utf8_lossy(tail);
    for line in text.lines().rev().map(str::trim) {
        if line.starts_with(marker) {
            return true;
        }
        if !(line.is_empty() || line == "--" || line.starts_with("\\unrestrict ")) {
            return false;
        }
    }
    false
}

/// How much of a dump's end is kept to look for its end marker and trailer.
const TAIL_LEN: usize = 4096;

/// A `Read` that fails at the end of its input unless the input ended with the dump tool's end
/// marker, and, when `db-dump`'s trailer follows it, matches the trailer's length and checksum:
/// a cut or damaged dump is an error before the client sees the end of its input.
struct EndCheck<R> {
    inner: R,
    tool: &'static str,
    marker: &'static str,
    /// The last bytes read, not yet hashed (the trailer is not part of what it covers).
    tail: Vec<u8>,
    hasher: blake3::Hasher,
    hashed: u64,
}

impl<R: Read> EndCheck<R> {
    fn new(inner: R, (tool, marker): (&'static str, &'static str)) -> Self {
        EndCheck {
            inner,
            tool,
            marker,
            tail: Vec::with_capacity(2 * TAIL_LEN),
            hasher: blake3::Hasher::new(),
            hashed: 0,
        }
    }

    fn check_end(&mut self) -> Result<(), ArchiveError> {
        let mut body = &self.tail[..];
        if let Some((trailer, start)) = DbTrailer::find(&self.tail) {
            self.hasher.update(&self.tail[..start]);
            let bytes = self.hashed + start as u64;
            let sum = self.hasher.finalize().to_hex();
            if trailer.bytes != bytes || trailer.blake3 != sum.as_str() {
                return Err(ArchiveError::Corrupt(format!(
                    "the dump does not match the checksum db-dump wrote at its end ({} bytes \
                     read, {} recorded)",
                    bytes, trailer.bytes
                )));
            }
            body = &self.tail[..start];
        }
        if ends_with_marker(body, self.marker) {
            return Ok(());
        }
        Err(ArchiveError::Truncated(format!(
            "the dump does not end with the line `{}` that {} writes last: it was cut short or \
             damaged",
            self.marker, self.tool
        )))
    }
}

impl<R: Read> Read for EndCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.check_end().map_err(io::Error::other)?;
            return Ok(0);
        }
        self.tail.extend_from_slice(&buf[..n]);
        if self.tail.len() > 2 * TAIL_LEN {
            let done = self.tail.len() - TAIL_LEN;
            self.hasher.update(&self.tail[..done]);
            self.hashed += done as u64;
            self.tail.drain(..done);
        }
        Ok(n)
    }
}

/// `input`, checked for its end marker when its kind has one.
fn checked(input: DynRead, kind: DumpKind) -> DynRead {
    match end_marker(kind) {
        Some(marker) => Box::new(EndCheck::new(input, marker)),
        None => input,
    }
}

/// A dump read to its end and checked, kept compressed in an unnamed temporary file (gone
/// when it is dropped, also when the process dies), to be read from the start as often as
/// needed. Memory stays bounded whatever the dump's size.
struct Spool {
    file: File,
}

impl Spool {
    /// Reads `input` (checked for its end marker) into a temporary file in `$TMPDIR`.
    async fn fill(input: DynRead, kind: DumpKind, cancel: &CancellationToken) -> Result<Spool> {
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || Spool::fill_blocking(checked(input, kind), &cancel))
            .await
            .expect("the dump spooler panicked")
    }

    fn fill_blocking(mut input: DynRead, cancel: &CancellationToken) -> Result<Spool> {
        let tmp = std::env::temp_dir();
        let out = |e: io::Error| {
            anyhow::Error::new(e).context(format!(
                "keeping the dump in a temporary file in {} (TMPDIR chooses another directory)",
                tmp.display()
            ))
        };
        let file = tempfile::tempfile().map_err(out)?;
        let mut enc = zstd::stream::write::Encoder::new(file, 1).map_err(out)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            if cancel.is_cancelled() {
                return Err(UserError::interrupted().into());
            }
            let n = input.read(&mut buf).map_err(ArchiveError::from_io)?;
            if n == 0 {
                break;
            }
            enc.write_all(&buf[..n]).map_err(out)?;
        }
        let file = enc.finish().map_err(out)?;
        Ok(Spool { file })
    }

    /// The dump from its start.
    fn reader(&self) -> Result<DynRead> {
        let mut file = self.file.try_clone()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Box::new(zstd::stream::read::Decoder::new(file)?))
    }
}

/// Restores `dump` into the database server of `server`.
pub async fn restore_into(
    server: &Server,
    dump: OpenedDump,
    req: &RestoreRequest,
    counters: Arc<Counters>,
    cancel: &CancellationToken,
) -> Result<Restored> {
    let usage = |m: String| -> anyhow::Error { UserError::new(Kind::Usage, m).into() };
    let kind = dump.kind;
    let dump_engine = match (&dump.manifest, kind) {
        (Some(m), _) => m.engine.name(),
        (None, DumpKind::MySql { .. }) => "MySQL/MariaDB",
        (None, _) => "PostgreSQL",
    };
    if kind.flavor_family() != server.flavor.family() {
        return Err(usage(format!(
            "this is a {dump_engine} dump; container `{}` runs {}",
            server.name,
            server.flavor.name()
        )));
    }
    if kind.is_all() && req.database.is_some() {
        return Err(usage(
            "this dump holds every database and names them itself: drop --database".into(),
        ));
    }
    let database = if kind.is_all() {
        None
    } else {
        let db = req
            .database
            .clone()
            .or_else(|| dump.manifest.as_ref().and_then(|m| m.database.clone()))
            .or_else(|| super::detect::default_database(server.flavor, &server.env));
        Some(db.ok_or_else(|| {
            usage("the dump does not say which database it is: give --database DB".into())
        })?)
    };
    let OpenedDump {
        reader,
        head,
        manifest,
        ..
    } = dump;
    let input: DynRead = Box::new(io::Cursor::new(head).chain(reader));
    let job = Job {
        server,
        kind,
        req,
        counters,
        cancel,
    };
    let bytes = match (server.flavor, &database) {
        (Flavor::Postgres, Some(db)) => job.pg_database(db, input).await?,
        (Flavor::Postgres, None) => job.pg_cluster(input).await?,
        (Flavor::MySql | Flavor::MariaDb, db) => job.mysql(db.as_deref(), input).await?,
    };
    Ok(Restored {
        kind,
        database,
        manifest,
        bytes,
    })
}

/// What a database to restore into holds now.
enum Target {
    /// Not there: created (`--create`) before the restore.
    Missing,
    /// There, with nothing in it.
    Empty,
    /// There, with objects, and `--force` given: replaced.
    Replace,
}

/// One restore under way.
struct Job<'a> {
    server: &'a Server,
    kind: DumpKind,
    req: &'a RestoreRequest,
    counters: Arc<Counters>,
    cancel: &'a CancellationToken,
}

impl Job<'_> {
    fn user(&self) -> String {
        self.server.credentials.user.clone()
    }

    /// One PostgreSQL database: into the target itself when it is new or empty, else into a new
    /// database that takes its place only once restored.
    async fn pg_database(&self, db: &str, input: DynRead) -> Result<u64> {
        let server = self.server;
        let custom = self.kind == DumpKind::PgCustom;
        server
            .find_tool(&[if custom { "pg_restore" } else { "psql" }])
            .await?;
        server.pg_version().await?;
        let user = self.user();
        let cmd = |into: &str| {
            if custom {
                postgres::pg_restore_command(&user, into)
            } else {
                postgres::psql_restore_command(&user, into, true)
            }
        };
        let input = checked(input, self.kind);
        let into = match target(server, db, self.req, None).await? {
            Target::Missing => {
                server.pg_create_database(db).await?;
                db.to_string()
            }
            Target::Empty => db.to_string(),
            Target::Replace => {
                let (scratch, aside) = scratch_names();
                server.pg_create_database(&scratch).await?;
                return match self.feed(cmd(&scratch), input, None).await {
                    Err(e) => {
                        let dropped = server.pg_drop_database(&scratch).await;
                        Err(e.context(stopped(db, &scratch, dropped)))
                    }
                    Ok(bytes) => {
                        self.pg_swap(db, &scratch, &aside).await?;
                        Ok(bytes)
                    }
                };
            }
        };
        self.feed(cmd(&into), input, None)
            .await
            .context("the restore stopped: nothing was committed")
    }

    /// Puts the restored `scratch` in the place of `db` (one transaction: both renames or
    /// neither), then drops the old content, now called `aside`.
    async fn pg_swap(&self, db: &str, scratch: &str, aside: &str) -> Result<()> {
        let server = self.server;
        if let Err(e) = server.pg_rename_into_place(db, scratch, aside).await {
            let dropped = server.pg_drop_database(scratch).await;
            let e = e.context(format!(
                "the dump was restored, but could not take the place of database `{db}`"
            ));
            return Err(e.context(stopped(db, scratch, dropped)));
        }
        if let Err(e) = server.pg_drop_database(aside).await {
            output::warn(&format!(
                "database `{db}` was replaced, but its old content stays in database `{aside}` \
                 ({e:#}): drop it with `DROP DATABASE \"{aside}\"`"
            ));
        }
        Ok(())
    }

    /// A pg_dumpall dump: checked to its end before psql sees a line of it, since its `DROP
    /// DATABASE` statements come inside the stream.
    async fn pg_cluster(&self, input: DynRead) -> Result<u64> {
        let server = self.server;
        server.find_tool(&["psql"]).await?;
        server.pg_version().await?;
        let filter = ClusterFilter::new(server.pg_roles().await?, self.req.force);
        let spool = Spool::fill(input, self.kind, self.cancel)
            .await
            .context("the restore stopped before it began: nothing was changed")?;
        let cmd = postgres::psql_restore_command(&self.user(), "postgres", false);
        self.feed(cmd, spool.reader()?, Some(filter))
            .await
            .context("the restore stopped: what was restored before that point stays")
    }

    /// MySQL or MariaDB, one database or all: the dump is spooled and checked to its end first
    /// (each statement commits as it runs); a database replaced with `--force` is replayed into
    /// a scratch database first, and emptied only when that succeeded.
    async fn mysql(&self, database: Option<&str>, input: DynRead) -> Result<u64> {
        let server = self.server;
        let tool = server.find_tool(&["mariadb", "mysql"]).await?;
        let client = mysql::client_for(&tool.name);
        server.my_version(client).await?;
        let target = match database {
            Some(db) => Some(target(server, db, self.req, Some(client)).await?),
            None if !self.req.force && server.my_table_count(client, None).await? > 0 => {
                return Err(UserError::new(
                    Kind::Refused,
                    format!(
                        "container `{}` already holds databases with tables; this dump of \
                         every database would replace the tables it also has",
                        server.name
                    ),
                )
                .hint("use --force to restore over them")
                .into());
            }
            None => None,
        };
        let spool = Spool::fill(input, self.kind, self.cancel)
            .await
            .context("the restore stopped before it began: nothing was changed")?;
        let user = self.user();
        let cmd = |db: Option<&str>| mysql::restore_command(client, &user, db);
        let partial = "the restore stopped: what was restored before that point stays";
        let Some(db) = database else {
            return self
                .feed(cmd(None), spool.reader()?, None)
                .await
                .context(partial);
        };
        match target.expect("a target for a database") {
            Target::Missing => server.my_recreate_database(client, db, false).await?,
            Target::Empty => {}
            Target::Replace => {
                let (scratch, _) = scratch_names();
                server.my_recreate_database(client, &scratch, false).await?;
                let trial = Job {
                    counters: Arc::default(),
                    ..*self
                };
                let tried = trial.feed(cmd(Some(&scratch)), spool.reader()?, None).await;
                let dropped = server.my_drop_database(client, &scratch).await;
                if let Err(e) = tried {
                    return Err(e.context(stopped(db, &scratch, dropped)));
                }
                if let Err(e) = dropped {
                    output::warn(&format!(
                        "the trial copy `{scratch}` could not be dropped ({e:#}): drop it with \
                         `DROP DATABASE {scratch}`"
                    ));
                }
                server.my_recreate_database(client, db, true).await?;
            }
        }
        self.feed(cmd(Some(db)), spool.reader()?, None)
            .await
            .context(partial)
    }

    /// Feeds `input` (through `filter`, if any) to `cmd` run in the server's container. A failing
    /// input (damaged, cut, no end marker) kills the client instead of ending its input; a
    /// failing client fails with its own words.
    async fn feed(
        &self,
        cmd: Vec<String>,
        input: DynRead,
        filter: Option<ClusterFilter>,
    ) -> Result<u64> {
        let server = self.server;
        let exec = server.exec(cmd);
        let (tx, rx) = pipe::channel();
        let counters = Arc::clone(&self.counters);
        let producer = tokio::task::spawn_blocking(move || -> Result<u64, ArchiveError> {
            let mut out = ChannelWriter::new(tx);
            let input = BufReader::with_capacity(1 << 20, input);
            let bytes = match filter {
                Some(filter) => copy_filtered(input, &mut out, filter, &counters)?,
                None => copy_counted(input, &mut out, &counters)?,
            };
            out.finish().map_err(ArchiveError::Output)?;
            Ok(bytes)
        });
        // What the clients print on stdout (notices, SET results) is of no interest.
        let (out_tx, out_rx) = pipe::channel();
        drop(out_rx);
        let ran = exec::run(
            &server.docker,
            &server.id,
            &exec,
            Some(rx),
            out_tx,
            true,
            self.cancel,
        )
        .await;
        match producer.await.expect("the dump reader panicked") {
            // A damaged dump explains why the client was stopped (and its input failed).
            Err(e) if !matches!(e, ArchiveError::Output(_)) => Err(e.into()),
            // The client stopped reading: its status and stderr say why.
            Err(e) => {
                server.check(&exec, &ran?)?;
                Err(e.into())
            }
            Ok(bytes) => {
                server.check(&exec, &ran?)?;
                Ok(bytes)
            }
        }
    }
}

/// What a failed replacement of `db` left: the old database untouched, and the new copy
/// dropped (or where it stays).
fn stopped(db: &str, scratch: &str, dropped: Result<()>) -> String {
    match dropped {
        Ok(()) => format!("the restore stopped: database `{db}` is as it was"),
        Err(e) => format!(
            "the restore stopped: database `{db}` is as it was; the partial copy `{scratch}` \
             could not be dropped ({e:#}): drop it with `DROP DATABASE {scratch}`"
        ),
    }
}

/// Names for the database a replacement is restored into, and for the old one on its way
/// out; unique to this run.
fn scratch_names() -> (String, String) {
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    let hex = blake3::hash(seed.as_bytes()).to_hex();
    (
        format!("dvb_restore_{}", &hex[..12]),
        format!("dvb_replaced_{}", &hex[..12]),
    )
}

/// Whether `db` can be restored into as asked, without changing anything: missing (refused
/// without `--create`), empty, or holding objects (refused without `--force`). `client` is the
/// MySQL client, `None` for PostgreSQL.
async fn target(
    server: &Server,
    db: &str,
    req: &RestoreRequest,
    client: Option<&str>,
) -> Result<Target> {
    let exists = match client {
        None => server.pg_database_exists(db).await?,
        Some(c) => server.my_database_exists(c, db).await?,
    };
    if !exists {
        if !req.create {
            return Err(UserError::new(
                Kind::NotFound,
                format!("container `{}` has no database `{db}`", server.name),
            )
            .hint("use --create to create it, or --database to choose another")
            .into());
        }
        return Ok(Target::Missing);
    }
    let has_objects = match client {
        None => server.pg_database_has_objects(db).await?,
        Some(c) => server.my_table_count(c, Some(db)).await? > 0,
    };
    if !has_objects {
        return Ok(Target::Empty);
    }
    if !req.force {
        return Err(UserError::new(
            Kind::Refused,
            format!(
                "database `{db}` in container `{}` is not empty",
                server.name
            ),
        )
        .hint("use --force to replace it with the dump's content")
        .into());
    }
    Ok(Target::Replace)
}

fn copy_counted(
    mut input: impl Read,
    out: &mut impl Write,
    counters: &Counters,
) -> Result<u64, ArchiveError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(ArchiveError::from_io)?;
        if n == 0 {
            return Ok(total);
        }
        out.write_all(&buf[..n]).map_err(ArchiveError::Output)?;
        total += n as u64;
        counters.add_tar_bytes(n as u64);
    }
}

fn copy_filtered(
    mut input: impl BufRead,
    out: &mut impl Write,
    mut filter: ClusterFilter,
    counters: &Counters,
) -> Result<u64, ArchiveError> {
    let mut line = Vec::with_capacity(64 * 1024);
    let mut total = 0u64;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(ArchiveError::from_io)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        counters.add_tar_bytes(n as u64);
        match filter.line(&line) {
            Some(replacement) => out.write_all(&replacement),
            None => out.write_all(&line),
        }
        .map_err(ArchiveError::Output)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: &str = "-- PostgreSQL database dump complete";

    #[test]
    fn end_markers_are_found_at_the_end_only() {
        let pg = b"COPY t FROM stdin;\n1\n\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n";
        assert!(ends_with_marker(pg, PG));
        // pg_dump 15.14 and later end with psql's \unrestrict.
        let restricted = b"--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict AbC123\n\n";
        assert!(ends_with_marker(restricted, PG));
        let my = b"UNLOCK TABLES;\n-- Dump completed on 2026-11-30  1:02:03\n";
        assert!(ends_with_marker(my, "-- Dump completed"));
        // Cut before the marker, or with anything after it.
        assert!(!ends_with_marker(b"INSERT INTO t VALUES (1);\n", PG));
        assert!(!ends_with_marker(b"", PG));
        let more = b"-- PostgreSQL database dump complete\nDROP TABLE t;\n";
        assert!(!ends_with_marker(more, PG));
        // One database's marker inside a cluster dump is not the cluster's.
        assert!(!ends_with_marker(
            pg,
            "-- PostgreSQL database cluster dump complete"
        ));
    }

    fn read_all(r: &mut impl Read) -> Result<Vec<u8>, ArchiveError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            match r.read(&mut buf).map_err(ArchiveError::from_io)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn a_cut_stream_fails_at_its_end() {
        let mut whole = b"x".repeat(3 * TAIL_LEN);
        whole.extend_from_slice(b"\n--\n-- PostgreSQL database dump complete\n--\n");
        let marker = end_marker(DumpKind::PgSql).unwrap();
        let mut ok = EndCheck::new(&whole[..], marker);
        assert_eq!(read_all(&mut ok).unwrap(), whole);
        let cut = &whole[..whole.len() - 10];
        let err = read_all(&mut EndCheck::new(cut, marker)).unwrap_err();
        assert!(matches!(err, ArchiveError::Truncated(_)), "{err}");
        assert!(err.to_string().contains("pg_dump writes last"), "{err}");
        assert!(err.is_damage());
        assert_eq!(end_marker(DumpKind::PgCustom), None);
    }

    #[test]
    fn the_trailer_of_db_dump_is_checked() {
        let mut dump = b"-- docker-volume-backup db-dump {}\n".to_vec();
        dump.extend(b"INSERT INTO t VALUES (1);\n".repeat(1000));
        dump.extend_from_slice(b"--\n-- PostgreSQL database cluster dump complete\n--\n\n");
        let trailer = DbTrailer {
            bytes: dump.len() as u64,
            blake3: blake3::hash(&dump).to_hex().to_string(),
        };
        dump.extend_from_slice(trailer.to_line().as_bytes());
        let marker = end_marker(DumpKind::PgCluster).unwrap();
        assert_eq!(
            read_all(&mut EndCheck::new(&dump[..], marker)).unwrap(),
            dump
        );
        // A changed byte with the marker and trailer intact.
        let mut damaged = dump.clone();
        damaged[2000] = b'X';
        let err = read_all(&mut EndCheck::new(&damaged[..], marker)).unwrap_err();
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
        // Text after the trailer hides it, and the marker is no longer last.
        let mut more = dump.clone();
        more.extend_from_slice(b"DROP DATABASE app;\n");
        let err = read_all(&mut EndCheck::new(&more[..], marker)).unwrap_err();
        assert!(matches!(err, ArchiveError::Truncated(_)), "{err}");
    }

    #[test]
    fn a_spool_gives_the_whole_dump_back_or_refuses_a_cut_one() {
        let mut dump = Vec::new();
        for i in 0..100_000 {
            dump.extend_from_slice(format!("INSERT INTO t VALUES ({i});\n").as_bytes());
        }
        dump.extend_from_slice(b"-- Dump completed on 2026-11-30  1:02:03\n");
        let kind = DumpKind::MySql { all: false };
        let never = CancellationToken::new();
        let spool = Spool::fill_blocking(
            checked(Box::new(io::Cursor::new(dump.clone())), kind),
            &never,
        )
        .unwrap();
        // Kept compressed, and read from the start each time.
        assert!(spool.file.metadata().unwrap().len() < dump.len() as u64 / 4);
        for _ in 0..2 {
            let mut back = Vec::new();
            spool.reader().unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, dump);
        }
        let cut = dump[..dump.len() / 2].to_vec();
        let err = Spool::fill_blocking(checked(Box::new(io::Cursor::new(cut)), kind), &never)
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("-- Dump completed"), "{err:#}");
    }
}
