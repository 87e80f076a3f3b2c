//! TCP + TLS with client certificates: a TLS terminator on loopback in front of the engine
//! socket, a context made by the real `docker context create`, and a save and restore through it.

use crate::harness::*;

#[test]
fn tls_context_with_client_certificates() {
    let certs = tempdir();
    certificates(certs.path());
    let (_proxy, port) = start_proxy(certs.path());
    let config = tempdir();
    let cfg = config.path().to_str().unwrap();
    let c = |f: &str| certs.path().join(f).display().to_string();
    let docker_spec = format!(
        "host=tcp://127.0.0.1:{port},ca={},cert={},key={}",
        c("ca.pem"),
        c("cert.pem"),
        c("key.pem")
    );
    docker(&[
        "--config",
        cfg,
        "context",
        "create",
        "tlsctx",
        "--docker",
        &docker_spec,
    ]);

    let src = Volume::new("tls-src");
    src.sh("echo over-tls > /data/f && mkdir /data/d");
    let dir = tempdir();
    let file = dir.path().join("t.tar.zst");
    let with = |args: &[&str]| -> Run {
        tool()
            .args(["--config", cfg, "--context", "tlsctx"])
            .args(args)
            .run()
    };
    let r = with(&["-D", "save", &src.name, "-o", file.to_str().unwrap()]).ok();
    assert!(
        r.stderr.contains(&format!("tcp://127.0.0.1:{port}, TLS")),
        "{}",
        r.stderr
    );
    let dst = Volume::named("tls-dst");
    with(&["restore", file.to_str().unwrap(), &dst.name, "-q"]).ok();
    assert_eq!(dst.snapshot(), src.snapshot());
    let json = run(&["inspect", file.to_str().unwrap(), "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["manifest"]["head"]["source"]["context"], "tlsctx");

    // The default context with --tlsverify and explicit files; then a CA that did not sign it.
    let host = format!("tcp://127.0.0.1:{port}");
    let base = ["--tlsverify", "-H", host.as_str()];
    let files = |ca: &str| {
        vec![
            "--tlscacert".to_string(),
            c(ca),
            "--tlscert".into(),
            c("cert.pem"),
            "--tlskey".into(),
            c("key.pem"),
        ]
    };
    let ok = tool().args(base).args(files("ca.pem")).arg("ls").run();
    assert!(ok.ok().stdout_str().contains(&src.name));
    let bad = tool()
        .args(base)
        .args(files("other-ca.pem"))
        .arg("ls")
        .run();
    bad.fails_with(3, &host).fails_with(3, "UnknownIssuer");
}
