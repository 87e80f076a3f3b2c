//! `--notify` and `--ping` against a real HTTP server on loopback that records what it receives,
//! and `status --format prometheus` read back by a strict parser of the text format.

use std::collections::HashMap;

use crate::harness::*;

fn paths(r: &Recorder, method: &str) -> Vec<String> {
    r.requests()
        .into_iter()
        .filter(|q| q.method == method)
        .map(|q| q.path)
        .collect()
}

fn posts(r: &Recorder) -> Vec<serde_json::Value> {
    r.requests()
        .into_iter()
        .filter(|q| q.method == "POST")
        .inspect(|q| assert_eq!(q.content_type.as_deref(), Some("application/json")))
        .map(|q| q.json())
        .collect()
}

#[test]
fn a_save_posts_its_summary_and_pings_start_and_success() {
    let server = Recorder::start();
    let vol = Volume::new("notify-ok");
    vol.sh("echo hello > /data/f");
    let dir = tempdir();
    let dest = dir.path().to_str().unwrap();
    run(&[
        "save",
        &vol.name,
        "--to",
        dest,
        "--notify",
        &server.url("/hook"),
        "--ping",
        &server.url("/hc/abc"),
        "-q",
    ])
    .ok();
    assert_eq!(paths(&server, "GET"), ["/hc/abc/start", "/hc/abc"]);
    let sent = posts(&server);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let s = &sent[0];
    assert_eq!(s["command"], "save");
    assert_eq!(s["ok"], true);
    assert!(s["error"].is_null());
    assert_eq!(s["what"], serde_json::json!([vol.name]));
    assert_eq!(s["where"], serde_json::json!([dest]));
    let out = &s["outputs"][0];
    assert_eq!(out["volume"], vol.name.as_str());
    let archive = only_archive(dir.path());
    assert_eq!(out["location"], archive.to_str().unwrap());
    assert_eq!(
        out["size"].as_u64().unwrap(),
        std::fs::metadata(&archive).unwrap().len()
    );
    assert_eq!(s["total_bytes"], out["size"]);
    assert!(s["duration_seconds"].as_f64().unwrap() > 0.0);

    // prune reports too; --notify-on failure keeps a success quiet but still pings.
    run(&[
        "prune",
        dest,
        "--keep-last",
        "1",
        "--notify",
        &server.url("/prune"),
        "--notify-on",
        "failure",
        "--ping",
        &server.url("/hc/p"),
    ])
    .ok();
    assert_eq!(posts(&server).len(), 1, "a quiet success posted");
    assert_eq!(
        paths(&server, "GET")[2..],
        ["/hc/p/start".to_string(), "/hc/p".to_string()]
    );
}

#[test]
fn a_failed_save_posts_the_error_and_pings_fail() {
    let server = Recorder::start();
    let missing = unique("notify-missing");
    let dir = tempdir();
    run(&[
        "save",
        &missing,
        "--to",
        dir.path().to_str().unwrap(),
        "--notify",
        &server.url("/a"),
        "--notify",
        &server.url("/b"),
        "--notify-on",
        "failure",
        "--ping",
        &server.url("/hc"),
    ])
    .fails_with(4, &missing);
    assert_eq!(paths(&server, "GET"), ["/hc/start", "/hc/fail"]);
    let mut posted = paths(&server, "POST");
    posted.sort();
    assert_eq!(posted, ["/a", "/b"]);
    for s in posts(&server) {
        assert_eq!(s["ok"], false);
        assert!(s["error"].as_str().unwrap().contains(&missing), "{s}");
        assert_eq!(s["outputs"], serde_json::json!([]));
    }

    // compose-export reports the same way.
    let project = unique("notify-none");
    let empty = tempdir();
    let r = tool()
        .current_dir(empty.path())
        .args([
            "compose-export",
            "-p",
            &project,
            "--notify",
            &server.url("/c"),
        ])
        .args(["--ping", &server.url("/hc2")])
        .run();
    assert_ne!(r.code, 0, "{r}");
    let sent = posts(&server);
    let last = sent.last().unwrap();
    assert_eq!(last["command"], "compose-export");
    assert_eq!(last["ok"], false);
    assert_eq!(last["what"], serde_json::json!([project]));
    assert_eq!(
        paths(&server, "GET")[2..],
        ["/hc2/start".to_string(), "/hc2/fail".to_string()]
    );
}

#[test]
fn an_undeliverable_notification_is_a_warning() {
    let vol = Volume::new("notify-nowhere");
    let dir = tempdir();
    // Nothing listens there; credentials in the URL never reach a message.
    let nowhere = format!("http://user:hunter2@127.0.0.1:{}/hook", free_port());
    let r = run(&[
        "save",
        &vol.name,
        "--to",
        dir.path().to_str().unwrap(),
        "--notify",
        &nowhere,
        "--ping",
        &nowhere,
    ])
    .ok();
    assert!(
        r.stderr
            .contains("warning: notification to http://127.0.0.1:"),
        "{r}"
    );
    assert!(!r.stderr.contains("hunter2"), "{r}");
    assert_eq!(files_in(dir.path()).len(), 1, "the backup is there");
}

/// One sample of the text format.
#[derive(Debug)]
pub(crate) struct Sample {
    pub name: String,
    pub labels: HashMap<String, String>,
    pub value: f64,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses Prometheus' text exposition format strictly (the subset node_exporter's textfile
/// collector reads): HELP and TYPE lines before their samples, one TYPE per family, valid names,
/// quoted and escaped label values, float values. Panics on anything else.
pub(crate) fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the text ends with a line break");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, arg) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
            assert!(is_metric_name(name), "bad name in {line:?}");
            match kind {
                "HELP" => assert!(arg.is_some_and(|h| !h.is_empty()), "{line:?}"),
                "TYPE" => {
                    let t = arg.unwrap();
                    assert!(["gauge", "counter", "untyped"].contains(&t), "{line:?}");
                    assert!(
                        typed.insert(name.into(), t.into()).is_none(),
                        "TYPE twice: {line:?}"
                    );
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        assert!(!line.trim().is_empty(), "empty line");
        let name_end = line.find(['{', ' ']).expect("a value");
        let name = &line[..name_end];
        assert!(is_metric_name(name), "bad name in {line:?}");
        assert!(typed.contains_key(name), "sample before its TYPE: {line:?}");
        let mut labels = HashMap::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let close;
            loop {
                let start = chars.peek().unwrap().0;
                let mut key_end = start;
                for (i, c) in chars.by_ref() {
                    if c == '=' {
                        key_end = i;
                        break;
                    }
                }
                let key = &inner[start..key_end];
                assert!(is_metric_name(key), "bad label name in {line:?}");
                assert_eq!(
                    chars.next().map(|c| c.1),
                    Some('"'),
                    "unquoted value: {line:?}"
                );
                let mut value = String::new();
                loop {
                    match chars.next().expect("unterminated label value").1 {
                        '\\' => match chars.next().unwrap().1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c} in {line:?}"),
                        },
                        '"' => break,
                        '\n' => panic!("line break in {line:?}"),
                        c => value.push(c),
                    }
                }
                labels.insert(key.to_string(), value);
                match chars.next().expect("unterminated labels") {
                    (_, ',') => continue,
                    (i, '}') => {
                        close = i;
                        break;
                    }
                    (_, c) => panic!("unexpected {c:?} in {line:?}"),
                }
            }
            rest = &inner[close + 1..];
        }
        let value = rest.strip_prefix(' ').expect("a space before the value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

#[test]
fn status_prints_prometheus_text_that_parses() {
    let vol = Volume::new("notify-prom");
    vol.sh("echo hello > /data/f");
    let none = unique("notify-prom-none");
    let dir = tempdir();
    let dest = dir.path().to_str().unwrap();
    run(&["save", &vol.name, "--to", dest, "-q"]).ok();
    let size = std::fs::metadata(only_archive(dir.path())).unwrap().len();
    let r = run(&[
        "status",
        dest,
        "--rpo",
        "1h",
        "--volume",
        &vol.name,
        "--volume",
        &none,
        "--format",
        "prometheus",
    ]);
    // The volume without a backup misses the RPO: exit 8, and the metrics are still printed.
    assert_eq!(r.code, 8, "{r}");
    let samples = parse_prometheus(&r.stdout_str());
    let get = |name: &str, volume: &str| {
        samples
            .iter()
            .find(|s| {
                s.name == format!("docker_volume_backup_{name}")
                    && s.labels.get("volume").map(String::as_str) == Some(volume)
            })
            .map(|s| s.value)
    };
    assert_eq!(get("rpo_met", &vol.name), Some(1.0));
    assert_eq!(get("rpo_met", &none), Some(0.0));
    assert_eq!(
        get("newest_backup_size_bytes", &vol.name),
        Some(size as f64)
    );
    assert_eq!(get("newest_backup_size_bytes", &none), None);
    let made = get("newest_backup_timestamp_seconds", &vol.name).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - made).abs() < 600.0, "made {made}, now {now}");
    // The save was made here: its duration was recorded, and only the saved volume has one.
    let took = get("newest_backup_duration_seconds", &vol.name);
    assert!(took.is_some_and(|t| t > 0.0 && t < 600.0), "{took:?}");
    assert_eq!(get("newest_backup_duration_seconds", &none), None);
    assert!(samples
        .iter()
        .filter(|s| s.name.ends_with("rpo_met"))
        .all(|s| s.labels.get("engine") == Some(&docker_label())));
    // The parser is strict: it rejects what node_exporter would.
    assert!(std::panic::catch_unwind(|| parse_prometheus("x{a=b} 1\n")).is_err());
}
