//! Volume drivers, options and labels that come from an archive or a bundle (data from anywhere):
//! a restore or an import makes a plain local volume unless `--apply-volume-options`, never
//! carries the tool's own labels over, and secret-looking option values never show in any output.
//! Split-directory bundles name files of their own directory only.
//!
//! The archives are written with the tool's own archive writer and a chosen manifest, as a backup
//! from elsewhere would arrive.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use docker_volume_backup::archive::{
    write_archive, Compression, EncodeOptions, ManifestHead, SourceInfo, VolumeInfo,
};
use docker_volume_backup::compose::bundle::{self, BundleManifest, BundleVolume, BundleWriter};
use docker_volume_backup::compose::ProjectVolume;

use crate::harness::*;

const SECRET: &str = "SEKRIT-4711-pw";

/// A tar stream as the engine gives a volume: `./` (root, 0755), then `./name` files (0600).
fn volume_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |name: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    };
    entry("./", tar::EntryType::Directory, 0o755, b"");
    for (name, data) in files {
        entry(&format!("./{name}"), tar::EntryType::Regular, 0o600, data);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// An archive of `files` whose manifest records `volume`, written by the tool's own writer.
fn crafted_archive(path: &Path, volume: VolumeInfo, files: &[(&str, &[u8])]) {
    let head = ManifestHead::new(volume, SourceInfo::default(), Compression::Zstd);
    let opts = EncodeOptions {
        compression: Compression::Zstd,
        level: None,
        threads: 1,
    };
    let file = std::fs::File::create(path).unwrap();
    let tar = volume_tar(files);
    write_archive(&tar[..], file, opts, None, &head, Arc::default()).unwrap();
}

/// Driver local, bound to `dir` on the host.
fn bind_to(dir: &Path, labels: &[(&str, &str)]) -> VolumeInfo {
    VolumeInfo {
        name: "recorded".into(),
        driver: "local".into(),
        options: HashMap::from([
            ("type".into(), "none".into()),
            ("o".into(), "bind".into()),
            ("device".into(), dir.display().to_string()),
        ]),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn host_entries(dir: &Path) -> Vec<String> {
    files_in(dir)
}

fn inspect_volume(name: &str, field: &str) -> String {
    docker(&["volume", "inspect", "-f", field, name])
        .trim()
        .to_string()
}

#[track_caller]
fn assert_no_secret(r: &Run) {
    assert!(
        !r.stderr.contains(SECRET) && !r.stdout_str().contains(SECRET),
        "the secret shows\n{r}"
    );
}

#[test]
fn recorded_bind_options_are_not_applied_without_the_flag() {
    let host = tempdir();
    let dir = tempdir();
    let archive = dir.path().join("keys.tar.zst");
    let recorded = bind_to(
        host.path(),
        &[
            ("com.example.team", "ops"),
            (HELPER_LABEL, "scratch"),
            ("org.docker-volume-backup.helper.volume", "x"),
        ],
    );
    crafted_archive(
        &archive,
        recorded,
        &[("authorized_keys", b"ssh-ed25519 AAAA attacker\n")],
    );
    let target = Volume::named("vo-plain");
    let r = run(&["restore", archive.to_str().unwrap(), &target.name]).ok();
    assert!(
        r.stderr.contains("NOT applied")
            && r.stderr
                .contains(&format!("device={}", host.path().display())),
        "{r}"
    );
    assert!(
        host_entries(host.path()).is_empty(),
        "the host dir stays empty"
    );
    assert_eq!(inspect_volume(&target.name, "{{.Driver}}"), "local");
    let options = inspect_volume(&target.name, "{{json .Options}}");
    assert!(options == "null" || options == "{}", "{options}");
    let labels = inspect_volume(&target.name, "{{json .Labels}}");
    assert!(labels.contains("\"com.example.team\":\"ops\""), "{labels}");
    // The only label of the tool's own is the run label this restore puts on what it creates.
    assert!(
        !labels.contains("org.docker-volume-backup.helper"),
        "{labels}"
    );
    assert!(labels.contains("org.docker-volume-backup.run"), "{labels}");
    assert_eq!(
        target.sh("cat /data/authorized_keys"),
        "ssh-ed25519 AAAA attacker\n"
    );
    // Not one of the tool's own: listed.
    let ls = run(&["ls", "--format", "json"]).ok().stdout_str();
    assert!(ls.contains(&format!("\"{}\"", target.name)), "{ls}");

    // The flag applies them, after saying so.
    let applied = Volume::named("vo-applied");
    let r = run(&[
        "restore",
        "--apply-volume-options",
        archive.to_str().unwrap(),
        &applied.name,
    ])
    .ok();
    assert!(
        r.stderr
            .contains("with the recorded driver local; options device="),
        "{r}"
    );
    assert_eq!(host_entries(host.path()), ["authorized_keys"]);
    drop(applied);
}

#[test]
fn compose_import_does_not_apply_recorded_options() {
    let host = tempdir();
    let dir = tempdir();
    let project = unique("vo-proj");
    let key = "data";
    let archive = dir.path().join("v.tar.zst");
    crafted_archive(
        &archive,
        bind_to(host.path(), &[(HELPER_LABEL, "true")]),
        &[("authorized_keys", b"attacker\n")],
    );
    let mut recorded = bind_to(host.path(), &[(HELPER_LABEL, "true")]);
    recorded.name = format!("{project}_{key}");
    let file = bundle::parts_name(key, "tar.zst");
    let manifest = BundleManifest {
        kind: bundle::KIND.into(),
        format: 1,
        tool_version: "0.1.0".into(),
        created: "2026-01-01T00:00:00Z".into(),
        project: project.clone(),
        source: SourceInfo::default(),
        volumes: vec![BundleVolume {
            volume: ProjectVolume {
                key: key.into(),
                name: recorded.name.clone(),
                external: false,
                driver: recorded.driver,
                options: recorded.options,
                labels: recorded.labels,
                services: vec![],
            },
            file: file.clone(),
        }],
        dumps: vec![],
    };
    let path = dir.path().join("b.compose.tar");
    let mut writer = BundleWriter::new(std::fs::File::create(&path).unwrap());
    writer
        .add_file(
            bundle::MANIFEST_NAME,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
    let mut parts = writer.parts(&file);
    std::io::copy(&mut std::fs::File::open(&archive).unwrap(), &mut parts).unwrap();
    parts.finish().unwrap().finish().unwrap();

    let target = Volume {
        name: format!("{project}_{key}"),
    };
    let r = run(&["compose-import", path.to_str().unwrap()]).ok();
    assert!(r.stderr.contains("NOT applied"), "{r}");
    assert!(
        host_entries(host.path()).is_empty(),
        "the host dir stays empty"
    );
    assert_eq!(inspect_volume(&target.name, "{{.Driver}}"), "local");
    let options = inspect_volume(&target.name, "{{json .Options}}");
    assert!(options == "null" || options == "{}", "{options}");
    let labels = inspect_volume(&target.name, "{{json .Labels}}");
    // The only label of the tool's own is the run label this restore puts on what it creates.
    assert!(
        !labels.contains("org.docker-volume-backup.helper"),
        "{labels}"
    );
    assert!(labels.contains("org.docker-volume-backup.run"), "{labels}");
    assert!(labels.contains(&project), "{labels}");
    assert_eq!(target.sh("cat /data/authorized_keys"), "attacker\n");
}

#[test]
fn a_split_directory_names_its_own_files_only() {
    let root = tempdir();
    let split = root.path().join("split");
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(&split).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    crafted_archive(
        &elsewhere.join("x.tar.zst"),
        VolumeInfo {
            driver: "local".into(),
            ..Default::default()
        },
        &[("f", b"outside\n")],
    );
    let project = unique("vo-split");
    let target = Volume {
        name: format!("{project}_data"),
    };
    for file in [
        "../elsewhere/x.tar.zst",
        elsewhere.join("x.tar.zst").to_str().unwrap(),
    ] {
        let manifest = serde_json::json!({
            "kind": bundle::KIND,
            "format": 1,
            "tool_version": "0.1.0",
            "created": "2026-01-01T00:00:00Z",
            "project": project,
            "source": {"context": "default", "endpoint": "unix:///var/run/docker.sock"},
            "volumes": [{
                "key": "data", "name": target.name, "external": false, "driver": "local",
                "file": file,
            }],
        });
        std::fs::write(
            split.join(bundle::split_manifest_name(&project)),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        run(&["compose-import", split.to_str().unwrap()]).fails_with(6, "not a plain file name");
        assert!(!target.exists(), "nothing was created");
    }
}

#[test]
fn secrets_in_volume_options_never_show() {
    let dir = tempdir();
    // A CIFS volume that cannot mount: the engine's error echoes its options.
    let cifs = unique("vo-cifs");
    let o = format!("o=username=u,password={SECRET}");
    docker(&[
        "volume",
        "create",
        "-o",
        "type=cifs",
        "-o",
        &o,
        "-o",
        "device=//127.0.0.1/x",
        &cifs,
    ]);
    let cifs = Volume { name: cifs };
    let out = dir.path().join("cifs.tar.zst");
    let r = run(&["save", &cifs.name, "-o", out.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r}");
    assert!(r.stderr.contains("password=<redacted>"), "{r}");
    assert_no_secret(&r);
    for args in [&["ls"][..], &["ls", "--format", "json"]] {
        assert_no_secret(&run(args).ok());
    }

    // A bind volume mounts whatever its `o=` carries: its options reach the manifest.
    let host = tempdir();
    let carrier = unique("vo-carrier");
    let o = format!("o=bind,password={SECRET}");
    let device = format!("device={}", host.path().display());
    docker(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        &o,
        "-o",
        &device,
        &carrier,
    ]);
    let carrier = Volume { name: carrier };
    carrier.sh("echo data > /data/f");
    let saved = dir.path().join("carrier.tar.zst");
    assert_no_secret(&run(&["save", &carrier.name, "-o", saved.to_str().unwrap()]).ok());
    let raw = std::process::Command::new("zstd")
        .args(["-dc", saved.to_str().unwrap()])
        .output()
        .unwrap();
    let raw = String::from_utf8_lossy(&raw.stdout);
    assert!(
        raw.contains("password=<redacted>"),
        "the manifest records it hidden"
    );
    assert!(!raw.contains(SECRET));
    for args in [
        &["inspect", saved.to_str().unwrap()][..],
        &["inspect", "--format", "json", saved.to_str().unwrap()],
        &["verify", saved.to_str().unwrap()],
        &["backups", dir.path().to_str().unwrap()],
        &["backups", "--format", "json", dir.path().to_str().unwrap()],
    ] {
        assert_no_secret(&run(args).ok());
    }
    // Its hidden values cannot be applied: refused before anything is created.
    let target = Volume::named("vo-redacted");
    run(&[
        "restore",
        "--apply-volume-options",
        saved.to_str().unwrap(),
        &target.name,
    ])
    .fails_with(2, "hidden");
    assert!(!target.exists());

    // An archive from elsewhere that still carries a password: never shown, and a failed mount
    // of it (applied on request) says so without it.
    let foreign = dir.path().join("foreign.tar.zst");
    crafted_archive(
        &foreign,
        VolumeInfo {
            name: "share".into(),
            driver: "local".into(),
            options: HashMap::from([
                ("type".into(), "cifs".into()),
                ("o".into(), format!("username=u,password={SECRET}")),
                ("device".into(), "//127.0.0.1/x".into()),
            ]),
            labels: HashMap::new(),
        },
        &[("f", b"x\n")],
    );
    for args in [
        &["inspect", foreign.to_str().unwrap()][..],
        &["inspect", "--format", "json", foreign.to_str().unwrap()],
    ] {
        let r = run(args).ok();
        assert_no_secret(&r);
        assert!(r.stdout_str().contains("password=<redacted>"), "{r}");
    }
    let plain = Volume::named("vo-foreign");
    let r = run(&["restore", foreign.to_str().unwrap(), &plain.name]).ok();
    assert!(r.stderr.contains("password=<redacted>"), "{r}");
    assert_no_secret(&r);
    let mounted = Volume::named("vo-foreign-cifs");
    let r = run(&[
        "restore",
        "--apply-volume-options",
        foreign.to_str().unwrap(),
        &mounted.name,
    ]);
    assert_ne!(r.code, 0, "{r}");
    assert_no_secret(&r);
    assert!(!mounted.exists(), "the volume it created is removed again");

    // compose-export's bundle.json.
    let project = unique("vo-exp");
    let name = format!("{project}_data");
    let o = format!("o=bind,password={SECRET}");
    docker(&[
        "volume",
        "create",
        "--label",
        &format!("com.docker.compose.project={project}"),
        "--label",
        "com.docker.compose.volume=data",
        "-o",
        "type=none",
        "-o",
        &o,
        "-o",
        &device,
        &name,
    ]);
    let _exported = Volume { name };
    let split = dir.path().join("split");
    let empty = tempdir();
    let r = run_in(
        empty.path(),
        &[
            "compose-export",
            "-p",
            &project,
            "--no-stop",
            "--split",
            split.to_str().unwrap(),
        ],
    )
    .ok();
    assert_no_secret(&r);
    let json = std::fs::read_to_string(split.join(bundle::split_manifest_name(&project))).unwrap();
    assert!(
        json.contains("password=<redacted>") && !json.contains(SECRET),
        "{json}"
    );
}
