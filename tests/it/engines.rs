//! Many engines, one destination: the Docker Engine and a Podman service save a volume of the
//! same name into one directory; names keep them apart, `prune` keeps the newest of each,
//! `backups` and `status` show both, and `restore DEST VOLUME` takes this engine's backup.

use std::path::Path;

use crate::harness::*;

/// The one archive in `dir` whose name carries `label` and is not in `known`.
fn new_archive_of(dir: &Path, label: &str, known: &[String]) -> String {
    let found: Vec<String> = files_in(dir)
        .into_iter()
        .filter(|f| f.contains(label) && !known.contains(f))
        .collect();
    assert_eq!(found.len(), 1, "{found:?} in {:?}", files_in(dir));
    found[0].clone()
}

#[test]
fn two_engines_share_a_destination_without_pruning_each_other() {
    let podman = PodmanEngine::start();
    let on_podman = |args: &[&str]| tool().env("DOCKER_HOST", podman.host()).args(args).run();
    let docker_engine = docker_label();
    let podman_engine = engine_label(Some(&podman.host()), true);
    assert_ne!(docker_engine, podman_engine);
    let dir = tempdir();
    let d = dir.path().to_str().unwrap();

    // A volume name with `.` and `_`, on both engines.
    let vol = Volume::new("eng.v_1");
    let v = vol.name.as_str();
    podman
        .docker(&["volume", "create", v])
        .expect_ok("podman volume create");
    let fill_podman = |content: &str| {
        std::fs::write(podman.volume_dir(v).join("which"), format!("{content}\n")).unwrap();
    };

    // Each engine saves twice; the first save of each is renamed to an older stamp (the
    // catalog dates archives by their names), so no test waits for the clock.
    let mut known = Vec::new();
    let older = |label: &str, stamp: &str, known: &mut Vec<String>| {
        let made = new_archive_of(dir.path(), label, known);
        let renamed = format!("{v}_{stamp}Z_{label}.tar.zst");
        std::fs::rename(dir.path().join(&made), dir.path().join(&renamed)).unwrap();
        known.push(renamed);
    };
    vol.sh("echo docker-old > /data/which");
    run(&["save", v, "--to", d, "-q"]).ok();
    older(&docker_engine, "20200101_000000", &mut known);
    vol.sh("echo docker-new > /data/which");
    run(&["save", v, "--to", d, "-q"]).ok();
    let docker_new = new_archive_of(dir.path(), &docker_engine, &known);
    known.push(docker_new.clone());

    fill_podman("podman-old");
    on_podman(&["save", v, "--to", d, "-q"]).ok();
    older(&podman_engine, "20200102_000000", &mut known);
    fill_podman("podman-new");
    on_podman(&["save", v, "--to", d, "-q"]).ok();
    let podman_new = new_archive_of(dir.path(), &podman_engine, &known);
    known.push(podman_new.clone());

    // Names: <volume>_<YYYYmmdd_HHMMSS>Z_<engine label>, the time in UTC.
    for (name, label) in [(&docker_new, &docker_engine), (&podman_new, &podman_engine)] {
        let stamp = name
            .strip_prefix(&format!("{v}_"))
            .and_then(|s| s.strip_suffix(&format!("Z_{label}.tar.zst")))
            .unwrap_or_else(|| panic!("{name}"));
        let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S")
            .unwrap()
            .and_utc();
        let off = (chrono::Utc::now() - at).num_seconds().abs();
        assert!(off < 600, "{name} is not UTC: {off} s off");
    }

    // `backups` lists both engines' backups, with their engine.
    let listed = run(&["backups", d, "--format", "json"]).ok();
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout_str()).unwrap();
    let engines_of = |rows: &serde_json::Value| -> Vec<String> {
        let mut e: Vec<String> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["engine"].as_str().unwrap().to_string())
            .collect();
        e.sort();
        e
    };
    let mut both = vec![
        docker_engine.clone(),
        docker_engine.clone(),
        podman_engine.clone(),
        podman_engine.clone(),
    ];
    both.sort();
    assert_eq!(engines_of(&rows), both, "{listed}");
    let table = run(&["backups", d]).ok().stdout_str();
    assert!(table.starts_with("VOLUME"), "{table}");
    assert!(table.contains("ENGINE"), "{table}");
    assert!(
        table.contains(&docker_engine) && table.contains(&podman_engine),
        "{table}"
    );

    // `status` (run against Docker) has a row per engine, each on its own newest backup.
    let status = run(&[
        "status", d, "--rpo", "1h", "--volume", v, "--format", "json",
    ])
    .ok();
    let rows: serde_json::Value = serde_json::from_str(&status.stdout_str()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{status}");
    for (engine, newest) in [(&docker_engine, &docker_new), (&podman_engine, &podman_new)] {
        let row = rows
            .iter()
            .find(|r| r["engine"] == engine.as_str())
            .unwrap_or_else(|| panic!("no row of {engine}: {status}"));
        assert_eq!(row["volume"], v);
        assert_eq!(row["meets_rpo"], true, "{status}");
        assert!(
            row["newest"]["path"]
                .as_str()
                .unwrap()
                .ends_with(newest.as_str()),
            "{status}"
        );
    }
    let prom = run(&[
        "status",
        d,
        "--rpo",
        "1h",
        "--volume",
        v,
        "--format",
        "prometheus",
    ])
    .ok();
    for engine in [&docker_engine, &podman_engine] {
        assert!(
            prom.stdout_str().contains(&format!(
                "docker_volume_backup_rpo_met{{engine=\"{engine}\","
            )),
            "{prom}"
        );
    }

    // One keep-last rule: the newest of each engine stays, the older of each goes.
    run(&["prune", d, "--keep-last", "1"]).ok();
    let mut expected = vec![docker_new.clone(), podman_new.clone()];
    expected.sort();
    assert_eq!(files_in(dir.path()), expected);

    // On Docker, `restore DEST VOLUME` takes Docker's backup; --from-engine takes Podman's.
    let mine = Volume::named("eng-mine");
    let r = run(&["restore", d, v, "--as", &mine.name]).ok();
    assert!(r.stderr.contains(&docker_new), "{r}");
    assert_eq!(mine.sh("cat /data/which"), "docker-new\n");
    let theirs = Volume::named("eng-theirs");
    run(&[
        "restore",
        d,
        v,
        "--as",
        &theirs.name,
        "--from-engine",
        &podman_engine,
    ])
    .ok();
    assert_eq!(theirs.sh("cat /data/which"), "podman-new\n");

    // Only another engine's backups: refused, naming that engine and the flag.
    let elsewhere = tempdir();
    std::fs::copy(
        dir.path().join(&podman_new),
        elsewhere.path().join(&podman_new),
    )
    .unwrap();
    let refused = Volume::named("eng-refused");
    let r = run(&[
        "restore",
        elsewhere.path().to_str().unwrap(),
        v,
        "--as",
        &refused.name,
    ])
    .fails_with(4, &podman_engine);
    assert!(r.stderr.contains("--from-engine"), "{r}");
    assert!(!refused.exists());
    // A label with no backups is refused, naming the engines there are.
    run(&[
        "restore",
        d,
        v,
        "--as",
        &refused.name,
        "--from-engine",
        "nohost-00000000",
    ])
    .fails_with(4, &docker_engine);
    assert!(!refused.exists());
}
