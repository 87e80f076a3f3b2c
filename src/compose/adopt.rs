//! Names and labels for imported volumes, so that compose adopts them as its own without a
//! warning or a question (ARCHITECTURE.md, "Compose labels").

use std::collections::HashMap;

use super::volumes::ProjectVolume;
use crate::archive::VolumeInfo;
use crate::docker::labels::{
    COMPOSE_CONFIG_HASH, COMPOSE_PROJECT, COMPOSE_VOLUME, PODMAN_COMPOSE_PROJECT,
};

/// The volume to create for `v` (exported from project `old`) when importing into project
/// `new`. Project-owned volumes named `<old>_<key>` become `<new>_<key>` with the project and
/// volume labels compose checks (and podman-compose's project label where it put one); a custom `name:` and external volumes keep their names. An old
/// `com.docker.compose.config-hash` is dropped: compose v2 would otherwise ask to recreate (and
/// empty) a volume whose configuration changed since.
pub fn import_target(v: &ProjectVolume, old: &str, new: &str) -> VolumeInfo {
    let mut labels: HashMap<String, String> = v.labels.clone();
    labels.remove(COMPOSE_CONFIG_HASH);
    let name = if v.external {
        v.name.clone()
    } else {
        labels.insert(COMPOSE_PROJECT.into(), new.into());
        labels.insert(COMPOSE_VOLUME.into(), v.key.clone());
        // podman-compose's own project label, where it put one, follows the project too.
        if let Some(p) = labels.get_mut(PODMAN_COMPOSE_PROJECT) {
            *p = new.into();
        }
        match v.name.strip_prefix(&format!("{old}_")) {
            Some(rest) if rest == v.key => format!("{new}_{}", v.key),
            _ => v.name.clone(),
        }
    };
    VolumeInfo {
        name,
        driver: v.driver.clone(),
        options: v.options.clone(),
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(key: &str, name: &str, external: bool) -> ProjectVolume {
        ProjectVolume {
            key: key.into(),
            name: name.into(),
            external,
            driver: "local".into(),
            options: HashMap::new(),
            labels: HashMap::from([
                (COMPOSE_PROJECT.into(), "shop".into()),
                (COMPOSE_VOLUME.into(), key.into()),
                ("com.docker.compose.version".into(), "1.29.2".into()),
                (COMPOSE_CONFIG_HASH.into(), "abc".into()),
                ("mine".into(), "kept".into()),
            ]),
            services: vec!["db".into()],
        }
    }

    #[test]
    fn project_volumes_are_renamed_and_relabelled() {
        let t = import_target(&volume("db-data", "shop_db-data", false), "shop", "shop2");
        assert_eq!(t.name, "shop2_db-data");
        assert_eq!(t.labels[COMPOSE_PROJECT], "shop2");
        assert_eq!(t.labels[COMPOSE_VOLUME], "db-data");
        assert_eq!(t.labels["com.docker.compose.version"], "1.29.2");
        assert_eq!(t.labels["mine"], "kept");
        assert!(!t.labels.contains_key(COMPOSE_CONFIG_HASH));
        // Same project: same name.
        let t = import_target(&volume("db-data", "shop_db-data", false), "shop", "shop");
        assert_eq!(t.name, "shop_db-data");
    }

    #[test]
    fn podman_compose_volumes_follow_the_project() {
        let mut v = volume("data", "shop_data", false);
        v.labels.remove(COMPOSE_VOLUME);
        v.labels
            .insert(PODMAN_COMPOSE_PROJECT.into(), "shop".into());
        let t = import_target(&v, "shop", "shop2");
        assert_eq!(t.name, "shop2_data");
        assert_eq!(t.labels[PODMAN_COMPOSE_PROJECT], "shop2");
        assert_eq!(t.labels[COMPOSE_PROJECT], "shop2");
        assert_eq!(t.labels[COMPOSE_VOLUME], "data");
        // Not added where podman-compose did not put it.
        let t = import_target(&volume("db", "shop_db", false), "shop", "shop2");
        assert!(!t.labels.contains_key(PODMAN_COMPOSE_PROJECT));
    }

    #[test]
    fn custom_names_and_external_volumes_keep_their_names() {
        let t = import_target(&volume("data", "team-data", false), "shop", "other");
        assert_eq!(t.name, "team-data");
        assert_eq!(t.labels[COMPOSE_PROJECT], "other");
        let mut ext = volume("shared", "shared_store", true);
        ext.labels.remove(COMPOSE_PROJECT);
        let t = import_target(&ext, "shop", "other");
        assert_eq!(t.name, "shared_store");
        assert!(!t.labels.contains_key(COMPOSE_PROJECT));
        assert!(!t.labels.contains_key(COMPOSE_CONFIG_HASH));
    }
}
