//! Logical database dumps and restores of containers (PostgreSQL, MySQL, MariaDB) with the
//! engine's own tools, run inside the container through the exec API. Credentials travel in the
//! exec's environment (`PGPASSWORD`, `MYSQL_PWD`), never on a command line.
//!
//! `Server::find` recognises the container and its credentials; `dump::dump_into` streams a
//! dump into any `Write` (a file, stdout, or a bundle that embeds it); `restore` feeds one back.

pub mod detect;
pub mod dump;
pub mod format;
pub mod mysql;
pub mod postgres;
pub mod restore;

use std::collections::HashMap;
use std::io::Read;

use age::secrecy::ExposeSecret;
use anyhow::{Context as _, Result};
use bollard::query_parameters::DownloadFromContainerOptions;
use bollard::Docker;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::docker::exec::{self, Exec, Finished};
use crate::error::{Kind, UserError};
pub use detect::{Credentials, Overrides};

/// A database family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Postgres,
    #[serde(rename = "mysql")]
    MySql,
    #[serde(rename = "mariadb")]
    MariaDb,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Postgres => "PostgreSQL",
            Flavor::MySql => "MySQL",
            Flavor::MariaDb => "MariaDB",
        }
    }

    /// Whether dumps of `self` and `other` are interchangeable (MySQL and MariaDB mostly are).
    pub fn family(self) -> &'static str {
        match self {
            Flavor::Postgres => "postgres",
            Flavor::MySql | Flavor::MariaDb => "mysql",
        }
    }
}

/// The dump format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormat {
    /// Plain SQL (any engine), replayed with psql / mysql
    Plain,
    /// PostgreSQL's custom format (`pg_dump -Fc`), restored with pg_restore
    Custom,
}

/// What a dump covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Database(String),
    All,
}

impl Scope {
    /// `app` or `all`, as in file names and manifests.
    pub fn label(&self) -> &str {
        match self {
            Scope::Database(db) => db,
            Scope::All => "all",
        }
    }
}

/// A client program found in a server container, and what it says its version is.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// A running database container, recognised, with the credentials to reach it.
pub struct Server {
    pub docker: Docker,
    /// The container's name (without the leading `/`), as the user knows it.
    pub name: String,
    pub id: String,
    pub flavor: Flavor,
    pub env: HashMap<String, String>,
    pub credentials: Credentials,
}

impl Server {
    /// Inspects `container`, recognises the database in it and finds its credentials. Refuses a
    /// missing or stopped container, and one that is not a database.
    pub async fn find(docker: &Docker, container: &str, given: &Overrides) -> Result<Server> {
        Ok(Server::lookup(docker, container, given, true)
            .await?
            .expect("a required server is found or refused"))
    }

    /// Like `find`, but `None` for a running container that is no database (compose-export
    /// `--with-dumps` looks at every service and dumps those that are).
    pub async fn find_database(
        docker: &Docker,
        container: &str,
        given: &Overrides,
    ) -> Result<Option<Server>> {
        Server::lookup(docker, container, given, false).await
    }

    async fn lookup(
        docker: &Docker,
        container: &str,
        given: &Overrides,
        required: bool,
    ) -> Result<Option<Server>> {
        let inspected =
            docker
                .inspect_container(container, None)
                .await
                .map_err(|e| -> anyhow::Error {
                    if crate::docker::is_not_found(&e) {
                        UserError::new(Kind::NotFound, format!("no container `{container}`"))
                            .hint("`docker ps` lists the running containers")
                            .into()
                    } else {
                        anyhow::Error::new(e).context(format!("inspecting container `{container}`"))
                    }
                })?;
        let name = inspected
            .name
            .as_deref()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_else(|| container.to_string());
        let id = inspected.id.clone().unwrap_or_else(|| container.into());
        let config = inspected.config.unwrap_or_default();
        let image = config.image.clone().unwrap_or_default();
        let mut env = detect::parse_env(&config.env.unwrap_or_default());
        let running = inspected
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false);
        if !running {
            return Err(UserError::new(
                Kind::Failure,
                format!("container `{name}` is not running: a dump needs its database server up"),
            )
            .hint(format!("start it with `docker start {name}`"))
            .into());
        }
        let flavor = match detect::flavor_from(&image, &env) {
            Some(f) => f,
            None if !required => match probe_flavor(docker, &id).await {
                Some(f) => f,
                None => return Ok(None),
            },
            None => probe_flavor(docker, &id).await.ok_or_else(|| {
                UserError::new(
                    Kind::Failure,
                    format!(
                        "container `{name}` (image {image}) is not a PostgreSQL, MySQL or \
                         MariaDB container: no POSTGRES_*/MYSQL_*/MARIADB_* variables, and no \
                         pg_dump, mariadb-dump or mysqldump in it"
                    ),
                )
            })?,
        };
        read_secret_files(docker, &id, &mut env).await?;
        let credentials = detect::credentials(flavor, &env, given).ok_or_else(|| {
            UserError::new(
                Kind::Failure,
                format!(
                    "no credentials for the {} server in `{name}`: its environment has no \
                     root password or user",
                    flavor.name()
                ),
            )
            .hint("give --user and --password-file FILE (or --password-env VAR)")
        })?;
        Ok(Some(Server {
            docker: docker.clone(),
            name,
            id,
            flavor,
            env,
            credentials,
        }))
    }

    /// The exec environment carrying the password.
    pub fn secret_env(&self) -> Vec<String> {
        let Some(pw) = &self.credentials.password else {
            return Vec::new();
        };
        let var = match self.flavor {
            Flavor::Postgres => "PGPASSWORD",
            Flavor::MySql | Flavor::MariaDb => "MYSQL_PWD",
        };
        vec![format!("{var}={}", pw.expose_secret())]
    }

    /// An exec of `cmd` with the password in its environment.
    pub fn exec(&self, cmd: Vec<String>) -> Exec {
        Exec {
            cmd,
            env: self.secret_env(),
            user: None,
        }
    }

    /// Runs a client command with small output; fails with the tool's message.
    pub async fn run(&self, cmd: Vec<String>) -> Result<String> {
        let exec = self.exec(cmd);
        let (finished, out) = exec::output(&self.docker, &self.id, &exec).await?;
        self.check(&exec, &finished)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// An error for a failed tool run: the tool's own words, and what to try.
    pub fn check(&self, exec: &Exec, finished: &Finished) -> Result<()> {
        let tool = &exec.cmd[0];
        if finished.not_found() {
            return Err(UserError::new(
                Kind::Failure,
                format!(
                    "`{tool}` is not available in container `{}`: not installed, or not \
                     executable (exit {})",
                    self.name, finished.exit_code
                ),
            )
            .hint(format!(
                "the {} client tools must be installed in the container",
                self.flavor.name()
            ))
            .into());
        }
        if let Some(msg) = failure(finished) {
            let mut err = UserError::new(
                Kind::Failure,
                format!(
                    "{tool} failed in container `{}` (exit {}): {msg}",
                    self.name, finished.exit_code
                ),
            );
            if msg.contains("already exists") {
                err = err.hint("use --force to restore over existing objects");
            } else if looks_like_auth(&msg) {
                err = err.hint(format!(
                    "the credentials came from {}; give --user and --password-file FILE \
                     (or --password-env VAR) to use others",
                    self.credentials.source
                ));
            }
            return Err(err.into());
        }
        Ok(())
    }

    /// The tool and its version (`pg_dump (PostgreSQL) 15.18`), trying each name in turn
    /// (MariaDB 11 dropped the `mysqldump` name; MySQL never had `mariadb-dump`).
    pub async fn find_tool(&self, names: &[&str]) -> Result<Tool> {
        let mut last = None;
        for name in names {
            let exec = Exec::new(&[*name, "--version"]);
            let (finished, out) = exec::output(&self.docker, &self.id, &exec).await?;
            if finished.success() {
                return Ok(Tool {
                    name: name.to_string(),
                    version: String::from_utf8_lossy(&out).trim().to_string(),
                });
            }
            last = Some((exec, finished));
        }
        let (exec, finished) = last.expect("at least one tool name");
        self.check(&exec, &finished)?;
        Err(UserError::new(
            Kind::Failure,
            format!(
                "`{}` does not run in container `{}`",
                names.join("`/`"),
                self.name
            ),
        )
        .into())
    }
}

/// The first lines of a tool's stderr, for an error message.
fn first_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(6)
        .collect();
    if lines.is_empty() {
        "no message".into()
    } else {
        lines.join("; ")
    }
}

/// Why a finished tool run failed, if it did: a non-zero exit, or an error on stderr (some
/// tools print errors and still exit 0).
pub fn failure(finished: &Finished) -> Option<String> {
    let errors: Vec<&str> = finished
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| is_error_line(l))
        .collect();
    let quoted = errors
        .iter()
        .take(6)
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    if finished.exit_code == 0 {
        return (!errors.is_empty()).then_some(quoted);
    }
    Some(if !errors.is_empty() {
        quoted
    } else if finished.exit_code > 128 && finished.stderr.is_empty() {
        format!("killed by signal {}", finished.exit_code - 128)
    } else {
        first_lines(&finished.stderr)
    })
}

/// `pg_dump: error: ...`, `ERROR:  ...`, `mysqldump: Got error: ...`, `ERROR 1045 (28000) ...`.
fn is_error_line(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.starts_with("error")
        || lower.starts_with("fatal")
        || lower.contains(": error")
        || lower.contains(": fatal")
        || lower.contains("got error")
        || lower.contains("couldn't execute")
}

fn looks_like_auth(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("password authentication failed")
        || m.contains("access denied")
        || m.contains("no password supplied")
        || m.contains("authentication failed")
}

/// Names a container would need to be recognised by its tools alone.
async fn probe_flavor(docker: &Docker, id: &str) -> Option<Flavor> {
    for (tool, flavor) in [
        ("pg_dump", Flavor::Postgres),
        ("mariadb-dump", Flavor::MariaDb),
        ("mysqldump", Flavor::MySql),
    ] {
        let exec = Exec::new(&[tool, "--version"]);
        if let Ok((finished, _)) = exec::output(docker, id, &exec).await {
            if finished.success() {
                return Some(flavor);
            }
        }
    }
    None
}

/// Largest secret file read from a container.
const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// Replaces each `X_FILE=/path` of the known variables by `X=<content of /path inside the
/// container>`, read through the engine's archive endpoint (no tool needed in the container).
async fn read_secret_files(
    docker: &Docker,
    id: &str,
    env: &mut HashMap<String, String>,
) -> Result<()> {
    for var in detect::FILE_VARIABLES {
        let Some(path) = env.get(&format!("{var}_FILE")).cloned() else {
            continue;
        };
        if env.get(*var).is_some_and(|v| !v.is_empty()) {
            continue;
        }
        let value = read_container_file(docker, id, &path)
            .await
            .with_context(|| format!("reading {var}_FILE ({path}) in the container"))?;
        // Entrypoints take the file's content less its final line break.
        let value = value.strip_suffix('\n').unwrap_or(&value).to_string();
        env.insert(var.to_string(), value);
    }
    Ok(())
}

/// The content of one small regular file inside a container.
async fn read_container_file(docker: &Docker, id: &str, path: &str) -> Result<String> {
    let options = DownloadFromContainerOptions { path: path.into() };
    let mut body = docker.download_from_container(id, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = body.next().await {
        tar.extend_from_slice(&chunk?);
        if tar.len() as u64 > SECRET_FILE_LIMIT + 4096 {
            anyhow::bail!("{path} is too large for a secret");
        }
    }
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entry = archive
        .entries()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{path} is empty"))??;
    let mut text = String::new();
    entry
        .read_to_string(&mut text)
        .with_context(|| format!("{path} is not a UTF-8 text file"))?;
    Ok(text)
}

/// The credentials given to our tool: `--user`, and a password from `--password-file` or the
/// variable named by `--password-env` (never a flag's value).
pub fn overrides_from(args: &crate::cli::DbCredentialArgs) -> Result<Overrides> {
    let usage = |m: String| -> anyhow::Error { UserError::new(Kind::Usage, m).into() };
    let password = match (&args.password_file, &args.password_env) {
        (Some(path), _) => Some(crate::keys::read_passphrase_file(path).map_err(usage)?),
        (None, Some(var)) => {
            let value = std::env::var(var)
                .map_err(|_| usage(format!("--password-env {var}: the variable is not set")))?;
            if value.is_empty() {
                return Err(usage(format!(
                    "--password-env {var}: the variable is empty"
                )));
            }
            Some(age::secrecy::SecretString::from(value))
        }
        (None, None) => None,
    };
    Ok(Overrides {
        user: args.user.clone(),
        password,
    })
}

/// Quotes a string as an SQL literal (`'it''s'`); both engines take doubled quotes.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(code: i64, stderr: &str) -> Finished {
        Finished {
            exit_code: code,
            stderr: stderr.into(),
            pid: None,
        }
    }

    #[test]
    fn tool_failures_are_found() {
        assert_eq!(failure(&finished(0, "")), None);
        assert_eq!(
            failure(&finished(0, "pg_dump: warning: something odd")),
            None
        );
        let f = finished(
            1,
            "pg_dump: error: connection to server failed: FATAL:  password authentication failed",
        );
        assert!(failure(&f)
            .unwrap()
            .contains("password authentication failed"));
        // An error on stderr fails the run even with exit status 0.
        let f = finished(0, "mysqldump: Got error: 2013: Lost connection to server");
        assert!(failure(&f).unwrap().contains("Lost connection"));
        assert_eq!(failure(&finished(137, "")).unwrap(), "killed by signal 9");
        assert!(failure(&finished(1, "")).unwrap().contains("no message"));
        assert!(looks_like_auth(
            "ERROR 1045 (28000): Access denied for user 'root'@'localhost'"
        ));
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(sql_literal("it's"), "'it''s'");
    }
}
