//! The Docker CLI plugin protocol: the metadata handshake, argv as the CLI passes it (global
//! flags before the plugin name), and the CLI's cancel socket.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

use tokio_util::sync::CancellationToken;

/// The name Docker knows the plugin by: `docker volumebackup`. Docker only runs plugins whose
/// name matches `^[a-z][a-z0-9]*$`, hence no hyphen.
pub const PLUGIN_NAME: &str = "volumebackup";

/// The handshake JSON: `plugin-metadata` from the repository, with the crate's version.
pub fn metadata() -> String {
    let mut meta: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("../plugin-metadata")).expect("plugin-metadata is JSON");
    meta.insert(
        "Version".into(),
        serde_json::Value::String(env!("CARGO_PKG_VERSION").into()),
    );
    serde_json::to_string(&meta).expect("serialises")
}

/// Whether the docker CLI started us as its plugin.
pub fn is_plugin_invocation(argv0: Option<&OsString>) -> bool {
    std::env::var_os("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND").is_some()
        || argv0
            .and_then(|a| Path::new(a).file_name())
            .is_some_and(|n| n == "docker-volumebackup")
}

/// Drops the plugin name from argv: the CLI passes `--context x volumebackup save v` and
/// `docker help volumebackup` as `help volumebackup`. Only the first occurrence goes, so a volume
/// called `volumebackup` still works.
pub fn strip_plugin_name(mut args: Vec<OsString>) -> Vec<OsString> {
    if let Some(i) = args.iter().skip(1).position(|a| a == PLUGIN_NAME) {
        args.remove(i + 1);
    }
    args
}

/// Cancels `token` when the docker CLI closes its plugin socket (the user cancelled).
pub fn watch_cli_socket(token: CancellationToken) {
    let Some(addr) = std::env::var_os("DOCKER_CLI_PLUGIN_SOCKET") else {
        return;
    };
    let addr = addr.to_string_lossy().into_owned();
    std::thread::spawn(move || {
        let Ok(mut conn) = connect(&addr) else {
            return;
        };
        // The CLI never writes; EOF (or an error) means it has gone or asked us to stop.
        let mut buf = [0u8; 64];
        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        token.cancel();
    });
}

#[cfg(target_os = "linux")]
fn connect(addr: &str) -> std::io::Result<std::os::unix::net::UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    match addr.strip_prefix('@') {
        Some(name) => UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?),
        None => UnixStream::connect(addr),
    }
}

#[cfg(not(target_os = "linux"))]
fn connect(addr: &str) -> std::io::Result<std::os::unix::net::UnixStream> {
    std::os::unix::net::UnixStream::connect(addr.trim_start_matches('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn plugin_name_is_removed_once() {
        assert_eq!(
            strip_plugin_name(args(&["p", "--context", "x", "volumebackup", "save", "v"])),
            args(&["p", "--context", "x", "save", "v"])
        );
        assert_eq!(
            strip_plugin_name(args(&["p", "volumebackup", "save", "volumebackup"])),
            args(&["p", "save", "volumebackup"])
        );
        assert_eq!(
            strip_plugin_name(args(&["p", "help", "volumebackup"])),
            args(&["p", "help"])
        );
    }

    #[test]
    fn metadata_is_the_handshake() {
        let v: serde_json::Value = serde_json::from_str(&metadata()).unwrap();
        assert_eq!(v["SchemaVersion"], "0.1.0");
        assert!(!v["Vendor"].as_str().unwrap().is_empty());
        assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    }
}
