//! TCP + TLS with client certificates: a TLS terminator on loopback in front of the engine
//! socket, a context made by the real `docker context create`, and a save and restore through it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::harness::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA.
pub fn certificates(dir: &Path) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for args in [
        "req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -subj /CN=test-ca -days 1",
        "req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj /CN=localhost",
        "x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 1 -extfile server.ext",
        "req -newkey rsa:2048 -nodes -keyout key.pem -out client.csr -subj /CN=client",
        "x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out cert.pem -days 1 -extfile client.ext",
        "req -x509 -newkey rsa:2048 -nodes -keyout other-key.pem -out other-ca.pem -subj /CN=other -days 1",
    ] {
        openssl(dir, &args.split(' ').collect::<Vec<_>>());
    }
}

/// The proxy process, killed on drop.
pub struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_proxy(dir: &Path) -> (Proxy, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls_proxy.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["ca.pem", "server-cert.pem", "server-key.pem"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the proxy prints its port");
    (Proxy(child), port)
}

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
    let made = Command::new("docker")
        .args([
            "--config",
            cfg,
            "context",
            "create",
            "tlsctx",
            "--docker",
            &docker_spec,
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let src = Volume::new("tls-src");
    src.sh("echo over-tls > /data/f && mkdir /data/d");
    let dir = tempdir();
    let file = dir.path().join("t.tar.zst");
    let with = |args: &[&str]| -> Run {
        tool()
            .args(["--config", cfg, "--context", "tlsctx"])
            .args(args)
            .output()
            .unwrap()
            .into()
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
    let ok: Run = tool()
        .args(base)
        .args(files("ca.pem"))
        .arg("ls")
        .output()
        .unwrap()
        .into();
    assert!(ok.ok().stdout_str().contains(&src.name));
    let bad: Run = tool()
        .args(base)
        .args(files("other-ca.pem"))
        .arg("ls")
        .output()
        .unwrap()
        .into();
    bad.fails_with(3, &host).fails_with(3, "UnknownIssuer");
}
