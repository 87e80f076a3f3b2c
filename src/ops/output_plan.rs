//! Where an output goes: the `-o FILE|DIR|-` rule, written once for archives (`save`), bundles
//! (`compose-export`) and dumps (`db-dump`), and the compression a file name asks for.

use std::path::{Path, PathBuf};

use crate::archive::{Compression, EncodeOptions};
use crate::db::DumpFormat;

/// Where one output goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    File(PathBuf),
    Stdout,
    /// This name in every `--to` destination.
    To(String),
}

/// The `-o` rule: no `-o` puts `default_name` under `./backups`; `-o -` is stdout; `-o DIR/` (or
/// an existing directory) puts `default_name` there; anything else is the file itself, whose
/// name the caller may read (`Named`). `-o -` and `-o FILE` take one output only (`many` false).
#[derive(Debug, Clone, PartialEq)]
enum Placement {
    Stdout,
    Default(PathBuf),
    Named(PathBuf),
}

fn place(
    output: Option<&str>,
    default_name: &str,
    many: Option<&str>,
) -> Result<Placement, String> {
    match output {
        None => Ok(Placement::Default(Path::new("backups").join(default_name))),
        Some("-") => match many {
            Some(what) => Err(format!("`-o -` takes a single {what}")),
            None => Ok(Placement::Stdout),
        },
        Some(o) if o.ends_with('/') || Path::new(o).is_dir() => {
            Ok(Placement::Default(Path::new(o).join(default_name)))
        }
        Some(_) if many.is_some() => Err(format!(
            "-o FILE takes a single {}; give a directory (`-o DIR/`) for several",
            many.unwrap_or_default()
        )),
        Some(file) => Ok(Placement::Named(PathBuf::from(file))),
    }
}

/// The flags that decide one archive's output (`save`).
#[derive(Debug, Clone, Default)]
pub struct ArchiveFlags {
    /// `-o`.
    pub output: Option<String>,
    /// `--compression`.
    pub compression: Option<Compression>,
    /// `--level`, checked against the compression.
    pub level: Option<i32>,
    /// Encrypting (`.age` is added to default names).
    pub encrypted: bool,
    /// `--to` was given: the name goes to every destination.
    pub to: bool,
    /// Several volumes are saved.
    pub many: bool,
}

/// The output and compression of `volume`'s archive: `-o FILE`, `-o DIR`, `-o -`, `--to`, or the
/// seed's `./backups/<volume>_<YYYYmmdd_HHMMSS>` naming (`.age` added when encrypting);
/// compression from the flag, else the file's extension (less `.age`), else zstd.
pub fn archive(
    volume: &str,
    flags: &ArchiveFlags,
    stamp: &str,
) -> Result<(Target, Compression), String> {
    let age = if flags.encrypted { ".age" } else { "" };
    let chosen = flags.compression.unwrap_or(Compression::Zstd);
    let default_name = format!("{volume}_{stamp}.{}{age}", chosen.extension());
    let (target, compression) = if flags.to {
        // `--to` conflicts with `-o`: the same name goes to every destination.
        (Target::To(default_name), chosen)
    } else {
        match place(
            flags.output.as_deref(),
            &default_name,
            flags.many.then_some("volume"),
        )? {
            Placement::Stdout => (Target::Stdout, chosen),
            Placement::Default(path) => (Target::File(path), chosen),
            Placement::Named(path) => {
                let file = path.display().to_string();
                let lower = file.to_ascii_lowercase();
                let plain_name = match lower.strip_suffix(".age") {
                    Some(_) if !flags.encrypted => {
                        return Err(format!(
                            "{file} looks like an encrypted archive but no --encrypt-to, \
                             --encrypt-to-file, --passphrase-file or --passphrase was given"
                        ))
                    }
                    Some(stem) => stem,
                    None => &lower,
                };
                let by_name = Compression::from_file_name(plain_name);
                let compression = agreed(flags.compression, by_name, |ext| {
                    format!("{file} looks like a {ext} archive")
                })?;
                (Target::File(path), compression)
            }
        }
    };
    check_level(compression, flags.level)?;
    Ok((target, compression))
}

/// A compose bundle's output: `-o FILE`, `-o DIR`, `-o -`, or
/// `./backups/<project>_<stamp>.compose.tar`.
pub fn bundle(output: Option<&str>, project: &str, stamp: &str) -> Target {
    let default_name = format!("{project}_{stamp}.compose.tar");
    match place(output, &default_name, None).expect("one output cannot be too many") {
        Placement::Stdout => Target::Stdout,
        Placement::Default(path) | Placement::Named(path) => Target::File(path),
    }
}

/// The flags that decide a database dump's output (`db-dump`).
#[derive(Debug, Clone)]
pub struct DumpFlags {
    pub output: Option<String>,
    pub compression: Option<Compression>,
    pub level: Option<i32>,
    pub format: DumpFormat,
}

/// `<container>_<db|all>_<stamp>.sql.zst` (`.sql.gz`, `.sql`; `.dump` for the custom format)
/// under `./backups`, or `-o FILE|DIR|-`; the compression from the flag, else the file's
/// extension, else zstd. A custom-format dump is compressed by pg_dump itself and written as
/// it comes, so that `pg_restore` reads the file by hand.
pub fn dump(
    container: &str,
    scope: &str,
    flags: &DumpFlags,
    stamp: &str,
) -> Result<(Target, Compression), String> {
    let custom = flags.format == DumpFormat::Custom;
    if custom && flags.compression.is_some_and(|c| c != Compression::None) {
        return Err("--format custom is compressed by pg_dump itself: drop --compression".into());
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
        flags.compression.unwrap_or(Compression::Zstd)
    };
    let ext = match (custom, chosen) {
        (true, _) => "dump",
        (false, Compression::Zstd) => "sql.zst",
        (false, Compression::Gzip) => "sql.gz",
        (false, Compression::None) => "sql",
    };
    let default_name = format!(
        "{}_{}_{stamp}.{ext}",
        file_safe(container),
        file_safe(scope)
    );
    let (target, compression) = match place(flags.output.as_deref(), &default_name, None)? {
        Placement::Stdout => (Target::Stdout, chosen),
        Placement::Default(path) => (Target::File(path), chosen),
        Placement::Named(path) if custom => (Target::File(path), Compression::None),
        Placement::Named(path) => {
            let file = path.display().to_string();
            let compression = agreed(flags.compression, by_name(&file), |ext| {
                format!("{file} looks like {ext}")
            })?;
            (Target::File(path), compression)
        }
    };
    check_level(compression, flags.level)?;
    Ok((target, compression))
}

/// `--compression` if given, else what the file's name asks for, else zstd; a flag and a name
/// that disagree are refused (`looks` says what the name looks like).
fn agreed(
    flag: Option<Compression>,
    by_name: Option<Compression>,
    looks: impl Fn(Compression) -> String,
) -> Result<Compression, String> {
    match (flag, by_name) {
        (Some(flag), Some(ext)) if flag != ext => {
            Err(format!("{} but --compression {flag} was given", looks(ext)))
        }
        (Some(flag), _) => Ok(flag),
        (None, Some(ext)) => Ok(ext),
        (None, None) => Ok(Compression::Zstd),
    }
}

fn check_level(compression: Compression, level: Option<i32>) -> Result<(), String> {
    EncodeOptions {
        compression,
        level,
        threads: 1,
    }
    .validate()
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

    fn flags(many: bool, output: Option<&str>, compression: Option<Compression>) -> ArchiveFlags {
        ArchiveFlags {
            output: output.map(String::from),
            compression,
            many,
            ..Default::default()
        }
    }

    #[test]
    fn default_output_follows_the_seed_naming() {
        let (t, c) = archive("db", &flags(false, None, None), "20261125_103000").unwrap();
        assert_eq!(t, Target::File("backups/db_20261125_103000.tar.zst".into()));
        assert_eq!(c, Compression::Zstd);
        let a = flags(false, None, Some(Compression::Gzip));
        let (t, _) = archive("db", &a, "20261125_103000").unwrap();
        assert_eq!(t, Target::File("backups/db_20261125_103000.tar.gz".into()));
    }

    #[test]
    fn extension_chooses_compression() {
        for (name, want) in [
            ("x.tar.gz", Compression::Gzip),
            ("x.tgz", Compression::Gzip),
            ("x.tar", Compression::None),
            ("x.tar.zst", Compression::Zstd),
            ("x.bin", Compression::Zstd),
        ] {
            let (_, c) = archive("v", &flags(false, Some(name), None), "s").unwrap();
            assert_eq!(c, want, "{name}");
        }
        let conflict = flags(false, Some("x.tar.gz"), Some(Compression::Zstd));
        assert!(archive("v", &conflict, "s").is_err());
    }

    #[test]
    fn directories_and_stdout() {
        let (t, _) = archive("v", &flags(true, Some("out/"), None), "s").unwrap();
        assert_eq!(t, Target::File("out/v_s.tar.zst".into()));
        let (t, _) = archive("v", &flags(false, Some("-"), None), "s").unwrap();
        assert_eq!(t, Target::Stdout);
        assert!(archive("v", &flags(true, Some("-"), None), "s").is_err());
        assert!(archive("v", &flags(true, Some("f.tar"), None), "s").is_err());
    }

    #[test]
    fn encrypted_names_end_in_age() {
        let mut a = flags(false, None, None);
        assert!(archive("db", &flags(false, Some("x.tar.gz.age"), None), "s").is_err());
        a.encrypted = true;
        let (t, c) = archive("db", &a, "s").unwrap();
        assert_eq!(t, Target::File("backups/db_s.tar.zst.age".into()));
        assert_eq!(c, Compression::Zstd);
        a.output = Some("x.tar.gz.age".into());
        let (t, c) = archive("db", &a, "s").unwrap();
        assert_eq!(t, Target::File("x.tar.gz.age".into()));
        assert_eq!(c, Compression::Gzip);
    }

    #[test]
    fn to_names_every_destination_alike() {
        let a = ArchiveFlags {
            to: true,
            many: true,
            ..Default::default()
        };
        let (t, _) = archive("v", &a, "s").unwrap();
        assert_eq!(t, Target::To("v_s.tar.zst".into()));
    }

    #[test]
    fn bundles() {
        assert_eq!(
            bundle(None, "shop", "20261125_103000"),
            Target::File("backups/shop_20261125_103000.compose.tar".into())
        );
        assert_eq!(bundle(Some("-"), "shop", "s"), Target::Stdout);
        assert_eq!(
            bundle(Some("out/"), "shop", "s"),
            Target::File("out/shop_s.compose.tar".into())
        );
    }

    fn dflags(output: Option<&str>, format: DumpFormat, c: Option<Compression>) -> DumpFlags {
        DumpFlags {
            output: output.map(String::from),
            compression: c,
            level: None,
            format,
        }
    }

    #[test]
    fn dump_default_names() {
        let a = dflags(None, DumpFormat::Plain, None);
        let (t, c) = dump("mysql-server", "all", &a, "20261125_103000").unwrap();
        assert_eq!(
            t,
            Target::File("backups/mysql-server_all_20261125_103000.sql.zst".into())
        );
        assert_eq!(c, Compression::Zstd);
        let a = dflags(None, DumpFormat::Custom, None);
        let (t, c) = dump("pg", "my app/db", &a, "s").unwrap();
        assert_eq!(t, Target::File("backups/pg_my_app_db_s.dump".into()));
        assert_eq!(c, Compression::None);
        let a = dflags(Some("out/"), DumpFormat::Plain, Some(Compression::Gzip));
        let (t, _) = dump("pg", "app", &a, "s").unwrap();
        assert_eq!(t, Target::File("out/pg_app_s.sql.gz".into()));
    }

    #[test]
    fn dump_extensions_and_conflicts() {
        for (name, want) in [
            ("x.sql", Compression::None),
            ("x.sql.gz", Compression::Gzip),
            ("x.sql.zst", Compression::Zstd),
            ("x.bak", Compression::Zstd),
        ] {
            let a = dflags(Some(name), DumpFormat::Plain, None);
            assert_eq!(dump("pg", "app", &a, "s").unwrap().1, want, "{name}");
        }
        let a = dflags(Some("x.sql"), DumpFormat::Plain, Some(Compression::Zstd));
        assert!(dump("pg", "app", &a, "s").is_err());
        let a = dflags(None, DumpFormat::Custom, Some(Compression::Zstd));
        assert!(dump("pg", "app", &a, "s").is_err());
        let a = dflags(Some("-"), DumpFormat::Plain, None);
        assert_eq!(dump("pg", "app", &a, "s").unwrap().0, Target::Stdout);
    }
}
