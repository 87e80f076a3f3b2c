//! S3 destinations against a real S3-compatible server on loopback: moto's server (PyPI),
//! installed by `scripts/s3-server.sh` and started per test on a free port. Saves to a directory
//! and a bucket at once, lists, restores, verifies and inspects from the URL, uploads in parts,
//! and fails loudly (missing bucket, wrong credentials, the server gone midway) leaving nothing
//! that `backups` would list as good.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::harness::*;

/// moto_server from the test virtualenv (installed once per machine by the script).
fn moto_server() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-server.sh");
        let out = Command::new(script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/s3-server.sh");
        assert!(out.status.success(), "scripts/s3-server.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the S3 server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A moto server on loopback, stopped on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    key_id: String,
    secret: String,
    /// A HOME without ~/.aws, so that nothing of the machine's user leaks into the tests.
    pub home: tempfile::TempDir,
}

impl S3Server {
    /// Without authentication (any key is accepted).
    pub fn start() -> S3Server {
        S3Server::launch(false, "")
    }

    /// With IAM authentication: a user and its key are made first; requests signed with
    /// anything else are refused, as real S3 does.
    pub fn start_with_auth() -> S3Server {
        S3Server::launch(true, "")
    }

    /// With authentication, and a key that may do anything but delete objects.
    pub fn start_denying_deletes() -> S3Server {
        S3Server::launch(
            true,
            r#", {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}"#,
        )
    }

    fn launch(auth: bool, extra_statements: &str) -> S3Server {
        let port = free_port();
        let mut cmd = Command::new(moto_server());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            // The first three requests (making the IAM user, its policy and its key) go
            // through unsigned; everything after must be signed with that key.
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        }
        let child = cmd.spawn().expect("start moto_server");
        let mut server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            key_id: "testing".into(),
            secret: "testing-secret".into(),
            home: tempdir(),
        };
        wait_for_port(port);
        if auth {
            let out = server.python(&format!(
                r#"
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1",
                   aws_access_key_id="x", aws_secret_access_key="x")
iam.create_user(UserName="dvb")
iam.put_user_policy(UserName="dvb", PolicyName="all", PolicyDocument=json.dumps(
    {{"Version": "2012-10-17",
     "Statement": [{{"Effect": "Allow", "Action": "*", "Resource": "*"}}{extra_statements}]}}))
k = iam.create_access_key(UserName="dvb")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
"#
            ));
            let mut words = out.split_whitespace();
            server.key_id = words.next().unwrap().to_string();
            server.secret = words.next().unwrap().to_string();
        }
        server
    }

    /// Runs Python with boto3 (from moto's virtualenv); `ep` is the endpoint and `s3` a
    /// client signed with the server's key. Returns stdout.
    #[track_caller]
    pub fn python(&self, code: &str) -> String {
        let python = moto_server().with_file_name("python");
        let prelude = format!(
            "import boto3, json, sys\nep = {:?}\n\
             s3 = boto3.client('s3', endpoint_url=ep, region_name='us-east-1', \
             aws_access_key_id={:?}, aws_secret_access_key={:?})\n",
            self.endpoint, self.key_id, self.secret
        );
        let out = Command::new(python)
            .args(["-c", &format!("{prelude}{code}")])
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn make_bucket(&self, name: &str) {
        self.python(&format!("s3.create_bucket(Bucket={name:?})"));
    }

    /// Keys in a bucket (everything, partial names included).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self.python(&format!(
            "r = s3.list_objects_v2(Bucket={bucket:?})\n\
             print('\\n'.join(o['Key'] for o in r.get('Contents', [])))"
        ));
        out.lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Multipart uploads begun and neither completed nor aborted.
    pub fn open_uploads(&self, bucket: &str) -> usize {
        self.python(&format!(
            "print(len(s3.list_multipart_uploads(Bucket={bucket:?}).get('Uploads', [])))"
        ))
        .trim()
        .parse()
        .unwrap()
    }

    /// The tool with this server's endpoint and key in the standard AWS variables.
    pub fn tool(&self) -> Command {
        self.tool_with(&self.endpoint, &self.secret)
    }

    pub fn tool_with(&self, endpoint: &str, secret: &str) -> Command {
        let mut c = tool();
        for var in ["AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"] {
            c.env_remove(var);
        }
        c.env("HOME", self.home.path())
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", endpoint);
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.tool()
            .args(args)
            .output()
            .expect("run the tool")
            .into()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback TCP proxy to `target` that cuts every connection and stops accepting once
/// `limit` bytes went upstream (the server "stops" in the middle of an upload), and with
/// `slow`, passes at most 64 KiB upstream every 20 ms (an upload that takes a while).
struct CuttingProxy {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl CuttingProxy {
    fn start(target: u16, limit: u64, slow: bool) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let flag = Arc::clone(&cut);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (flag_up, sent_up) = (Arc::clone(&flag), Arc::clone(&sent));
                std::thread::spawn(move || {
                    pump(client, upstream, Some((sent_up, limit, flag_up)), slow)
                });
                std::thread::spawn(move || pump(u2, c2, None, false));
            }
        });
        CuttingProxy { port, cut }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.cut.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    budget: Option<(Arc<AtomicU64>, u64, Arc<AtomicBool>)>,
    slow: bool,
) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some((_, _, cut)) = &budget {
            if cut.load(Ordering::SeqCst) {
                break;
            }
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((sent, limit, cut)) = &budget {
            if sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > *limit {
                cut.store(true, Ordering::SeqCst);
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if slow {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A volume with a few files and `mb` MB of incompressible data.
fn volume_with_data(tag: &str, mb: u32) -> Volume {
    let v = Volume::new(tag);
    v.sh(&format!(
        "mkdir -p /data/etc && echo hello > /data/etc/greeting && \
         head -c {}000000 /dev/urandom > /data/blob",
        mb
    ));
    v
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_slice(&run.stdout).expect("json on stdout")
}

#[test]
fn save_to_a_directory_and_a_bucket_then_read_from_the_url() {
    let s3 = S3Server::start();
    s3.make_bucket("team");
    let vol = volume_with_data("s3-two", 1);
    let dir = tempdir();
    let d = dir.path().to_str().unwrap();
    let saved = s3
        .run(&["save", &vol.name, "--to", d, "--to", "s3://team/laptop"])
        .ok();
    assert!(
        saved.stderr.contains("s3://team/laptop/"),
        "{}",
        saved.stderr
    );
    // The same name in both places; nothing else in either.
    let local = files_in(dir.path());
    assert_eq!(local.len(), 1, "{local:?}");
    assert_eq!(s3.keys("team"), [format!("laptop/{}", local[0])]);

    let listed = s3
        .run(&["backups", "s3://team/laptop", "--format", "json"])
        .ok();
    let rows = json(&listed);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["volume"], vol.name.as_str());
    assert_eq!(rows[0]["compression"], "zstd");
    assert_eq!(rows[0]["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(rows[0]["ours"], true);
    let url = rows[0]["location"].as_str().unwrap().to_string();
    assert_eq!(url, format!("s3://team/laptop/{}", local[0]));
    assert_eq!(
        rows[0]["size"].as_u64().unwrap(),
        std::fs::metadata(dir.path().join(&local[0])).unwrap().len()
    );
    let table = s3.run(&["backups", "s3://team/laptop"]).ok().stdout_str();
    assert!(
        table.contains(&vol.name) && table.contains("zstd"),
        "{table}"
    );
    // --volume filters.
    let other = s3
        .run(&[
            "backups",
            "s3://team/laptop",
            "--volume",
            "nope",
            "--format",
            "json",
        ])
        .ok();
    assert_eq!(json(&other).as_array().unwrap().len(), 0);

    // Straight from the URL: verify, inspect, restore, status.
    s3.run(&["verify", &url]).ok();
    let inspected = s3.run(&["inspect", &url, "--format", "json"]).ok();
    assert_eq!(
        json(&inspected)["manifest"]["head"]["volume"]["name"],
        vol.name.as_str()
    );
    let target = Volume::named("s3-restored");
    s3.run(&["restore", &url, &target.name]).ok();
    assert_eq!(target.snapshot(), vol.snapshot());
    s3.run(&["verify", &url, "--against", &target.name]).ok();
    s3.run(&[
        "status",
        "s3://team/laptop",
        "--rpo",
        "1h",
        "--volume",
        &vol.name,
    ])
    .ok();
    // A key that is not there is "not found".
    s3.run(&[
        "restore",
        "s3://team/laptop/nope_20260101_000000.tar.zst",
        &target.name,
    ])
    .fails_with(4, "not found");
}

#[test]
fn large_archives_are_uploaded_in_parts() {
    let s3 = S3Server::start();
    s3.make_bucket("big");
    let vol = volume_with_data("s3-multipart", 18);
    s3.run(&[
        "save",
        &vol.name,
        "--to",
        "s3://big/p",
        "--s3-part-size",
        "5MiB",
        "-q",
    ])
    .ok();
    let keys = s3.keys("big");
    assert_eq!(keys.len(), 1, "{keys:?}");
    // A multipart object's ETag ends in -<parts>.
    let etag = s3.python(&format!(
        "print(s3.head_object(Bucket='big', Key={:?})['ETag'])",
        keys[0]
    ));
    let parts: u32 = etag
        .trim()
        .trim_matches('"')
        .rsplit_once('-')
        .map(|(_, n)| n.parse().unwrap())
        .unwrap_or(1);
    assert!(parts >= 3, "expected a multipart upload, ETag {etag}");
    assert_eq!(s3.open_uploads("big"), 0);
    s3.run(&["verify", &format!("s3://big/{}", keys[0])]).ok();
}

#[test]
fn a_missing_bucket_fails_and_leaves_nothing_anywhere() {
    let s3 = S3Server::start();
    let vol = volume_with_data("s3-nobucket", 1);
    let dir = tempdir();
    let d = dir.path().to_str().unwrap();
    s3.tool()
        .args([
            "save",
            &vol.name,
            "--to",
            d,
            "--to",
            "s3://does-not-exist/x",
        ])
        .output()
        .map(Run::from)
        .unwrap()
        .fails_with(4, "NoSuchBucket");
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    s3.run(&["backups", "s3://does-not-exist"])
        .fails_with(4, "bucket does not exist");
}

#[test]
fn wrong_credentials_fail_clearly_without_the_secret() {
    let s3 = S3Server::start_with_auth();
    s3.make_bucket("locked");
    let vol = volume_with_data("s3-creds", 1);
    // The right key works.
    s3.run(&["save", &vol.name, "--to", "s3://locked", "-q"])
        .ok();
    let dir = tempdir();
    let d = dir.path().to_str().unwrap();
    let bad_secret = "not-the-secret-0123456789";
    let bad = |args: &[&str]| -> Run {
        s3.tool_with(&s3.endpoint, bad_secret)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let r = bad(&["save", &vol.name, "--to", d, "--to", "s3://locked"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("credentials"), "{}", r.stderr);
    assert!(!r.stderr.contains(bad_secret), "{}", r.stderr);
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    let r = bad(&["backups", "s3://locked"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("SignatureDoesNotMatch"), "{}", r.stderr);
    assert_eq!(s3.keys("locked").len(), 1);
}

#[test]
fn the_server_stopping_midway_leaves_no_partial_backup() {
    let s3 = S3Server::start();
    s3.make_bucket("flaky");
    let vol = volume_with_data("s3-cut", 16);
    let dir = tempdir();
    let d = dir.path().to_str().unwrap();
    let port: u16 = s3.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    // The connection dies after 7 MB: one part went through, the second is cut.
    let proxy = CuttingProxy::start(port, 7_000_000, false);
    let via_proxy = format!("http://127.0.0.1:{}", proxy.port);
    let r: Run = s3
        .tool_with(&via_proxy, &s3.secret)
        .args([
            "save",
            &vol.name,
            "--to",
            d,
            "--to",
            "s3://flaky/p",
            "--s3-part-size",
            "5MiB",
        ])
        .output()
        .unwrap()
        .into();
    assert_ne!(r.code, 0, "the save should fail: {}", r.stderr);
    assert!(r.stderr.contains("s3://flaky/p"), "{}", r.stderr);
    drop(proxy);
    // Nothing that looks like a backup, here or there.
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    assert_eq!(s3.keys("flaky"), Vec::<String>::new());
    let listed = s3
        .run(&["backups", "s3://flaky/p", "--format", "json"])
        .ok();
    assert_eq!(json(&listed).as_array().unwrap().len(), 0);
}

#[test]
fn ctrl_c_during_an_upload_aborts_it() {
    let s3 = S3Server::start();
    s3.make_bucket("slow");
    let vol = volume_with_data("s3-ctrlc", 16);
    let dir = tempdir();
    let d = dir.path().to_str().unwrap();
    let port: u16 = s3.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = CuttingProxy::start(port, u64::MAX, true);
    let via_proxy = format!("http://127.0.0.1:{}", proxy.port);
    let child = s3
        .tool_with(&via_proxy, &s3.secret)
        .args([
            "save",
            &vol.name,
            "--to",
            d,
            "--to",
            "s3://slow/p",
            "--s3-part-size",
            "5MiB",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the multipart upload exists (its first part is on its way).
    let r = interrupt_after(child, || s3.open_uploads("slow") > 0);
    r.fails_with(130, "interrupted");
    assert_eq!(
        s3.open_uploads("slow"),
        0,
        "the multipart upload was not aborted"
    );
    assert_eq!(s3.keys("slow"), Vec::<String>::new());
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    assert_eq!(vol.helpers_left(), "");
}
