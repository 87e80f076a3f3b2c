//! Remote endpoints and moving volumes between engines: a real sshd on loopback with keys made for
//! the test, `ssh://` contexts made by the real `docker context create` that point back at the
//! local engine, TLS contexts (verified and not) through the TLS terminator, and `migrate` /
//! `clone` between them, including a transfer cut midway, and a second engine on this machine.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// An sshd and a context `remote` pointing through it at the local engine.
fn remote() -> (Sshd, Contexts) {
    let sshd = Sshd::start();
    let ctx = Contexts::new();
    ctx.create("remote", &format!("host={}", sshd.url()));
    (sshd, ctx)
}

#[test]
fn ssh_endpoint_serves_every_command() {
    let (sshd, ctx) = remote();
    let src = Volume::new("ssh-src");
    src.sh("echo over-ssh > /data/f && mkdir /data/d && chown 7:8 /data/d");
    let dir = tempdir();
    let file = dir.path().join("s.tar.zst");
    let file = file.to_str().unwrap();
    let remote = |args: &[&str]| {
        let mut c = sshd.tool();
        c.args(["--config", ctx.cfg(), "--context", "remote"]);
        c.args(args).run()
    };
    let listed = remote(&["ls"]).ok().stdout_str();
    // Sizes too: the engine's /system/df, asked over the same kind of connection.
    let line = listed
        .lines()
        .find(|l| l.starts_with(&src.name))
        .unwrap_or_else(|| panic!("{listed}"));
    assert_ne!(line.split_whitespace().nth(2), Some("-"), "{listed}");
    let saved = remote(&["-D", "save", &src.name, "-o", file]).ok();
    // The docker CLI's arguments, with the user and port of the URL.
    assert!(
        saved.stderr.contains(&format!(
            "ssh -o ConnectTimeout=30 -T -l {} -p {} -- 127.0.0.1 docker system dial-stdio",
            sshd.user, sshd.port
        )),
        "{}",
        saved.stderr
    );
    let dst = Volume::named("ssh-dst");
    remote(&["restore", file, &dst.name]).ok();
    assert_eq!(dst.snapshot(), src.snapshot());
    let json = run(&["inspect", file, "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["manifest"]["head"]["source"]["context"], "remote");
    assert_eq!(v["manifest"]["head"]["source"]["endpoint"], sshd.url());
    // DOCKER_HOST and -H reach the same place.
    let mut c = sshd.tool();
    c.env("DOCKER_HOST", sshd.url());
    c.args(["verify", file, "--against", &dst.name]).run().ok();
    sshd.tool().args(["-H", &sshd.url(), "ls"]).run().ok();
    assert_eq!(src.helpers_left(), "");
    assert_eq!(dst.helpers_left(), "");
}

#[test]
fn ssh_failures_name_the_context_and_the_cause() {
    let sshd = Sshd::start();
    let ctx = Contexts::new();
    // Nothing listens on a port we just freed.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ctx.create(
        "nowhere",
        &format!("host=ssh://{}@127.0.0.1:{closed}", sshd.user),
    );
    ctx.create("remote", &format!("host={}", sshd.url()));
    let with = |context: &str| {
        let mut c = sshd.tool();
        c.args(["--config", ctx.cfg(), "--context", context]);
        c
    };
    let started = Instant::now();
    with("nowhere")
        .arg("ls")
        .run()
        .fails_with(3, "context `nowhere`")
        .fails_with(3, "ssh could not connect")
        .fails_with(3, "Connection refused")
        .fails_with(3, &format!("ssh -p {closed} {}@127.0.0.1", sshd.user));
    assert!(started.elapsed() < Duration::from_secs(10));

    sshd.use_key("id_unknown");
    with("remote")
        .arg("ls")
        .run()
        .fails_with(3, "context `remote`")
        .fails_with(3, "ssh authentication failed")
        .fails_with(3, "Permission denied (publickey")
        .fails_with(3, "ssh-agent");

    sshd.use_key("id_nodocker");
    with("remote")
        .arg("ls")
        .run()
        .fails_with(3, "context `remote`")
        .fails_with(3, "docker is not installed on the remote machine");

    sshd.use_key("id");
    let mut c = sshd.tool();
    c.args(["-H", &format!("{}/nonexistent/docker.sock", sshd.url())]);
    c.arg("ls")
        .run()
        .fails_with(3, "remote docker CLI cannot reach its daemon")
        .fails_with(3, "/nonexistent/docker.sock");
}

#[test]
fn tls_without_verification_connects() {
    let certs = tempdir();
    certificates(certs.path());
    let (_proxy, port) = start_proxy(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    let ctx = Contexts::new();
    // The proxy's certificate is signed by a CA this context does not know: only skipping the
    // verification lets it connect.
    ctx.create(
        "insecure",
        &format!(
            "host=tcp://127.0.0.1:{port},ca={},cert={},key={},skip-tls-verify=true",
            c("other-ca.pem"),
            c("cert.pem"),
            c("key.pem")
        ),
    );
    let v = Volume::new("tls-skip");
    let r = run(&["--config", ctx.cfg(), "--context", "insecure", "-D", "ls"]).ok();
    assert!(r.stdout_str().contains(&v.name));
    assert!(
        r.stderr.contains("TLS without verification"),
        "{}",
        r.stderr
    );
    // --tls without --tlsverify, with the files in DOCKER_CERT_PATH: the same.
    let host = format!("tcp://127.0.0.1:{port}");
    let r = tool()
        .env("DOCKER_CERT_PATH", certs.path())
        .args(["--tls", "-H", &host, "ls"])
        .run();
    assert!(r.ok().stdout_str().contains(&v.name));
}

/// A volume made with labels, filled by `script` (busybox, the volume at /data).
fn labelled_volume(tag: &str, script: &str) -> Volume {
    let v = Volume::named(tag);
    docker(&[
        "volume", "create", "--label", "app=shop", "--label", "tier=db", &v.name,
    ]);
    v.sh(script);
    v
}

/// The driver and labels, without the label that says which run created the volume.
fn labels_and_driver(v: &Volume) -> String {
    let text = docker(&[
        "volume",
        "inspect",
        "--format",
        "{{.Driver}} {{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}",
        &v.name,
    ]);
    without_run_label(&text)
}

/// Labels as `k=v k=v ...`, without the one that says which run created the volume.
fn without_run_label(labels: &str) -> String {
    labels
        .split(' ')
        .filter(|w| !w.starts_with("org.docker-volume-backup.run="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A TLS context (client certificates, verified) through the TLS terminator in front of the
/// engine socket; the proxy stops when the returned guard drops.
fn tls_context(ctx: &Contexts, name: &str) -> (TlsProxy, tempfile::TempDir) {
    let certs = tempdir();
    certificates(certs.path());
    let (proxy, port) = start_proxy(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    ctx.create(
        name,
        &format!(
            "host=tcp://127.0.0.1:{port},ca={},cert={},key={}",
            c("ca.pem"),
            c("cert.pem"),
            c("key.pem")
        ),
    );
    (proxy, certs)
}

#[test]
fn migrate_between_contexts_over_ssh_and_tls() {
    let (sshd, ctx) = remote();
    let (_proxy, _certs) = tls_context(&ctx, "secure");
    let migrate = |args: &[&str]| {
        let mut c = sshd.tool();
        c.args(["--config", ctx.cfg(), "migrate"]);
        c.args(args).run()
    };

    // default -> ssh: every awkward entry arrives, and the tool says it checked.
    let src = awkward_volume("mig-src");
    let dst = Volume::named("mig-dst");
    let r = migrate(&[&src.name, "--to", "remote", "--as", &dst.name]).ok();
    assert!(
        r.stderr.contains(&format!(
            "checksum ok; created volume {} on remote",
            dst.name
        )),
        "{}",
        r.stderr
    );
    let entries = src.sh("find /data | wc -l").trim().to_string();
    assert!(
        r.stderr.contains(&format!("verified: {entries} entries")),
        "{entries}: {}",
        r.stderr
    );
    assert_eq!(dst.snapshot(), src.snapshot());
    assert_eq!(src.helpers_left(), "");
    assert_eq!(dst.helpers_left(), "");

    // ssh -> TLS (--from): driver and labels come along.
    let labelled = labelled_volume("mig-lab", "echo v1 > /data/f && mkdir /data/d");
    let copy = Volume::named("mig-lab-copy");
    migrate(&[
        &labelled.name,
        "--from",
        "remote",
        "--to",
        "secure",
        "--as",
        &copy.name,
    ])
    .ok();
    assert_eq!(copy.snapshot(), labelled.snapshot());
    assert_eq!(labels_and_driver(&copy), labels_and_driver(&labelled));
    assert_eq!(labels_and_driver(&copy), "local app=shop tier=db \n");

    // A destination with data is refused without --force, before anything moves...
    labelled.sh("echo v2 > /data/f && rm -r /data/d && echo new > /data/n");
    migrate(&[&labelled.name, "--to", "secure", "--as", &copy.name])
        .fails_with(5, "is not empty")
        .fails_with(5, "--force");
    assert!(copy.snapshot().contains("/d|directory"));
    // ... and replaced exactly with it.
    let r = migrate(&[
        &labelled.name,
        "--to",
        "secure",
        "--as",
        &copy.name,
        "--force",
    ])
    .ok();
    assert!(
        r.stderr.contains("replaced the content of volume"),
        "{}",
        r.stderr
    );
    assert_eq!(copy.snapshot(), labelled.snapshot());

    // Both contexts reach this one engine: the same name would be the same volume.
    migrate(&[&src.name, "--to", "remote"]).fails_with(5, "reach the same engine");
    migrate(&[&src.name, &labelled.name, "--to", "remote", "--as", "x"])
        .fails_with(2, "--as names one volume");
    let missing = unique("missing");
    migrate(&[&missing, "--to", "remote", "--as", &unique("x")]).fails_with(4, &missing);
    migrate(&[
        &src.name,
        "--to",
        "nonexistent-context",
        "--as",
        &unique("x"),
    ])
    .fails_with(3, "unknown context `nonexistent-context`");
}

/// `migrate SRC --to remote --as DST`, started and left running, its output piped.
fn migrate_in_background(sshd: &Sshd, ctx: &Contexts, src: &Volume, dst: &Volume) -> Running {
    let mut c = sshd.tool();
    c.args([
        "--config",
        ctx.cfg(),
        "migrate",
        &src.name,
        "--to",
        "remote",
    ])
    .args(["--as", &dst.name])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c.start()
}

#[test]
fn cut_transfer_leaves_no_complete_looking_volume() {
    let (sshd, ctx) = remote();
    let src = Volume::new("cut-src");
    src.sh("dd if=/dev/zero of=/data/big bs=1M count=400 2>/dev/null && echo x > /data/small");
    let dst = Volume::named("cut-dst");
    let c = migrate_in_background(&sshd, &ctx, &src, &dst);
    let child = c;
    let pid = child.id().to_string();
    // Once the destination has its helper the upload is under way: cut every ssh the tool runs.
    let started = Instant::now();
    while dst.helpers_left().trim().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let ssh = Command::new("pgrep")
        .args(["-P", &pid, "-x", "ssh"])
        .output()
        .unwrap();
    let pids = String::from_utf8(ssh.stdout).unwrap();
    assert!(!pids.trim().is_empty(), "no ssh running under the tool");
    for p in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", p]).status();
    }
    let r = child.finish();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("migrating volume `{}`", src.name)),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("the ssh connection failed") && r.stderr.contains("killed by signal 9"),
        "{}",
        r.stderr
    );
    assert!(!dst.exists(), "the cut copy is still there:\n{}", r.stderr);
    assert_eq!(src.helpers_left(), "");
    assert_eq!(dst.helpers_left(), "");
    assert!(!r.stderr.contains("INCOMPLETE"), "{}", r.stderr);
}

#[test]
fn clone_copies_a_volume_inside_one_engine() {
    let src = awkward_volume("clone-src");
    let new = Volume::named("clone-new");
    let r = run(&["clone", &src.name, &new.name]).ok();
    assert!(
        r.stderr.contains("checksum ok; created volume"),
        "{}",
        r.stderr
    );
    assert_eq!(new.snapshot(), src.snapshot());
    assert_eq!(labels_and_driver(&new), labels_and_driver(&src));
    // A volume with data is never overwritten; a missing source is "not found".
    run(&["clone", &src.name, &new.name]).fails_with(5, "is not empty");
    let missing = unique("missing");
    run(&["clone", &missing, &unique("x")]).fails_with(4, &missing);
    run(&["clone", &src.name, &src.name]).fails_with(2, "itself");
    assert_eq!(src.helpers_left(), "");
    assert_eq!(new.helpers_left(), "");
}

#[test]
fn ctrl_c_during_a_migration_over_ssh_cleans_up_both_ends() {
    let (sshd, ctx) = remote();
    let src = Volume::new("int-src");
    src.sh("dd if=/dev/zero of=/data/big bs=1M count=400 2>/dev/null");
    let dst = Volume::named("int-dst");
    let c = migrate_in_background(&sshd, &ctx, &src, &dst);
    // ssh runs in a session of its own, so the signal reaches only the tool, and the cleanup
    // on the remote side still has its connection.
    let r = interrupt_after(c, || dst.exists());
    let r = r.fails_with(130, "interrupted");
    assert!(!dst.exists(), "{}", r.stderr);
    assert_eq!(src.helpers_left(), "");
    assert_eq!(dst.helpers_left(), "");
}

#[test]
fn migrate_a_compose_project_to_another_engine_over_ssh_with_stop() {
    let (sshd, ctx) = remote();
    let other = SecondEngine::start();
    // The other engine, through ssh and a socket path in the URL (the remote docker CLI gets
    // --host=unix://PATH).
    ctx.create(
        "other",
        &format!("host={}{}", sshd.url(), other.socket().display()),
    );
    let project = unique("proj").replace('-', "");
    let make = |key: &str, content: &str| {
        let v = compose_volume(&project, key, &[]);
        v.sh(content);
        v
    };
    let data = make("data", "echo rows > /data/table && mkdir /data/base");
    let logs = make("logs", "echo line > /data/log");
    let app = Container::create("app", &data);
    docker(&["start", &app.name]);

    let mut c = sshd.tool();
    c.args(["--config", ctx.cfg(), "migrate", "--project", &project])
        .args(["--to", "other", "--stop"]);
    let r = c.run().ok();
    assert!(
        r.stderr.contains(&format!("stopping {}", app.name)),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("restarted {}", app.name)),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.matches("checksum ok; created volume").count(),
        2,
        "{}",
        r.stderr
    );
    let running = docker(&["inspect", "--format", "{{.State.Running}}", &app.name]);
    assert_eq!(running.trim(), "true");

    // On the other engine: the same names and labels (compose adopts them), the same content,
    // checked by the tool itself against the source volumes.
    for v in [&data, &logs] {
        let inspect = other.docker(&[
            "volume",
            "inspect",
            "--format",
            "{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}",
            &v.name,
        ]);
        let inspect = inspect.ok();
        assert_eq!(
            without_run_label(&inspect.stdout_str()),
            docker(&[
                "volume",
                "inspect",
                "--format",
                "{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}",
                &v.name
            ])
        );
        let dir = tempdir();
        let file = dir.path().join("copy.tar");
        let file = file.to_str().unwrap();
        let host = format!("unix://{}", other.socket().display());
        run(&["-H", &host, "save", &v.name, "-o", file, "-q"]).ok();
        run(&["verify", file, "--against", &v.name]).ok();
        assert_eq!(v.helpers_left(), "");
    }
    // Once there, a second migration of the project is refused before anything moves.
    let mut c = sshd.tool();
    c.args([
        "--config",
        ctx.cfg(),
        "migrate",
        "--project",
        &project,
        "--to",
        "other",
    ]);
    c.run().fails_with(5, "is not empty");
}

/// The remote socket path of an `ssh://` host reaches the remote `docker` as one word: the
/// remote shell runs nothing in it.
#[test]
fn a_remote_socket_path_runs_nothing_in_the_remote_shell() {
    let sshd = Sshd::start();
    let pwned = format!("/tmp/dvbt-ssh-quoted-{}", std::process::id());
    let _ = std::fs::remove_file(&pwned);
    let host = format!("{}/run/no-such.sock;touch${{IFS}}{pwned}", sshd.url());
    let run = sshd.tool().args(["-H", &host, "ls"]).run();
    let ran = std::path::Path::new(&pwned).exists();
    let _ = std::fs::remove_file(&pwned);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        !ran,
        "the remote shell ran what the path held: {}",
        run.stderr
    );
    // A plain path still reaches the daemon.
    sshd.tool()
        .args(["-H", &format!("{}/var/run/docker.sock", sshd.url()), "ls"])
        .run()
        .ok();
}
