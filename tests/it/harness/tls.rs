//! TLS fixtures: a CA with server and client certificates (and an unrelated CA), and a TLS
//! terminator on loopback in front of the engine socket (tests/fixtures/tls_proxy.py).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{RunExt, Running};

fn openssl(dir: &Path, args: &[&str]) {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .run()
        .expect_ok("openssl failed");
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

/// The TLS terminator, killed on drop.
pub struct TlsProxy(Running);

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the TLS terminator with the certificates `certificates` made in `dir`; returns it
/// and its port.
pub fn start_proxy(dir: &Path) -> (TlsProxy, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls_proxy.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["ca.pem", "server-cert.pem", "server-key.pem"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .start();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the proxy prints its port");
    (TlsProxy(child), port)
}
