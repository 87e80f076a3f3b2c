//! An S3-compatible server on loopback: moto's server (PyPI), installed by
//! `scripts/s3-server.sh` and started per test on a free port, with boto3 to look inside it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{free_port, tempdir, tool, wait_for_port, Run, RunExt, Running};

/// moto_server from the test virtualenv (installed once per machine by the script).
fn moto_server() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-server.sh");
        let out = Command::new(script)
            .stderr(Stdio::inherit())
            .run()
            .expect_ok("scripts/s3-server.sh failed");
        PathBuf::from(out.stdout_str().trim())
    })
}

/// A moto server on loopback, stopped on drop.
pub struct S3Server {
    child: Running,
    pub endpoint: String,
    key_id: String,
    pub secret: String,
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
        let child = cmd.start();
        let mut server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            key_id: "testing".into(),
            secret: "testing-secret".into(),
            home: tempdir(),
        };
        assert!(
            wait_for_port(port, Duration::from_secs(60)),
            "the S3 server did not start"
        );
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
        Command::new(python)
            .args(["-c", &format!("{prelude}{code}")])
            .run()
            .expect_ok("python failed")
            .stdout_str()
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
        self.tool().args(args).run()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
