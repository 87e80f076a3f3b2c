//! `db-dump CONTAINER`: a logical dump of a database container with its own dump tool,
//! streamed, compressed and written atomically.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use chrono::Local;

use crate::archive::{Compression, EncodeOptions};
use crate::cli::DbDumpArgs;
use crate::db::dump::{dump_with_progress, DumpPlan};
use crate::db::{self, DumpFormat, Server};
use crate::error::{Kind, UserError};
use crate::output;
use crate::settings::Ctx;
use crate::storage::Sink;

/// Where the dump goes.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    File(PathBuf),
    Stdout,
}

pub async fn run(ctx: &Ctx, args: DbDumpArgs) -> Result<()> {
    let stamp = Local::now().format("%Y%m%d_%H%M%S").to_string();
    let given = db::overrides_from(&args.credentials)?;
    let engine = ctx.engine().await?;
    let server = Server::find(&engine.docker, &args.container, &given).await?;
    let plan = DumpPlan::prepare(server, args.database.clone(), args.all, args.format).await?;
    let (target, compression) = plan_output(&plan.server.name, plan.scope.label(), &args, &stamp)?;
    let encode = args.tuning.encode(compression);
    let sink = match &target {
        Target::Stdout => Sink::stdout()?,
        Target::File(path) => Sink::file(path, args.force)?,
    };
    let started = Instant::now();
    let (sink, dumped) = dump_with_progress(&plan, sink, encode, &ctx.cancel).await?;
    let size = tokio::task::spawn_blocking(move || sink.commit())
        .await
        .expect("commit panicked")?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = format!(
        "{}, {} of dump, {seconds:.1} s",
        plan.describe(),
        output::bytes(dumped)
    );
    match (target, size) {
        (Target::File(path), Some(size)) => output::info(&format!(
            "saved {} ({}; {summary})",
            path.display(),
            output::bytes(size)
        )),
        _ => output::info(&format!(
            "dumped {} to stdout ({summary})",
            plan.server.name
        )),
    }
    Ok(())
}

/// `<container>_<db|all>_<stamp>.sql.zst` (`.sql.gz`, `.sql`; `.dump` for the custom format)
/// under `./backups`, or `-o FILE|DIR|-`; the compression from the flag, else the file's
/// extension, else zstd. A custom-format dump is compressed by pg_dump itself and written as
/// it comes, so that `pg_restore` reads the file by hand.
fn plan_output(
    container: &str,
    scope: &str,
    args: &DbDumpArgs,
    stamp: &str,
) -> Result<(Target, Compression)> {
    let usage = |msg: String| -> anyhow::Error { UserError::new(Kind::Usage, msg).into() };
    let custom = args.format == DumpFormat::Custom;
    if custom && args.compression.is_some_and(|c| c != Compression::None) {
        return Err(usage(
            "--format custom is compressed by pg_dump itself: drop --compression".into(),
        ));
    }
    let by_name = |file: &str| -> Option<Compression> {
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".zst") {
            Some(Compression::Zstd)
        } else if lower.ends_with(".gz") {
            Some(Compression::Gzip)
        } else if lower.ends_with(".sql") || lower.ends_with(".dump") {
            Some(Compression::None)
        } else {
            None
        }
    };
    let chosen = if custom {
        Compression::None
    } else {
        args.compression.unwrap_or(Compression::Zstd)
    };
    let default_name = |dir: &Path| {
        let ext = match (custom, chosen) {
            (true, _) => "dump",
            (false, Compression::Zstd) => "sql.zst",
            (false, Compression::Gzip) => "sql.gz",
            (false, Compression::None) => "sql",
        };
        dir.join(format!(
            "{}_{}_{stamp}.{ext}",
            file_safe(container),
            file_safe(scope)
        ))
    };
    let (target, compression) = match args.output.as_deref() {
        None => (Target::File(default_name(Path::new("backups"))), chosen),
        Some("-") => (Target::Stdout, chosen),
        Some(o) if o.ends_with('/') || Path::new(o).is_dir() => {
            (Target::File(default_name(Path::new(o))), chosen)
        }
        Some(file) if custom => (Target::File(PathBuf::from(file)), Compression::None),
        Some(file) => {
            let compression = match (args.compression, by_name(file)) {
                (Some(flag), Some(ext)) if flag != ext => {
                    return Err(usage(format!(
                        "{file} looks like {ext} but --compression {flag} was given"
                    )))
                }
                (Some(flag), _) => flag,
                (None, Some(ext)) => ext,
                (None, None) => Compression::Zstd,
            };
            (Target::File(PathBuf::from(file)), compression)
        }
    };
    EncodeOptions {
        compression,
        level: args.tuning.level,
        threads: 1,
    }
    .validate()
    .map_err(usage)?;
    Ok((target, compression))
}

/// A name part safe in a file name: anything but letters, digits, `.`, `_` and `-` becomes `_`.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(output: Option<&str>, format: DumpFormat, c: Option<Compression>) -> DbDumpArgs {
        DbDumpArgs {
            container: "db".into(),
            database: None,
            all: false,
            format,
            output: output.map(String::from),
            compression: c,
            tuning: Default::default(),
            force: false,
            credentials: Default::default(),
        }
    }

    #[test]
    fn default_names() {
        let a = args(None, DumpFormat::Plain, None);
        let (t, c) = plan_output("mysql-server", "all", &a, "20261125_103000").unwrap();
        assert_eq!(
            t,
            Target::File("backups/mysql-server_all_20261125_103000.sql.zst".into())
        );
        assert_eq!(c, Compression::Zstd);
        let a = args(None, DumpFormat::Custom, None);
        let (t, c) = plan_output("pg", "my app/db", &a, "s").unwrap();
        assert_eq!(t, Target::File("backups/pg_my_app_db_s.dump".into()));
        assert_eq!(c, Compression::None);
        let a = args(Some("out/"), DumpFormat::Plain, Some(Compression::Gzip));
        let (t, _) = plan_output("pg", "app", &a, "s").unwrap();
        assert_eq!(t, Target::File("out/pg_app_s.sql.gz".into()));
    }

    #[test]
    fn extensions_and_conflicts() {
        for (name, want) in [
            ("x.sql", Compression::None),
            ("x.sql.gz", Compression::Gzip),
            ("x.sql.zst", Compression::Zstd),
            ("x.bak", Compression::Zstd),
        ] {
            let a = args(Some(name), DumpFormat::Plain, None);
            assert_eq!(plan_output("pg", "app", &a, "s").unwrap().1, want, "{name}");
        }
        let a = args(Some("x.sql"), DumpFormat::Plain, Some(Compression::Zstd));
        assert!(plan_output("pg", "app", &a, "s").is_err());
        let a = args(None, DumpFormat::Custom, Some(Compression::Zstd));
        assert!(plan_output("pg", "app", &a, "s").is_err());
        let a = args(Some("-"), DumpFormat::Plain, None);
        assert_eq!(plan_output("pg", "app", &a, "s").unwrap().0, Target::Stdout);
    }
}
