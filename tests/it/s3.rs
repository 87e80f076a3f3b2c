//! S3 destinations against a real S3-compatible server on loopback (the harness's moto server,
//! started per test on a free port). Saves to a directory and a bucket at once, lists, restores,
//! verifies and inspects from the URL, uploads in parts, and fails loudly (missing bucket, wrong
//! credentials, the server gone midway) leaving nothing that `backups` would list as good.

use std::process::Stdio;

use crate::harness::*;

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
        .run()
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
    let bad = |args: &[&str]| -> Run { s3.tool_with(&s3.endpoint, bad_secret).args(args).run() };
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
    let r = s3
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
        .run();
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
        .start();
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
