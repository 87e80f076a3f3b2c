//! Compose projects and volumes in use: `save --stop/--pause`, the stop-during-backup label,
//! `save --all/--project/--filter`, and `compose-export`/`compose-import` with the real compose
//! tool and containers that keep writing.

use std::io::Read;
use std::process::Stdio;

use crate::harness::*;

fn started_at(c: &Container) -> String {
    container_field(&c.name, "{{.State.StartedAt}}")
}

#[test]
fn save_stop_restarts_after_success_and_after_failure() {
    let vol = Volume::new("stop");
    vol.sh("head -c 30000000 /dev/urandom > /data/big");
    let busy = writer("stop-w", &vol, &[]);
    let dir = tempdir();
    let before = started_at(&busy);

    // Success: stopped while saved, started again.
    let r = run(&[
        "save",
        &vol.name,
        "--stop",
        "-o",
        dir.path().to_str().unwrap(),
    ])
    .ok();
    assert!(r.stderr.contains("stopping"), "{}", r.stderr);
    assert!(r.stderr.contains("restarted"), "{}", r.stderr);
    assert_running(&busy);
    let after_ok = started_at(&busy);
    assert_ne!(before, after_ok, "the container was stopped and started");
    // Stopped for the save: the log in the archive is complete lines only.
    let archive = only_archive(dir.path());
    let restored = Volume::named("stop-restored");
    run(&["restore", archive.to_str().unwrap(), &restored.name]).ok();
    let log = restored.sh("cat /data/log");
    let numbers: Vec<u64> = log.lines().map(|l| l.parse().unwrap()).collect();
    assert!(!numbers.is_empty());
    assert!(
        numbers.iter().enumerate().all(|(i, n)| *n == i as u64 + 1),
        "a consistent log"
    );

    // Failure midway: the reader of `-o -` goes away after a few bytes.
    let mut child = tool()
        .args(["save", &vol.name, "--stop", "-o", "-", "--level", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .start();
    let mut first = [0u8; 65536];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let r = child.finish();
    assert_ne!(r.code, 0, "a broken pipe fails the save: {}", r.stderr);
    assert!(r.stderr.contains("restarted"), "{}", r.stderr);
    assert_running(&busy);
    assert_ne!(started_at(&busy), after_ok, "stopped and started again");
    assert_eq!(vol.helpers_left(), "");
}

#[test]
fn labelled_containers_stop_for_any_save_and_pause_freezes() {
    let vol = Volume::new("label");
    let labelled = writer(
        "label-w",
        &vol,
        &["docker-volume-backup.stop-during-backup=true"],
    );
    let other_vol = Volume::new("label-other");
    let plain = writer("plain-w", &other_vol, &[]);
    let (l0, p0) = (started_at(&labelled), started_at(&plain));
    let dir = tempdir();
    let out = dir.path().to_str().unwrap().to_string() + "/";
    // No --stop: only the labelled container is stopped.
    let r = run(&["save", &vol.name, &other_vol.name, "-o", &out]).ok();
    assert!(r.stderr.contains("stopping"), "{}", r.stderr);
    assert_ne!(started_at(&labelled), l0, "labelled container restarted");
    assert_eq!(started_at(&plain), p0, "the other container was left alone");
    assert_running(&labelled);
    assert_running(&plain);
    // Two volumes: a summary table.
    assert!(r.stderr.contains("VOLUME"), "{}", r.stderr);
    assert!(r.stderr.contains("2 volumes"), "{}", r.stderr);

    // --pause: frozen, not restarted.
    let l1 = started_at(&labelled);
    let dir = tempdir();
    let r = run(&[
        "save",
        &vol.name,
        "--pause",
        "-o",
        dir.path().to_str().unwrap(),
    ])
    .ok();
    assert!(r.stderr.contains("pausing"), "{}", r.stderr);
    assert!(r.stderr.contains("unpaused"), "{}", r.stderr);
    assert_eq!(started_at(&labelled), l1, "paused, not restarted");
    assert_running(&labelled);
}

#[test]
fn save_many_by_project_and_filter() {
    let project = unique("proj").replace('-', "");
    let label = format!("com.docker.compose.project={project}");
    let mk = |key: &str| {
        let v = Volume::named(key);
        docker(&[
            "volume",
            "create",
            "--label",
            &label,
            "--label",
            "dvbt.sel=1",
            &v.name,
        ]);
        v.sh(&format!("echo {key} > /data/f"));
        v
    };
    let (a, b) = (mk("sel-a"), mk("sel-b"));
    let dir = tempdir();
    let out = dir.path().to_str().unwrap().to_string() + "/";
    let r = run(&["save", "--project", &project, "-o", &out]).ok();
    assert!(r.stderr.contains("2 volumes"), "{}", r.stderr);
    let files = files_in(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().any(|f| f.starts_with(&format!("{}_", a.name))));
    assert!(files.iter().any(|f| f.starts_with(&format!("{}_", b.name))));

    // Filters combine as the engine's do.
    let dir = tempdir();
    let out = dir.path().to_str().unwrap().to_string() + "/";
    let name_filter = format!("name={}", a.name);
    run(&[
        "save",
        "--filter",
        &format!("label={label}"),
        "--filter",
        &name_filter,
        "-o",
        &out,
    ])
    .ok();
    let files = files_in(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(&a.name));

    // Several volumes cannot go to stdout; a selection of none is "not found".
    run(&["save", "--project", &project, "-o", "-"]).fails_with(2, "single volume");
    run(&["save", "--project", "dvbt-no-such-project"]).fails_with(4, "has no volumes");
    run(&["save", "--filter", "nonsense"]).fails_with(2, "NAME=VALUE");
    run(&["save", "x", "--all"]).fails_with(2, "cannot be used with");
}

/// Two services that keep writing: `db` (a counter log in `data`, a file in the external
/// volume) and `web`, which depends on `db`, in `uploads`.
fn writers_yaml(external: &str) -> String {
    let image = busybox();
    // `$` is compose's interpolation: `$$` is a literal one.
    let writer = WRITER.replace('$', "$$");
    format!(
        r#"version: "3.7"
services:
  db:
    image: {image}
    network_mode: none
    command: ["sh", "-c", "{writer}"]
    volumes:
      - data:/data
      - ext:/ext
  web:
    image: {image}
    network_mode: none
    depends_on: [db]
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do date >> /u/log; sleep 0.1; done"]
    volumes:
      - uploads:/u
volumes:
  data:
  uploads:
  ext:
    external: true
    name: {external}
"#
    )
}

/// The counter log of a volume: consecutive from 1, as a consistent copy must be.
#[track_caller]
fn counter_log(v: &Volume) -> Vec<u64> {
    let log = v.sh("cat /data/log");
    let numbers: Vec<u64> = log.lines().map(|l| l.parse().unwrap()).collect();
    assert!(
        numbers.iter().enumerate().all(|(i, n)| *n == i as u64 + 1),
        "a consistent counter log in {}",
        v.name
    );
    numbers
}

#[test]
fn export_down_import_under_another_project_and_up() {
    let ext = Volume::new("ext");
    ext.sh("echo shared > /data/shared.txt");
    let mut p = Project::new("cx", &writers_yaml(&ext.name));
    // Guards for the volumes compose makes, so they go even if compose cannot take them down.
    let data = Volume {
        name: format!("{}_data", p.name),
    };
    p.compose(&p.name, &["up", "-d"]).ok();
    data.sh(
        "mkdir -p /data/static && for i in $(seq 1 200); do echo $i > /data/static/f$i; done \
         && head -c 2000000 /dev/urandom > /data/static/big",
    );
    std::thread::sleep(std::time::Duration::from_millis(500));

    // Export from the project's directory: the project is found by its directory name.
    let out = tempdir();
    let r = run_in(
        &p.path(),
        &[
            "compose-export",
            "-o",
            &format!("{}/", out.path().display()),
        ],
    )
    .ok();
    assert!(
        r.stderr.contains(&format!("project {}: 3 volumes", p.name)),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("stopping web, db"),
        "dependents first: {}",
        r.stderr
    );
    assert!(r.stderr.contains("restarted db"), "{}", r.stderr);
    assert_eq!(Project::running(&p.name), 2, "both services run again");
    let bundle = only_archive(out.path());
    let file_name = bundle.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        file_name.starts_with(&format!("{}_", p.name)) && file_name.ends_with(".compose.tar"),
        "{file_name}"
    );

    // The source as it is now (the services wrote on after the export), then gone.
    p.compose(&p.name, &["stop", "-t", "2"]).ok();
    let static_before = data.sh("cd /data/static && md5sum *");
    let log_after = counter_log(&data);
    p.compose(&p.name, &["down", "-v"]).ok();
    docker(&["volume", "rm", &ext.name]);
    assert!(!data.exists());

    // Import under another project, from stdin.
    let new = format!("{}-new", p.name);
    p.also.push(new.clone());
    let new_data = Volume {
        name: format!("{new}_data"),
    };
    let _new_uploads = Volume {
        name: format!("{new}_uploads"),
    };
    let r = tool()
        .args(["compose-import", "-", "-p", &new])
        .stdin(std::fs::File::open(&bundle).unwrap())
        .run();
    let r = r.ok();
    assert!(
        r.stderr
            .contains(&format!("create volume {new}_data (key data")),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains(&format!("create volume {} (key ext, external", ext.name)));
    let labels = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{json .Labels}}",
        &new_data.name,
    ]);
    assert!(
        labels.contains(&format!("\"com.docker.compose.project\":\"{new}\"")),
        "{labels}"
    );
    assert!(
        labels.contains("\"com.docker.compose.volume\":\"data\""),
        "{labels}"
    );
    assert!(
        labels.contains("\"com.docker.compose.version\""),
        "{labels}"
    );

    // The data: the fixed part equal, the log a consistent prefix of what the source had.
    let static_after = new_data.sh("cd /data/static && md5sum *");
    assert!(static_after.contains("f200"));
    assert_eq!(static_after, static_before);
    let imported = counter_log(&new_data);
    assert!(!imported.is_empty() && imported.len() <= log_after.len());
    assert_eq!(ext.sh("cat /data/shared.txt"), "shared\n");

    // A second import is refused: the volumes are not empty now.
    run(&["compose-import", bundle.to_str().unwrap(), "-p", &new]).fails_with(5, "not empty");

    // compose adopts the volumes without a word.
    let up = p.compose(&new, &["up", "-d"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert!(!up.stderr.contains("already exists"), "{}", up.stderr);
    assert!(
        !up.stderr.to_lowercase().contains("warning"),
        "{}",
        up.stderr
    );
    assert_eq!(Project::running(&new), 2);
    p.compose(&new, &["down", "-v", "-t", "1"]).ok();
}

#[test]
fn failed_or_interrupted_export_leaves_every_service_running() {
    let ext = Volume::new("fx-ext");
    let p = Project::new("fx", &writers_yaml(&ext.name));
    let data = Volume {
        name: format!("{}_data", p.name),
    };
    p.compose(&p.name, &["up", "-d"]).ok();
    // Incompressible data keeps the export busy long enough to fail or interrupt it midway.
    data.sh("head -c 60000000 /dev/urandom > /data/big");
    assert_eq!(Project::running(&p.name), 2);

    // The reader of `-o -` goes away midway: the export fails, the services run again.
    let mut child = tool()
        .current_dir(p.path())
        .args(["compose-export", "-o", "-", "--level", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .start();
    let mut first = vec![0u8; 1 << 20];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(Project::running(&p.name), 0, "stopped while exported");
    drop(child.stdout.take());
    let r = child.finish();
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("restarted"), "{}", r.stderr);
    assert_eq!(Project::running(&p.name), 2, "both services run again");
    assert_eq!(data.helpers_left(), "");

    // Ctrl-C while the project is stopped: restarted, no bundle left.
    let out = tempdir();
    let child = tool()
        .current_dir(p.path())
        .args([
            "compose-export",
            "-o",
            &format!("{}/", out.path().display()),
        ])
        .args(["--level", "19"])
        .stderr(Stdio::piped())
        .start();
    let name = p.name.clone();
    let data_name = data.name.clone();
    let r = interrupt_after(child, || {
        Project::running(&name) == 0 && !helpers_of(&data_name).is_empty()
    });
    let r = r.fails_with(130, "interrupted");
    assert!(r.stderr.contains("restarted"), "{}", r.stderr);
    assert_eq!(Project::running(&p.name), 2, "both services run again");
    assert!(
        files_in(out.path()).is_empty(),
        "{:?}",
        files_in(out.path())
    );
    assert_eq!(data.helpers_left(), "");
}

#[test]
fn split_directories_and_a_pipe_between_engines() {
    let project = unique("sp");
    let mk = |key: &str| {
        let v = compose_volume(&project, key, &["com.docker.compose.config-hash=0123"]);
        v.sh(&format!(
            "echo {key} > /data/f && mkdir /data/d && echo x > /data/d/y"
        ));
        v
    };
    let (a, b) = (mk("a"), mk("b"));
    let empty = tempdir();

    // --split: one archive per volume, named as the seed names them, and the manifest.
    let split = tempdir();
    let dir = split.path().join("migration");
    let to = dir.to_str().unwrap();
    let args = [
        "compose-export",
        "-p",
        &project,
        "--split",
        to,
        "--compression",
        "gzip",
    ];
    run_in(empty.path(), &args).ok();
    assert_eq!(
        files_in(&dir),
        vec![
            format!("{project}.compose.json"),
            format!("{}.tar.gz", a.name),
            format!("{}.tar.gz", b.name)
        ]
    );
    // The seed's recipe (`tar xzf`) reads them.
    let listing = std::process::Command::new("tar")
        .arg("tzf")
        .arg(dir.join(format!("{}.tar.gz", a.name)))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("./d/y"));

    let q = unique("sq");
    let (qa, _qb) = (
        Volume {
            name: format!("{q}_a"),
        },
        Volume {
            name: format!("{q}_b"),
        },
    );
    run(&["compose-import", dir.to_str().unwrap(), "-p", &q]).ok();
    assert_eq!(
        qa.snapshot().replace(&qa.name, ""),
        a.snapshot().replace(&a.name, "")
    );
    let labels = docker(&["volume", "inspect", "-f", "{{json .Labels}}", &qa.name]);
    assert!(
        labels.contains(&format!("\"com.docker.compose.project\":\"{q}\"")),
        "{labels}"
    );
    assert!(
        !labels.contains("config-hash"),
        "no old config hash: {labels}"
    );

    // `compose-export -o - | docker -H ... compose-import -`: a pipe into another endpoint.
    let r_name = unique("sr");
    let (ra, rb) = (
        Volume {
            name: format!("{r_name}_a"),
        },
        Volume {
            name: format!("{r_name}_b"),
        },
    );
    let mut export = tool()
        .current_dir(empty.path())
        .args(["compose-export", "-p", &project, "-o", "-", "--no-stop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .start();
    let import = tool()
        .args([
            "-H",
            "unix:///var/run/docker.sock",
            "compose-import",
            "-",
            "-p",
            &r_name,
        ])
        .stdin(export.stdout.take().unwrap())
        .run();
    let exported = export.finish();
    exported.ok();
    let import = import.ok();
    assert!(
        import.stderr.contains("checksum verified"),
        "{}",
        import.stderr
    );
    assert_eq!(ra.sh("cat /data/f"), "a\n");
    assert_eq!(rb.sh("cat /data/d/y"), "x\n");
}

#[test]
fn import_refuses_foreign_and_truncated_bundles() {
    let project = unique("bad");
    let v = Volume {
        name: format!("{project}_v"),
    };
    let label = format!("com.docker.compose.project={project}");
    docker(&["volume", "create", "--label", &label, &v.name]);
    v.sh("head -c 9000000 /dev/urandom > /data/big");
    let dir = tempdir();
    let bundle = dir.path().join("b.compose.tar");
    let empty = tempdir();
    let args = [
        "compose-export",
        "-p",
        &project,
        "-o",
        bundle.to_str().unwrap(),
    ];
    run_in(empty.path(), &args).ok();

    // A plain volume archive is not a bundle.
    let plain = dir.path().join("plain.tar.zst");
    run(&["save", &v.name, "-o", plain.to_str().unwrap()]).ok();
    run(&["compose-import", plain.to_str().unwrap()]).fails_with(6, "not a compose bundle");

    // Cut in the middle of the volume's parts: refused, and the volume it made is gone again.
    let bytes = std::fs::read(&bundle).unwrap();
    let cut = dir.path().join("cut.compose.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let new = unique("badnew");
    let target = Volume {
        name: format!("{new}_v"),
    };
    run(&["compose-import", cut.to_str().unwrap(), "-p", &new]).fails_with(6, "truncated");
    assert!(!target.exists(), "the half-imported volume is removed");
    assert_eq!(target.helpers_left(), "");
    run(&[
        "compose-import",
        bundle.to_str().unwrap(),
        "-p",
        "Not_Valid",
    ])
    .fails_with(2, "invalid project name");
}
