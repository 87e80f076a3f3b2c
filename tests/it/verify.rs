//! `verify` and `status` against the real engine: damaged archives located, differences from a
//! live volume listed, test restores that leave nothing behind, RPO exit codes.

use crate::harness::*;

fn saved(tag: &str, ext: &str) -> (Volume, tempfile::TempDir, std::path::PathBuf) {
    let src = Volume::new(tag);
    src.sh(
        "mkdir /data/d && echo keep > /data/d/keep && echo edit > /data/edit && \
         echo gone > /data/gone && head -c 3000000 /dev/urandom > /data/big && chmod 640 /data/edit",
    );
    let dir = tempdir();
    let file = dir.path().join(format!("a.{ext}"));
    run(&["save", &src.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    (src, dir, file)
}

#[test]
fn verify_finds_damage_and_says_where() {
    let (_src, dir, good) = saved("verify-damage", "tar.zst");
    let r = run(&["verify", good.to_str().unwrap()]).ok();
    assert!(
        r.stdout_str().contains("checksum matches the manifest"),
        "{}",
        r.stdout_str()
    );
    let bytes = std::fs::read(&good).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    let cases = [
        (
            "flipped.tar.zst",
            flipped,
            "the damage is between `./` and `./gone`",
        ),
        (
            "cut.tar.zst",
            bytes[..bytes.len() * 2 / 3].to_vec(),
            "truncated",
        ),
        (
            "magic.tar.zst",
            [b"\x00\x01\x02\x03".to_vec(), bytes[4..].to_vec()].concat(),
            "not a volume archive",
        ),
    ];
    for (name, data, needle) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, data).unwrap();
        run(&["verify", file.to_str().unwrap()]).fails_with(6, needle);
    }
    // A manifest that lies about the count: rewrite the trailer's entry count.
    let tar = zstd::decode_all(&bytes[..]).unwrap();
    let key = b"\"entries\":";
    let at = tar
        .windows(key.len())
        .rposition(|w| w == key)
        .expect("trailer");
    let mut lying = tar.clone();
    let digit = at + key.len();
    lying[digit] = if lying[digit] == b'9' {
        b'8'
    } else {
        lying[digit] + 1
    };
    let file = dir.path().join("lying.tar.zst");
    std::fs::write(&file, zstd::encode_all(&lying[..], 3).unwrap()).unwrap();
    run(&["verify", file.to_str().unwrap()]).fails_with(6, "manifest records");
}

#[test]
fn verify_against_lists_what_changed() {
    let (src, _dir, file) = saved("verify-against", "tar.gz");
    let f = file.to_str().unwrap();
    let r = run(&["verify", f, "--against", &src.name]).ok();
    assert!(
        r.stdout_str().contains("identical to"),
        "{}",
        r.stdout_str()
    );
    src.sh("echo changed > /data/edit && rm /data/gone && echo new > /data/new && chown 7:7 /data/d/keep");
    let r =
        run(&["verify", f, "--against", &src.name, "--format", "json"]).fails_with(7, "differs");
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let d = &v["differences"];
    assert_eq!(d["added"], serde_json::json!(["new"]));
    assert_eq!(d["removed"], serde_json::json!(["gone"]));
    let changed: Vec<String> = d["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c["path"].as_str().unwrap(), c["what"]))
        .collect();
    assert!(
        changed
            .iter()
            .any(|c| c.starts_with("edit ") && c.contains("content")),
        "{changed:?}"
    );
    assert!(
        changed
            .iter()
            .any(|c| c.starts_with("d/keep ") && c.contains("owner")),
        "{changed:?}"
    );
    let table = run(&["verify", f, "--against", &src.name]).fails_with(7, "differs");
    assert!(
        table.stdout_str().contains("removed  gone"),
        "{}",
        table.stdout_str()
    );
    assert_eq!(src.helpers_left(), "");
    run(&["verify", f, "--against", "dvbt-no-such-volume"]).fails_with(4, "no volume");
}

#[test]
fn restore_test_leaves_no_scratch_volume() {
    let (_src, dir, file) = saved("verify-restore-test", "tar.zst");
    let before = docker(&["volume", "ls", "-q"]);
    let r = run(&["verify", file.to_str().unwrap(), "--restore-test"]).ok();
    assert!(
        r.stdout_str().contains("identical to a test restore"),
        "{}",
        r.stdout_str()
    );
    // A damaged archive fails before any scratch volume exists; a seed archive restores too.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    run(&["verify", cut.to_str().unwrap(), "--restore-test"]).fails_with(6, "truncated");
    let tar = dir.path().join("plain.tar");
    let out = std::process::Command::new("tar")
        .args([
            "cf",
            tar.to_str().unwrap(),
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "src/archive",
        ])
        .status()
        .unwrap();
    assert!(out.success());
    run(&["verify", tar.to_str().unwrap(), "--restore-test"]).ok();
    // A test restore the engine refuses midway (a hard link to a file the archive lacks): the
    // verdict is a failure, and the scratch volume is removed all the same.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h, "./link", "./missing").unwrap();
    let dangling = dir.path().join("dangling.tar");
    std::fs::write(&dangling, b.into_inner().unwrap()).unwrap();
    run(&["verify", dangling.to_str().unwrap(), "--restore-test"])
        .fails_with(1, "test restore failed");
    let after = docker(&["volume", "ls", "-q"]);
    let leftover: Vec<&str> = after
        .lines()
        .filter(|v| v.starts_with("dvb-restore-test-") && !before.contains(v))
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
}

#[test]
fn status_exit_codes_follow_the_rpo() {
    let dir = tempdir();
    let fresh = Volume::new("status-fresh");
    let stale = Volume::new("status-stale");
    let never = Volume::new("status-never");
    // Encrypted archives count too (known by their names: status holds no keys).
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let out = dir.path().join("");
    run(&[
        "save",
        &fresh.name,
        "-o",
        out.to_str().unwrap(),
        "-q",
        "--encrypt-to",
        &recipient,
    ])
    .ok();
    assert!(
        files_in(dir.path())[0].ends_with(".tar.zst.age"),
        "{:?}",
        files_in(dir.path())
    );
    // An old seed-style archive named <volume>_<YYYYmmdd_HHMMSS>.tar.gz, from three days ago.
    let old = chrono::Local::now() - chrono::Duration::days(3);
    let name = format!("{}_{}.tar.gz", stale.name, old.format("%Y%m%d_%H%M%S"));
    seed_style_archive(&dir.path().join(&name));
    let d = dir.path().to_str().unwrap();
    let vols = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .flat_map(|n| ["--volume".to_string(), n.to_string()])
            .collect()
    };
    let args = |rpo: &str, names: &[&str]| -> Vec<String> {
        let mut a = vec![
            "status".to_string(),
            d.to_string(),
            "--rpo".into(),
            rpo.into(),
        ];
        a.extend(vols(names));
        a
    };
    let call = |a: Vec<String>| run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    call(args("1h", &[&fresh.name])).ok();
    call(args("1h", &[&fresh.name, &stale.name])).fails_with(8, &stale.name);
    call(args("4d", &[&fresh.name, &stale.name])).ok();
    call(args("4d", &[&never.name])).fails_with(8, &never.name);
    let r = call(
        [
            args("1h", &[&fresh.name, &stale.name]),
            vec!["--format".into(), "json".into()],
        ]
        .concat(),
    );
    let rows: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(rows[0]["meets_rpo"], true);
    assert_eq!(rows[1]["meets_rpo"], false);
    let age = rows[1]["age_seconds"].as_i64().unwrap();
    assert!((3 * 86400 - 60..3 * 86400 + 60).contains(&age), "{age}");
    // Without --volume every volume of the engine is reported: ours without backups miss it.
    let all = call(args("4d", &[]));
    assert_eq!(all.code, 8, "{}", all.stderr);
    assert!(all.stdout_str().contains(&never.name));
}
