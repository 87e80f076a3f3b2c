//! Encryption with age: round trips with identities, ssh keys and passphrases; nothing of the
//! volume in the clear; key problems refused before any volume is created; damage is exit 6.

use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;

use crate::harness::*;

const MARKER: &str = "PLAINTEXT-MARKER-4f1c9e";

/// A fresh age identity written to `dir/name` (as `age-keygen` writes it); returns the file and
/// the public key.
fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!(
            "# created: in a test\n# public key: {public}\n{}\n",
            id.to_string().expose_secret()
        ),
    )
    .unwrap();
    (file, public)
}

fn marked_volume(tag: &str) -> Volume {
    let v = Volume::new(tag);
    v.sh(&format!(
        "echo {MARKER} > /data/secret.txt && mkdir /data/sub && \
         head -c 200000 /dev/urandom > /data/sub/random.bin && chmod 0640 /data/secret.txt"
    ));
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Runs the tool in a new session, without a controlling terminal (so a prompt cannot hang the
/// tests when they run in a terminal).
fn no_tty(args: &[&str]) -> Run {
    std::process::Command::new("setsid")
        .arg("-w")
        .arg(BIN)
        .args(args)
        .stdin(std::process::Stdio::null())
        .run()
}

#[test]
fn encrypt_to_recipients_round_trip_and_nothing_in_the_clear() {
    let src = marked_volume("enc-src");
    let dir = tempdir();
    let (id_a, pub_a) = identity(dir.path(), "a.key");
    let (id_b, pub_b) = identity(dir.path(), "b.key");
    let recipients = dir.path().join("recipients.txt");
    std::fs::write(&recipients, format!("# the backup team\n\n{pub_b}\n")).unwrap();
    // Uncompressed, so that without encryption the marker and the name would be in the file.
    let file = dir.path().join("x.tar.age");
    run(&[
        "save",
        &src.name,
        "-o",
        s(&file),
        "--compression",
        "none",
        "--encrypt-to",
        &pub_a,
        "--encrypt-to-file",
        s(&recipients),
        "-q",
    ])
    .ok();
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!contains(&bytes, MARKER), "the data is in the clear");
    assert!(
        !contains(&bytes, &src.name),
        "the volume name is in the clear"
    );
    assert!(
        !contains(&bytes, "docker-volume-backup"),
        "the manifest is in the clear"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Either identity opens it.
    for id in [&id_a, &id_b] {
        let dst = Volume::named("enc-dst");
        run(&["restore", s(&file), &dst.name, "--identity", s(id), "-q"]).ok();
        assert_eq!(dst.snapshot(), src.snapshot());
        assert_eq!(dst.helpers_left(), "");
    }
    // The default name says it is encrypted.
    run_in(dir.path(), &["save", &src.name, "-r", &pub_a, "-q"]).ok();
    let default = only_archive(&dir.path().join("backups"));
    assert!(
        s(&default).ends_with(".tar.zst.age"),
        "{}",
        default.display()
    );
}

#[test]
fn encrypted_archive_without_a_key_or_with_a_wrong_one_creates_nothing() {
    let src = marked_volume("enc-keys");
    let dir = tempdir();
    let (_, public) = identity(dir.path(), "right.key");
    let (wrong, _) = identity(dir.path(), "wrong.key");
    let file = dir.path().join("x.tar.zst.age");
    run(&["save", &src.name, "-o", s(&file), "-r", &public, "-q"]).ok();

    let target = Volume::named("enc-nokey");
    run(&["restore", s(&file), &target.name])
        .fails_with(9, "encrypted")
        .fails_with(9, "give --identity or --passphrase-file");
    assert!(!target.exists(), "no volume without a key");
    run(&["restore", s(&file), &target.name, "--identity", s(&wrong)])
        .fails_with(9, "none of the identities given can decrypt it");
    assert!(!target.exists(), "no volume with a wrong key");
    // Restoring under the manifest's name fails the same way: the name is inside.
    run(&["restore", s(&file), "--identity", s(&wrong)]).fails_with(9, "cannot decrypt");
    // A passphrase is no key for an archive encrypted to recipients.
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse\n").unwrap();
    run(&[
        "restore",
        s(&file),
        &target.name,
        "--passphrase-file",
        s(&pass),
    ])
    .fails_with(9, "give --identity");
    assert!(!target.exists());
    // An existing, non-empty target is left alone too.
    let kept = Volume::new("enc-kept");
    kept.sh("echo mine > /data/mine");
    let before = kept.snapshot();
    run(&["restore", "--force", s(&file), &kept.name, "-i", s(&wrong)])
        .fails_with(9, "cannot decrypt");
    assert_eq!(kept.snapshot(), before);
    run(&["inspect", s(&file)]).fails_with(9, "give --identity");
    // A plain archive needs no key, and a key given anyway does no harm.
    let plain = dir.path().join("plain.tar.zst");
    run(&["save", &src.name, "-o", s(&plain), "-q"]).ok();
    run(&["inspect", s(&plain), "-i", s(&wrong)]).ok();
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", "name=dvb-scratch"]),
        ""
    );
}

#[test]
fn passphrase_file_round_trip_and_wrong_passphrase() {
    let src = marked_volume("enc-pass");
    let dir = tempdir();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let file = dir.path().join("x.tar.gz.age");
    let saved = run(&[
        "save",
        &src.name,
        "-o",
        s(&file),
        "--passphrase-file",
        s(&pass),
    ])
    .ok();
    assert!(!saved.stderr.contains("correct horse"));
    let bytes = std::fs::read(&file).unwrap();
    assert!(contains(&bytes, "-> scrypt "), "a passphrase stanza");
    assert!(!contains(&bytes, "correct horse"));

    let dst = Volume::named("enc-pass-dst");
    run(&[
        "restore",
        s(&file),
        &dst.name,
        "--passphrase-file",
        s(&pass),
        "-q",
    ])
    .ok();
    assert_eq!(dst.snapshot(), src.snapshot());

    let bad = dir.path().join("bad");
    std::fs::write(&bad, "incorrect horse").unwrap();
    let other = Volume::named("enc-pass-bad");
    let failed = run(&[
        "restore",
        s(&file),
        &other.name,
        "--passphrase-file",
        s(&bad),
    ])
    .fails_with(9, "wrong passphrase");
    assert!(
        !failed.stderr.contains("incorrect horse"),
        "the passphrase is never shown"
    );
    assert!(!other.exists());
    // With no terminal, --passphrase cannot ask: a clear error, not a hang.
    no_tty(&["restore", s(&file), &other.name, "--passphrase"]).fails_with(9, "--passphrase-file");
    assert!(!other.exists());
    // An identity is no key for a passphrase archive.
    let (id, _) = identity(dir.path(), "id.key");
    run(&["inspect", s(&file), "-i", s(&id)]).fails_with(9, "--passphrase-file");
    // Saving with --passphrase and no terminal: refused before anything is written.
    let out = dir.path().join("never.tar.zst.age");
    no_tty(&["save", &src.name, "-o", s(&out), "--passphrase"]).fails_with(2, "no terminal");
    assert!(files_in(dir.path()).iter().all(|f| !f.contains("never")));
}

#[test]
fn inspect_with_an_identity_shows_the_manifest() {
    let src = marked_volume("enc-inspect");
    src.sh("true");
    docker(&[
        "volume",
        "create",
        "--label",
        "team=ops",
        &format!("{}-l", src.name),
    ]);
    let labelled = Volume {
        name: format!("{}-l", src.name),
    };
    labelled.sh(&format!("echo {MARKER} > /data/f"));
    let dir = tempdir();
    let (id, public) = identity(dir.path(), "id.key");
    let file = dir.path().join("x.age");
    run(&["save", &labelled.name, "-o", s(&file), "-r", &public, "-q"]).ok();
    assert!(!contains(&std::fs::read(&file).unwrap(), "team"));
    let out = run(&["inspect", s(&file), "--identity", s(&id)])
        .ok()
        .stdout_str();
    assert!(
        out.contains(&format!("volume    {}", labelled.name)),
        "{out}"
    );
    assert!(out.contains("label     team=ops"), "{out}");
    assert!(out.contains("encrypted age, to recipients"), "{out}");
    assert!(out.contains("(verified)"), "{out}");
    let json = run(&["inspect", s(&file), "-i", s(&id), "--format", "json"])
        .ok()
        .stdout_str();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["encryption"], "recipients");
    assert_eq!(
        v["manifest"]["head"]["volume"]["name"],
        labelled.name.as_str()
    );
    assert_eq!(v["verified"], true);
}

#[test]
fn flipped_byte_in_the_ciphertext_is_damage() {
    let src = Volume::new("enc-flip");
    src.sh("head -c 3000000 /dev/urandom > /data/big && echo small > /data/small");
    let dir = tempdir();
    let (id, public) = identity(dir.path(), "id.key");
    let file = dir.path().join("x.tar.zst.age");
    run(&["save", &src.name, "-o", s(&file), "-r", &public, "-q"]).ok();
    let bytes = std::fs::read(&file).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x40;
    let bad = dir.path().join("flipped.age");
    std::fs::write(&bad, &flipped).unwrap();
    let fresh = Volume::named("enc-flip-dst");
    run(&["restore", s(&bad), &fresh.name, "-i", s(&id)]).fails_with(6, "damaged");
    assert!(!fresh.exists(), "no half-filled volume");
    run(&["inspect", s(&bad), "-i", s(&id)]).fails_with(6, "damaged");
    // Truncated: damage too.
    let cut = dir.path().join("cut.age");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    run(&["inspect", s(&cut), "-i", s(&id)]).fails_with(6, "");
    // A damaged header is damage, not a key problem.
    let mut header = bytes.clone();
    let at = bytes.windows(4).position(|w| w == b"\n---").unwrap() + 6;
    header[at] ^= 0x01;
    let badh = dir.path().join("header.age");
    std::fs::write(&badh, &header).unwrap();
    run(&["restore", s(&badh), &fresh.name, "-i", s(&id)]).fails_with(6, "header");
    assert!(!fresh.exists());
}

#[test]
fn ssh_ed25519_keys_and_stdin_stdout() {
    if std::process::Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_err()
    {
        eprintln!("ssh-keygen not installed: skipping");
        return;
    }
    let src = marked_volume("enc-ssh");
    let dir = tempdir();
    let key = dir.path().join("id_ed25519");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", s(&key)])
        .run()
        .ok();
    let public = std::fs::read_to_string(dir.path().join("id_ed25519.pub")).unwrap();
    // save -o - | restore -
    let mut save = tool()
        .args(["save", &src.name, "-o", "-", "-r", public.trim(), "-q"])
        .stdout(std::process::Stdio::piped())
        .start();
    let dst = Volume::named("enc-ssh-dst");
    let restored = tool()
        .args(["restore", "-", &dst.name, "--identity", s(&key), "-q"])
        .stdin(save.stdout.take().unwrap())
        .run();
    save.finish().ok();
    restored.ok();
    assert_eq!(dst.snapshot(), src.snapshot());
}

#[test]
fn verify_decrypts_with_the_identity() {
    let src = marked_volume("enc-verify");
    let dir = tempdir();
    let (id, public) = identity(dir.path(), "id.txt");
    let file = dir.path().join("v.tar.zst.age");
    run(&[
        "save",
        &src.name,
        "-o",
        s(&file),
        "--encrypt-to",
        &public,
        "-q",
    ])
    .ok();
    run(&["verify", s(&file)]).fails_with(9, "give --identity");
    let r = run(&["verify", s(&file), "-i", s(&id), "--against", &src.name]).ok();
    assert!(
        r.stdout_str().contains("identical to"),
        "{}",
        r.stdout_str()
    );
    let r = run(&["verify", s(&file), "-i", s(&id), "--restore-test"]).ok();
    assert!(
        r.stdout_str().contains("checksum matches the manifest"),
        "{}",
        r.stdout_str()
    );
    src.sh("echo more > /data/new");
    run(&["verify", s(&file), "-i", s(&id), "--against", &src.name]).fails_with(7, "differs");
}
