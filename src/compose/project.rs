//! Which compose project is meant, resolved the way compose resolves it: `-p`,
//! `COMPOSE_PROJECT_NAME`, the files' `name:`, else the directory name.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::model::{parse_model, Model};
use crate::error::{Kind, UserError};

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
}
