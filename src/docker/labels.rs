//! The label names this tool reads and writes on engine objects, in one place: compose's labels
//! (which project, service and volume an object belongs to) and the tool's own.

/// The compose project a container or volume belongs to.
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
/// podman-compose's project label, next to [`COMPOSE_PROJECT`] on the volumes it creates (named
/// `<project>_<key>`, without [`COMPOSE_VOLUME`]).
pub const PODMAN_COMPOSE_PROJECT: &str = "io.podman.compose.project";
/// A volume's key under `volumes:` in the compose file.
pub const COMPOSE_VOLUME: &str = "com.docker.compose.volume";
/// The compose version that created the object.
pub const COMPOSE_VERSION: &str = "com.docker.compose.version";
/// The compose service a container runs.
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
/// Compose v2's record of a service's `depends_on`: `db:service_started:false,cache:...`.
pub const COMPOSE_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// The hash compose compares to decide whether an object must be recreated.
pub const COMPOSE_CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// A container's number within its service (`1` for the first replica).
pub const COMPOSE_CONTAINER_NUMBER: &str = "com.docker.compose.container-number";

/// On the helper image, every helper container (`true`) and every scratch volume (`scratch`):
/// what carries it is the tool's own and is never listed, backed up or counted as a user.
pub const HELPER: &str = "org.docker-volume-backup.helper";
/// On a helper container: the volume it mounts (`HELPER` + `.volume`).
pub const HELPER_VOLUME: &str = "org.docker-volume-backup.helper.volume";
/// The run that created the object (helpers, scratch volumes, volumes, locks): unique to one
/// process (`docker::owner`). Nothing is removed unless it carries the current run's.
pub const RUN: &str = "org.docker-volume-backup.run";
/// The host name of the run that created the object.
pub const RUN_HOST: &str = "org.docker-volume-backup.run.host";
/// The boot id and pid namespace of that run: runs with the same one see each other's pids.
pub const RUN_MACHINE: &str = "org.docker-volume-backup.run.machine";
/// `PID/START`: the run's pid and its start time in clock ticks since boot.
pub const RUN_PID: &str = "org.docker-volume-backup.run.pid";
/// When the run started (RFC 3339).
pub const RUN_STARTED: &str = "org.docker-volume-backup.run.started";
/// On a lock (a never-started container named `dvb-lock-...`, `HELPER=lock`): the volume it locks.
pub const LOCK_VOLUME: &str = "org.docker-volume-backup.lock.volume";
/// On a lock: the command that holds it (`save`, `restore`...).
pub const LOCK_COMMAND: &str = "org.docker-volume-backup.lock.command";
/// Where the names of the tool's own labels start: no label under it is ever taken from an
/// archive, a bundle or another volume onto a volume the tool creates.
pub const INTERNAL_PREFIX: &str = "org.docker-volume-backup.";

/// Whether `key` is one of the tool's own labels (under [`INTERNAL_PREFIX`]).
pub fn is_internal(key: &str) -> bool {
    key.starts_with(INTERNAL_PREFIX)
}

/// Containers with this label set to `true` are stopped for any save of their volumes.
pub const STOP_DURING_BACKUP: &str = "docker-volume-backup.stop-during-backup";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_volume_label_extends_the_helper_label() {
        assert_eq!(HELPER_VOLUME, format!("{HELPER}.volume"));
    }

    #[test]
    fn the_tool_s_own_labels_are_internal() {
        assert!(is_internal(HELPER));
        assert!(is_internal(HELPER_VOLUME));
        assert!(!is_internal(STOP_DURING_BACKUP));
        assert!(!is_internal(COMPOSE_PROJECT));
        assert!(!is_internal("org.docker-volume-backupx"));
    }
}
