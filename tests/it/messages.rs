//! Snapshots of the messages users read: the summaries of `save` and `restore`, the main errors
//! with their exit codes and hints, `verify`'s verdict, the `inspect` table, the shape of
//! `ls --format json` and the exit codes in `--help`. The real binary against the real engine;
//! what varies between runs (names, paths, times, durations, sizes, ids, versions) is filtered.
//! The snapshots live in `snapshots/`; `INSTA_UPDATE=always` rewrites them after a deliberate
//! change (review the diff), and with `CI=true` a mismatch fails.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::*;

/// A volume name of fixed length, unique to this run: tables keep their column widths when the
/// unique part is filtered.
fn fixed_name(suffix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = std::process::id()
        .wrapping_mul(1000)
        .wrapping_add(N.fetch_add(1, Ordering::Relaxed));
    format!("dvbt-msg-{n:08x}-{suffix}")
}

/// A new volume with a fixed-length name, holding what `script` makes (busybox, at /data).
fn volume(suffix: &str, script: &str) -> Volume {
    let v = Volume {
        name: fixed_name(suffix),
    };
    docker(&["volume", "create", &v.name]);
    v.sh(script);
    v
}

/// Content whose archive is the same on every run: fixed names, sizes, owners, modes, times.
const KNOWN: &str = "mkdir -p /data/d && echo hello > /data/d/f && echo world > /data/g && \
                     chown -R 1000:1000 /data && chmod 0644 /data/d/f /data/g && \
                     touch -d '2001-02-03 04:05:06' /data/d/f /data/g /data/d /data";

/// The filters every snapshot gets, and the ones a test adds (its temporary paths first).
struct Snap {
    filters: Vec<(String, String)>,
}

impl Snap {
    fn new() -> Snap {
        Snap {
            filters: Vec::new(),
        }
    }

    /// `path` (a temporary directory) as `[TMP]`.
    fn tmp(mut self, path: &Path) -> Snap {
        let path = path.to_str().unwrap();
        self.filters.push((regex_escape(path), "[TMP]".to_string()));
        self
    }

    fn filter(mut self, regex: &str, replacement: &str) -> Snap {
        self.filters.push((regex.into(), replacement.into()));
        self
    }

    /// Compares `text` with the snapshot `name`, after the test's filters and the common ones.
    #[track_caller]
    fn assert(self, name: &str, text: &str) {
        let mut settings = insta::Settings::clone_current();
        let common = [
            // The unique part of fixed_name (same width, so tables stay aligned).
            (r"dvbt-msg-[0-9a-f]{8}", "dvbt-msg-########"),
            // Archive names' times.
            (r"\d{8}_\d{6}", "YYYYmmdd_HHMMSS"),
            // Dates and times (manifests, listings).
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                "[TIME]",
            ),
            // Durations (same width below 10 s).
            (r"\b\d\.\d s\b", "#.# s"),
            // Container ids and checksums.
            (r"\b[0-9a-f]{12,64}\b", "[HEX]"),
            // The engine: its socket and its version.
            (r"unix:///(var/)?run/docker\.sock", "[SOCKET]"),
            (r"engine \d+\.\d+\.\d+\S*", "engine [ENGINE-VERSION]"),
        ];
        for (regex, replacement) in self
            .filters
            .iter()
            .map(|(r, w)| (r.as_str(), w.as_str()))
            .chain(common)
        {
            settings.add_filter(regex, replacement);
        }
        settings.add_filter(&regex_escape(env!("CARGO_PKG_VERSION")), "[VERSION]");
        // The engine: its label in names and listings, its host name and ID in manifests.
        settings.add_filter(&regex_escape(&docker_label()), "[ENGINE]");
        settings.add_filter(
            r"\(docker on \S+, id \S+\)",
            "(docker on [HOST], id [ENGINE-ID])",
        );
        settings.bind(|| insta::assert_snapshot!(name, text));
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = r"\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// What a user sees of `args`: the command, its exit code, stdout and stderr.
fn transcript(args: &[&str], r: &Run) -> String {
    let mut s = format!(
        "$ docker-volume-backup {}\nexit code: {}\n",
        args.join(" "),
        r.code
    );
    if !r.stdout.is_empty() {
        s.push_str("--- stdout\n");
        s.push_str(&r.stdout_str());
    }
    if !r.stderr.is_empty() {
        s.push_str("--- stderr\n");
        s.push_str(&r.stderr);
    }
    s
}

/// Runs the tool and returns its transcript.
fn session(args: &[&str]) -> (Run, String) {
    let r = run(args);
    let text = transcript(args, &r);
    (r, text)
}

/// An archive of a volume holding KNOWN, in `dir`.
fn known_archive(dir: &Path) -> (Volume, String) {
    let v = volume("known", KNOWN);
    let file = dir.join("known.tar.zst").to_str().unwrap().to_string();
    run(&["save", &v.name, "-o", &file, "-q"]).ok();
    (v, file)
}

/// Sizes of archives, which vary a little with the manifest (times, endpoint, host).
const ARCHIVE_SIZE: (&str, &str) = (r"\(\d+(\.\d+)? [kMG]?B,", "([SIZE],");

#[test]
fn save_and_restore_summaries() {
    let dir = tempdir();
    let src = volume("src", KNOWN);
    let file = dir.path().join("a.tar.zst");
    let file = file.to_str().unwrap();
    let (_, saved) = session(&["save", &src.name, "-o", file]);
    Snap::new()
        .tmp(dir.path())
        .filter(ARCHIVE_SIZE.0, ARCHIVE_SIZE.1)
        .assert("save_summary", &saved);

    let dst = Volume {
        name: fixed_name("dst"),
    };
    let (r, restored) = session(&["restore", file, &dst.name]);
    r.ok();
    Snap::new()
        .tmp(dir.path())
        .assert("restore_summary", &restored);

    // Two volumes: the summary table (its widths pinned too).
    let other = volume("two", "echo two > /data/two");
    let out = format!("{}/", dir.path().join("many").display());
    let (r, table) = session(&["save", &src.name, &other.name, "-o", &out]);
    r.ok();
    Snap::new()
        .tmp(dir.path())
        .filter(ARCHIVE_SIZE.0, ARCHIVE_SIZE.1)
        .filter(r"\(\d+(\.\d+)? [kMG]?B\)", "([SIZE])")
        .assert("save_summary_table", &table);
}

#[test]
fn refusals_and_damage() {
    let dir = tempdir();
    let (src, file) = known_archive(dir.path());

    // Into a volume that holds data, without --force.
    let (_, text) = session(&["restore", &file, &src.name]);
    Snap::new()
        .tmp(dir.path())
        .assert("restore_not_empty", &text);

    // A truncated archive, into a new volume.
    let big = volume("big", "seq 1 400000 > /data/numbers && echo end > /data/z");
    let whole = dir.path().join("big.tar.zst");
    run(&["save", &big.name, "-o", whole.to_str().unwrap(), "-q"]).ok();
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let fresh = Volume {
        name: fixed_name("cut"),
    };
    let (_, text) = session(&["restore", cut.to_str().unwrap(), &fresh.name]);
    Snap::new()
        .tmp(dir.path())
        .filter(r"tar byte \d+", "tar byte [N]")
        .assert("restore_truncated", &text);
    assert!(!fresh.exists());

    // A volume that is not there.
    let missing = fixed_name("missing");
    let out = dir.path().join("m.tar.zst");
    let (_, text) = session(&["save", &missing, "-o", out.to_str().unwrap()]);
    Snap::new().tmp(dir.path()).assert("missing_volume", &text);

    // An archive name whose compression is not the one asked for.
    let gz = dir.path().join("x.tar.gz");
    let args = [
        "save",
        &src.name,
        "-o",
        gz.to_str().unwrap(),
        "--compression",
        "zstd",
    ];
    let (_, text) = session(&args);
    Snap::new()
        .tmp(dir.path())
        .assert("compression_mismatch", &text);
    assert!(!gz.exists());
}

#[test]
fn unreachable_daemon() {
    let (_, text) = session(&["-H", "unix:///nonexistent.sock", "ls"]);
    Snap::new().assert("unreachable_daemon", &text);
}

#[test]
fn verify_and_inspect_a_known_archive() {
    let dir = tempdir();
    let (_src, file) = known_archive(dir.path());
    let (r, text) = session(&["verify", &file]);
    r.ok();
    Snap::new().tmp(dir.path()).assert("verify_ok", &text);

    let (r, text) = session(&["inspect", &file]);
    r.ok();
    Snap::new()
        .tmp(dir.path())
        .filter(r"\(\d+(\.\d+)? [kMG]?B, zstd\)", "([SIZE], zstd)")
        .assert("inspect_table", &text);
}

#[test]
fn ls_json_of_one_volume() {
    let v = volume("ls", KNOWN);
    docker(&[
        "volume",
        "create",
        "--label",
        "team=ops",
        &format!("{}-l", v.name),
    ]);
    let labelled = Volume {
        name: format!("{}-l", v.name),
    };
    let user = Container {
        name: fixed_name("user"),
    };
    let mount = format!("{}:/data", labelled.name);
    docker(&[
        "create",
        "--name",
        &user.name,
        "--network",
        "none",
        "-v",
        &mount,
        busybox(),
        "true",
    ]);
    let r = run(&["ls", "--format", "json"]).ok();
    let rows: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == labelled.name.as_str())
        .expect("the volume is listed");
    Snap::new()
        .filter(r#""size": \d+"#, r#""size": [SIZE]"#)
        .assert("ls_json", &serde_json::to_string_pretty(row).unwrap());
}

#[test]
fn help_lists_the_exit_codes() {
    let r = tool()
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .arg("--help")
        .run()
        .ok();
    let help = r.stdout_str();
    let at = help
        .find("Exit codes")
        .expect("--help lists the exit codes");
    Snap::new().assert("help_exit_codes", &help[at..]);
}

fn help_of(args: &[&str]) -> String {
    let r = tool()
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .args(args)
        .arg("--help")
        .run()
        .ok();
    r.stdout_str().to_owned()
}

/// Docker's global flags appear once, in the top-level help; S3's only where a destination is
/// taken; each command's help shows its own flags, as `docker volume ls --help` does.
#[test]
fn help_reads_like_dockers() {
    let top = help_of(&[]);
    let options = &top[top.find("Options:").unwrap()..top.find("Exit codes").unwrap()];
    Snap::new().assert("help_top_options", options);
    assert!(
        !top.contains("--s3-endpoint"),
        "S3 flags in the top-level help"
    );
    Snap::new().assert("help_ls", &help_of(&["ls"]));
    Snap::new().assert("help_backups", &help_of(&["backups"]));
    for without_dest in [
        &["clone"][..],
        &["migrate"],
        &["db-dump"],
        &["schedule", "ls"],
    ] {
        let help = help_of(without_dest);
        for flag in [
            "--context",
            "--host",
            "--tlsverify",
            "--config",
            "--s3-endpoint",
        ] {
            assert!(!help.contains(flag), "{flag} in {without_dest:?} --help");
        }
    }
    for with_dest in [
        &["save"][..],
        &["restore"],
        &["prune"],
        &["schedule", "add"],
    ] {
        let help = help_of(with_dest);
        assert!(
            help.contains("--s3-endpoint"),
            "no S3 flags in {with_dest:?} --help"
        );
        assert!(
            !help.contains("--tlscacert"),
            "--tlscacert in {with_dest:?} --help"
        );
    }
    // Still accepted after the command, as before.
    let r = tool()
        .args([
            "backups",
            "--context",
            "nonexistent-ctx",
            "--tls",
            "--s3-region",
            "x",
        ])
        .arg("/nonexistent/dir")
        .run();
    assert_ne!(
        r.code, 2,
        "global flags after the command are a usage error\n{r}"
    );
}
