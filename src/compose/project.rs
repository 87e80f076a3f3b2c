//! Which compose project is meant, resolved the way compose resolves it, and which volumes belong
//! to it: those compose labelled with the project, plus the external volumes its file declares.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use bollard::Docker;
use serde::Deserialize;

use crate::docker::quiesce::ServiceDeps;
use crate::docker::{containers, labels, volumes};
use crate::error::{Kind, UserError};

/// Labels compose puts on what it creates (defined with the engine's other labels).
pub use crate::docker::labels::{
    COMPOSE_CONFIG_HASH as LABEL_CONFIG_HASH, COMPOSE_DEPENDS_ON as LABEL_DEPENDS_ON,
    COMPOSE_PROJECT as LABEL_PROJECT, COMPOSE_SERVICE as LABEL_SERVICE,
    COMPOSE_VERSION as LABEL_VERSION, COMPOSE_VOLUME as LABEL_VOLUME,
};

/// Which project the user named: `-p` and `-f`, as compose takes them.
#[derive(Debug, Clone, Default)]
pub struct ProjectSpec {
    pub project_name: Option<String>,
    pub files: Vec<PathBuf>,
}

/// The files compose looks for in the current directory, in its order.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// A resolved project: its name, the compose files read, and what they say.
#[derive(Debug, Clone, Default)]
pub struct Project {
    pub name: String,
    /// Where the name came from, for messages.
    pub name_source: String,
    pub files: Vec<PathBuf>,
    pub model: Model,
}

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

/// One volume of a project, as the engine has it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProjectVolume {
    /// The key under `volumes:` in the compose file.
    pub key: String,
    /// The engine's name for it.
    pub name: String,
    pub external: bool,
    pub driver: String,
    #[serde(default)]
    pub options: HashMap<String, String>,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    /// Services that mount it.
    #[serde(default)]
    pub services: Vec<String>,
}

impl Project {
    /// A project known only by name (`save --project P`): its volumes come from labels alone.
    pub fn named(name: &str) -> Project {
        Project {
            name: name.to_string(),
            name_source: "--project".into(),
            ..Default::default()
        }
    }
}

/// Resolves the project from the flags, the environment and the current directory.
pub fn resolve_project(args: &ProjectSpec) -> Result<Project> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    resolve_in(args, &cwd, &|k| std::env::var(k).ok())
}

/// `resolve_project` with the directory and environment given (for tests).
pub fn resolve_in(
    args: &ProjectSpec,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Project> {
    let files = compose_files(args, cwd, env)?;
    let mut model = Model::default();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading compose file {}", file.display()))?;
        let one = parse_model(&text).map_err(|e| {
            UserError::new(
                Kind::Usage,
                format!("cannot read compose file {}: {e}", file.display()),
            )
        })?;
        model.merge(one);
    }
    let (name, source) = if let Some(p) = &args.project_name {
        (checked_name(p, "-p")?, "-p".to_string())
    } else if let Some(p) = env("COMPOSE_PROJECT_NAME").filter(|p| !p.is_empty()) {
        (
            checked_name(&p, "COMPOSE_PROJECT_NAME")?,
            "COMPOSE_PROJECT_NAME".into(),
        )
    } else if let Some(p) = &model.name {
        let file = files.last().map(|f| f.display().to_string());
        let source = format!("`name:` in {}", file.unwrap_or_default());
        (checked_name(p, &source)?, source)
    } else {
        // The project directory is the first compose file's, else the current one.
        let dir = files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.to_path_buf());
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let base = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = normalize_name(&base);
        if name.is_empty() {
            return Err(UserError::new(
                Kind::Usage,
                format!(
                    "cannot make a project name from directory {}",
                    dir.display()
                ),
            )
            .hint("name the project with -p NAME")
            .into());
        }
        (name, format!("directory {}", dir.display()))
    };
    Ok(Project {
        name,
        name_source: source,
        files,
        model,
    })
}

/// The compose files: `-f`, else `COMPOSE_FILE` (split on `COMPOSE_PATH_SEPARATOR`, default the
/// platform's path separator), else the first default name present in `cwd` (none is fine: the
/// project is then known by name and labels only).
fn compose_files(
    args: &ProjectSpec,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<PathBuf>> {
    let given: Vec<PathBuf> = if !args.files.is_empty() {
        args.files.clone()
    } else if let Some(list) = env("COMPOSE_FILE").filter(|l| !l.is_empty()) {
        let sep = env("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| if cfg!(windows) { ";" } else { ":" }.to_string());
        list.split(sep.as_str())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect()
    } else {
        return Ok(DEFAULT_FILES
            .iter()
            .map(|f| cwd.join(f))
            .find(|p| p.is_file())
            .into_iter()
            .collect());
    };
    given
        .into_iter()
        .map(|f| {
            let path = if f.is_absolute() { f } else { cwd.join(f) };
            if path.is_file() {
                Ok(path)
            } else {
                Err(UserError::new(
                    Kind::NotFound,
                    format!("compose file {} not found", path.display()),
                )
                .into())
            }
        })
        .collect()
}

/// Compose's rule for a project name taken from a directory: lowercase, only `a-z`, `0-9`, `_`
/// and `-`, starting with a letter or digit.
pub fn normalize_name(raw: &str) -> String {
    let kept: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// A name given explicitly must already follow the rule, as compose requires.
pub fn checked_name(name: &str, from: &str) -> Result<String> {
    if !name.is_empty() && normalize_name(name) == name {
        return Ok(name.to_string());
    }
    Err(UserError::new(
        Kind::Usage,
        format!(
            "invalid project name {name:?} (from {from}): it must be lowercase letters, digits, \
             `-` and `_`, starting with a letter or digit"
        ),
    )
    .into())
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
    fn merge(&mut self, other: Model) {
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

/// The project's volumes on the engine: those labelled with the project, then the external ones
/// its compose file declares (a declared external volume the engine lacks is an error: the
/// project could not start without it either).
pub async fn project_volumes(docker: &Docker, project: &Project) -> Result<Vec<ProjectVolume>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={}", labels::COMPOSE_PROJECT, project.name)],
    )]);
    let listed = volumes::list(docker, filters).await?;
    let mounted = mounts_by_service(docker, &project.name).await?;
    let mut out = Vec::new();
    for v in listed {
        let key = v
            .labels
            .get(labels::COMPOSE_VOLUME)
            .cloned()
            .or_else(|| {
                v.name
                    .strip_prefix(&format!("{}_", project.name))
                    .map(String::from)
            })
            .unwrap_or_else(|| v.name.clone());
        out.push(ProjectVolume {
            services: services_of(project, &key, &v.name, &mounted),
            key,
            name: v.name,
            external: false,
            driver: v.driver,
            options: v.options,
            labels: v.labels,
        });
    }
    for (key, decl) in &project.model.volumes {
        if !decl.external {
            continue;
        }
        let name = decl.name.clone().unwrap_or_else(|| key.clone());
        if out.iter().any(|v| v.name == name) {
            continue;
        }
        let v = volumes::inspect(docker, &name).await?.ok_or_else(|| {
            UserError::new(
                Kind::NotFound,
                format!(
                    "external volume `{name}` (key `{key}` in the compose file) does not exist"
                ),
            )
        })?;
        out.push(ProjectVolume {
            services: services_of(project, key, &name, &mounted),
            key: key.clone(),
            name,
            external: true,
            driver: v.driver,
            options: v.options,
            labels: v.labels,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Volume name to the services of the project whose containers mount it.
async fn mounts_by_service(
    docker: &Docker,
    project: &str,
) -> Result<HashMap<String, BTreeSet<String>>> {
    let mut by_volume: HashMap<String, BTreeSet<String>> = HashMap::new();
    for c in containers::of_project(docker, project).await? {
        let Some(service) = c.label(labels::COMPOSE_SERVICE) else {
            continue;
        };
        for name in &c.volumes {
            by_volume
                .entry(name.clone())
                .or_default()
                .insert(service.to_string());
        }
    }
    Ok(by_volume)
}

fn services_of(
    project: &Project,
    key: &str,
    name: &str,
    mounted: &HashMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut all: BTreeSet<String> = project.model.services_mounting(key).cloned().collect();
    if let Some(s) = mounted.get(name) {
        all.extend(s.iter().cloned());
    }
    all.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_as_compose_does() {
        assert_eq!(normalize_name("My Shop"), "myshop");
        assert_eq!(normalize_name("shop.example_v2"), "shopexample_v2");
        assert_eq!(normalize_name("__-Web-App"), "web-app");
        assert_eq!(normalize_name("日本"), "");
        assert!(checked_name("shop", "-p").is_ok());
        assert!(checked_name("Shop", "-p").is_err());
        assert!(checked_name("_shop", "-p").is_err());
        assert!(checked_name("", "-p").is_err());
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn resolution_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("My_Project");
        std::fs::create_dir(&root).unwrap();
        let none = env_of(&[]);
        // No file: the directory name.
        let p = resolve_in(&ProjectSpec::default(), &root, &none).unwrap();
        assert_eq!(p.name, "my_project");
        assert!(p.files.is_empty());
        // docker-compose.yml is found; compose.yaml wins over it once present.
        std::fs::write(root.join("docker-compose.yml"), "services: {}\n").unwrap();
        let p = resolve_in(&ProjectSpec::default(), &root, &none).unwrap();
        assert_eq!(p.files, vec![root.join("docker-compose.yml")]);
        std::fs::write(root.join("compose.yaml"), "name: fromfile\n").unwrap();
        let p = resolve_in(&ProjectSpec::default(), &root, &none).unwrap();
        assert_eq!(p.files, vec![root.join("compose.yaml")]);
        assert_eq!(p.name, "fromfile");
        // The environment beats the file, -p beats both.
        let env = env_of(&[("COMPOSE_PROJECT_NAME", "fromenv")]);
        assert_eq!(
            resolve_in(&ProjectSpec::default(), &root, &env)
                .unwrap()
                .name,
            "fromenv"
        );
        let args = ProjectSpec {
            project_name: Some("fromflag".into()),
            files: vec![],
        };
        assert_eq!(resolve_in(&args, &root, &env).unwrap().name, "fromflag");
    }

    #[test]
    fn compose_file_lists() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.yml"), "name: first\n").unwrap();
        std::fs::write(root.join("b.yml"), "name: second\n").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/c.yml"), "services: {}\n").unwrap();
        let env = env_of(&[("COMPOSE_FILE", "a.yml:b.yml")]);
        let p = resolve_in(&ProjectSpec::default(), root, &env).unwrap();
        assert_eq!(p.files, vec![root.join("a.yml"), root.join("b.yml")]);
        assert_eq!(p.name, "second", "the last file's name wins");
        let env = env_of(&[
            ("COMPOSE_FILE", "b.yml;a.yml"),
            ("COMPOSE_PATH_SEPARATOR", ";"),
        ]);
        let p = resolve_in(&ProjectSpec::default(), root, &env).unwrap();
        assert_eq!(p.name, "first");
        // -f beats COMPOSE_FILE; the directory of the first file names the project.
        let args = ProjectSpec {
            project_name: None,
            files: vec!["sub/c.yml".into()],
        };
        let p = resolve_in(&args, root, &env).unwrap();
        assert_eq!(p.name, "sub");
        let missing = ProjectSpec {
            project_name: None,
            files: vec!["nope.yml".into()],
        };
        assert!(resolve_in(&missing, root, &env).is_err());
    }

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
