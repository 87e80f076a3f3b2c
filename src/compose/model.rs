//! The parts of a compose file this tool reads (services, the named volumes they mount, their
//! dependencies, the top-level volumes), parsed as compose merges several files.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::docker::quiesce::ServiceDeps;

/// The parts of a compose file this tool needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// The top-level `name:` (the last file that has one wins, as compose merges).
    pub name: Option<String>,
    pub services: BTreeMap<String, ServiceModel>,
    /// Top-level `volumes:` by key.
    pub volumes: BTreeMap<String, VolumeModel>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceModel {
    /// Keys of the named volumes it mounts.
    pub volumes: BTreeSet<String>,
    /// Services it depends on (`depends_on`, `links`).
    pub depends_on: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeModel {
    pub external: bool,
    /// `name:` (the engine's name for it), when set.
    pub name: Option<String>,
}

/// Reads the parts of a compose file we need; everything else is ignored.
pub fn parse_model(text: &str) -> Result<Model, serde_norway::Error> {
    let mut value: serde_norway::Value = serde_norway::from_str(text)?;
    value.apply_merge()?;
    if value.is_null() {
        return Ok(Model::default());
    }
    let file: raw::File = serde_norway::from_value(value)?;
    let mut model = Model {
        name: file.name,
        ..Default::default()
    };
    for (key, def) in file.volumes {
        let def = def.unwrap_or_default();
        let (external, external_name) = match def.external {
            Some(raw::External::Flag(b)) => (b, None),
            Some(raw::External::Named { name }) => (true, name),
            None => (false, None),
        };
        model.volumes.insert(
            key,
            VolumeModel {
                external,
                name: def.name.or(external_name),
            },
        );
    }
    for (name, service) in file.services {
        let service = service.unwrap_or_default();
        let mut s = ServiceModel::default();
        for v in service.volumes {
            let source = match v {
                raw::Mount::Short(spec) => spec.split(':').next().map(String::from),
                raw::Mount::Long { kind, source } => match kind.as_deref() {
                    None | Some("volume") => source,
                    _ => None,
                },
            };
            // Only named volumes: not host paths, not anonymous volumes (a bare container path).
            if let Some(src) = source {
                if model.volumes.contains_key(&src)
                    || !(src.starts_with(['.', '/', '~', '$']) || src.is_empty())
                {
                    s.volumes.insert(src);
                }
            }
        }
        match service.depends_on {
            Some(raw::DependsOn::List(list)) => s.depends_on.extend(list),
            Some(raw::DependsOn::Map(map)) => s.depends_on.extend(map.into_keys()),
            None => {}
        }
        for link in service.links {
            if let Some(target) = link.split(':').next() {
                s.depends_on.insert(target.to_string());
            }
        }
        model.services.insert(name, s);
    }
    Ok(model)
}

impl Model {
    /// Merges a later file into this one, as compose's override files do (for what we read).
    pub(super) fn merge(&mut self, other: Model) {
        if other.name.is_some() {
            self.name = other.name;
        }
        for (k, v) in other.volumes {
            self.volumes.insert(k, v);
        }
        for (k, v) in other.services {
            let s = self.services.entry(k).or_default();
            s.volumes.extend(v.volumes);
            s.depends_on.extend(v.depends_on);
        }
    }

    /// Each service's dependencies, for keeping the containers of `project` still in order.
    pub fn service_deps(&self, project: &str) -> ServiceDeps {
        ServiceDeps {
            project: project.to_string(),
            depends_on: self
                .services
                .iter()
                .map(|(name, s)| (name.clone(), s.depends_on.clone()))
                .collect(),
        }
    }

    /// The services that mount volume `key`.
    pub fn services_mounting<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.services
            .iter()
            .filter(move |(_, s)| s.volumes.contains(key))
            .map(|(n, _)| n)
    }
}

/// Serde shapes of the compose file format (only what we read).
mod raw {
    use super::*;

    #[derive(Deserialize, Default)]
    pub struct File {
        pub name: Option<String>,
        #[serde(default)]
        pub services: BTreeMap<String, Option<Service>>,
        #[serde(default)]
        pub volumes: BTreeMap<String, Option<Volume>>,
    }

    #[derive(Deserialize, Default)]
    pub struct Service {
        #[serde(default)]
        pub volumes: Vec<Mount>,
        pub depends_on: Option<DependsOn>,
        #[serde(default)]
        pub links: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Mount {
        Short(String),
        Long {
            #[serde(rename = "type")]
            kind: Option<String>,
            source: Option<String>,
        },
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum DependsOn {
        List(Vec<String>),
        Map(BTreeMap<String, serde_norway::Value>),
    }

    #[derive(Deserialize, Default)]
    pub struct Volume {
        pub external: Option<External>,
        pub name: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum External {
        Flag(bool),
        /// The older `external: {name: x}` form.
        Named {
            name: Option<String>,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_reads_volumes_services_and_dependencies() {
        let text = r#"
x-common: &common
  image: busybox
  volumes:
    - data:/data
services:
  db:
    <<: *common
  web:
    image: busybox
    depends_on: [db]
    volumes:
      - type: volume
        source: uploads
        target: /u
      - ./html:/html:ro
      - /anon
    links: ["cache:c"]
  cache:
    image: busybox
    depends_on:
      db:
        condition: service_started
volumes:
  data:
  uploads: {}
  shared:
    external: true
    name: team_shared
  legacy:
    external:
      name: old_name
  plain_ext:
    external: true
"#;
        let m = parse_model(text).unwrap();
        assert_eq!(
            m.services["db"].volumes,
            BTreeSet::from(["data".to_string()])
        );
        assert_eq!(
            m.services["web"].volumes,
            BTreeSet::from(["uploads".to_string()])
        );
        assert_eq!(
            m.services["web"].depends_on,
            BTreeSet::from(["db".to_string(), "cache".to_string()])
        );
        assert_eq!(
            m.services["cache"].depends_on,
            BTreeSet::from(["db".to_string()])
        );
        assert!(!m.volumes["data"].external);
        assert_eq!(m.volumes["shared"].name.as_deref(), Some("team_shared"));
        assert!(m.volumes["legacy"].external);
        assert_eq!(m.volumes["legacy"].name.as_deref(), Some("old_name"));
        assert!(m.volumes["plain_ext"].external && m.volumes["plain_ext"].name.is_none());
        assert_eq!(m.services_mounting("data").collect::<Vec<_>>(), vec!["db"]);
        assert_eq!(parse_model("").unwrap(), Model::default());
        assert!(parse_model("services: [").is_err());
    }
}
