//! Every command against Podman's Docker-compatible API (`podman system service` on a temporary
//! socket), and backups of several engines sharing one destination.

use crate::harness::*;

#[test]
fn podman_engine_is_detected() {
    let podman = PodmanEngine::start();
    let r = tool().env("DOCKER_HOST", podman.host()).args(["ls"]).run();
    r.expect_ok("ls against podman");
}
