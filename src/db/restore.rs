//! Feeding a dump back into a database container: the format is recognised from the content
//! (compressed or not), the target database is checked (and created or replaced as asked), and
//! the dump streams into psql, pg_restore or mysql/mariadb through the exec's stdin. A damaged
//! or cut input kills the client instead of ending its input, so a single-transaction restore
//! is rolled back rather than committed half-way.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::format::{sniff, DbManifest, DumpKind};
use super::postgres::ClusterFilter;
use super::{mysql, postgres, Flavor, Server};
use crate::archive::{ArchiveError, Counters, Decoder};
use crate::docker::exec;
use crate::error::{Kind, UserError};
use crate::output::{Measure, Printer};
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
/// the container.
pub async fn restore_with_progress(
    server: &Server,
    (dump, counters): (OpenedDump, Arc<Counters>),
    label: &str,
    len: Option<u64>,
    req: &RestoreRequest,
    cancel: &CancellationToken,
    printer: Printer,
) -> Result<Restored> {
    let progress = printer.progress(label, Arc::clone(&counters), len, Measure::InputBytes);
    let result = restore_into(server, dump, req, counters, cancel).await;
    progress.finish();
    result.map_err(|e| e.context(format!("restoring into `{}`", server.name)))
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
    let user = server.credentials.user.clone();
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

    let mut filter = None;
    let cmd = match server.flavor {
        Flavor::Postgres => {
            let tool = if kind == DumpKind::PgCustom {
                "pg_restore"
            } else {
                "psql"
            };
            server.find_tool(&[tool]).await?;
            server.pg_version().await?;
            match &database {
                Some(db) => {
                    prepare_target(server, db, req, None).await?;
                    if kind == DumpKind::PgCustom {
                        postgres::pg_restore_command(&user, db)
                    } else {
                        postgres::psql_restore_command(&user, db, true)
                    }
                }
                None => {
                    filter = Some(ClusterFilter::new(server.pg_roles().await?, req.force));
                    postgres::psql_restore_command(&user, "postgres", false)
                }
            }
        }
        Flavor::MySql | Flavor::MariaDb => {
            let tool = server.find_tool(&["mariadb", "mysql"]).await?;
            let client = mysql::client_for(&tool.name);
            server.my_version(client).await?;
            match &database {
                Some(db) => prepare_target(server, db, req, Some(client)).await?,
                None if !req.force && server.my_table_count(client, None).await? > 0 => {
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
                None => {}
            }
            mysql::restore_command(client, &user, database.as_deref())
        }
    };

    let exec = server.exec(cmd);
    let (tx, rx) = pipe::channel();
    let OpenedDump {
        reader,
        head,
        manifest,
        ..
    } = dump;
    let producer = tokio::task::spawn_blocking(move || -> Result<u64, ArchiveError> {
        let mut out = ChannelWriter::new(tx);
        let input = BufReader::with_capacity(1 << 20, io::Cursor::new(head).chain(reader));
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
        cancel,
    )
    .await;
    let produced = producer.await.expect("the dump reader panicked");
    match produced {
        // A damaged dump explains why the client was stopped (and its input failed).
        Err(e) if !matches!(e, ArchiveError::Output(_)) => {
            let undone = match (server.flavor, &database) {
                (Flavor::Postgres, Some(_)) => "nothing was committed",
                _ => "what was restored before that point stays",
            };
            Err(anyhow::Error::new(e).context(format!("the restore stopped: {undone}")))
        }
        // The client stopped reading: its status and stderr say why.
        Err(e) => {
            server.check(&exec, &ran?)?;
            Err(e.into())
        }
        Ok(bytes) => {
            server.check(&exec, &ran?)?;
            Ok(Restored {
                kind,
                database,
                manifest,
                bytes,
            })
        }
    }
}

/// Makes sure `db` is there to restore into: created with `--create`, replaced with `--force`
/// when it holds objects, refused otherwise. `client` is the MySQL client, `None` for
/// PostgreSQL.
async fn prepare_target(
    server: &Server,
    db: &str,
    req: &RestoreRequest,
    client: Option<&str>,
) -> Result<()> {
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
        return match client {
            None => server.pg_recreate_database(db, false).await,
            Some(c) => server.my_recreate_database(c, db, false).await,
        };
    }
    let has_objects = match client {
        None => server.pg_database_has_objects(db).await?,
        Some(c) => server.my_table_count(c, Some(db)).await? > 0,
    };
    if has_objects {
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
        // Replace, not merge: the result is exactly the dump's content.
        return match client {
            None => server.pg_recreate_database(db, true).await,
            Some(c) => server.my_recreate_database(c, db, true).await,
        };
    }
    Ok(())
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
