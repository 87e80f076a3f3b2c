//! Recognising a database container (PostgreSQL, MySQL, MariaDB) from its image and environment,
//! and finding the credentials it was created with. Pure functions: the engine side (inspecting
//! the container, reading `*_FILE` secrets, probing for tools) lives in `db::mod`.

use std::collections::HashMap;

use age::secrecy::SecretString;

use super::Flavor;

/// The database family a container's image name or environment points at, if any. The
/// official images and their common derivatives (postgis, timescaledb, bitnami, percona) set
/// recognisable variables; the image name is the fallback for images that set none.
pub fn flavor_from(image: &str, env: &HashMap<String, String>) -> Option<Flavor> {
    let has = |prefixes: &[&str]| {
        env.keys()
            .any(|k| prefixes.iter().any(|p| k.starts_with(p)))
    };
    // MariaDB first: its images also answer to MYSQL_* variables.
    if has(&["MARIADB_"]) {
        return Some(Flavor::MariaDb);
    }
    if has(&[
        "POSTGRES_",
        "POSTGRESQL_",
        "PG_MAJOR",
        "PG_VERSION",
        "PGDATA",
    ]) {
        return Some(Flavor::Postgres);
    }
    if has(&["MYSQL_"]) {
        return Some(Flavor::MySql);
    }
    // The repository's last path component, without tag or digest: `bitnami/postgresql:16`.
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rfind(':') {
        Some(i) if !repo[i..].contains('/') => &repo[..i],
        _ => repo,
    };
    let name = repo.rsplit('/').next().unwrap_or(repo).to_ascii_lowercase();
    if name.contains("mariadb") {
        Some(Flavor::MariaDb)
    } else if name.contains("postgres") || name.contains("postgis") || name.contains("timescale") {
        Some(Flavor::Postgres)
    } else if name.contains("mysql") || name.contains("percona") {
        Some(Flavor::MySql)
    } else {
        None
    }
}

/// The variables whose `_FILE` variant holds the value in a file inside the container
/// (Docker secrets), as the official images' entrypoints read them.
pub const FILE_VARIABLES: &[&str] = &[
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "MYSQL_ROOT_PASSWORD",
    "MYSQL_USER",
    "MYSQL_PASSWORD",
    "MYSQL_DATABASE",
    "MARIADB_ROOT_PASSWORD",
    "MARIADB_USER",
    "MARIADB_PASSWORD",
    "MARIADB_DATABASE",
];

/// A user and password to connect with.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: Option<SecretString>,
    /// Where they came from, for messages ("POSTGRES_USER/POSTGRES_PASSWORD").
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("source", &self.source)
            .finish()
    }
}

/// What the user gave our tool, overriding the container's environment.
#[derive(Default)]
pub struct Overrides {
    pub user: Option<String>,
    pub password: Option<SecretString>,
}

/// The credentials to use: the flags first, then the container's own variables (with `_FILE`
/// values already read into the plain names). `None` when nothing usable is there.
pub fn credentials(
    flavor: Flavor,
    env: &HashMap<String, String>,
    given: &Overrides,
) -> Option<Credentials> {
    let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
    let from_env: Option<(String, Option<String>, String)> = match flavor {
        Flavor::Postgres => {
            // The official image's user defaults to `postgres`; bitnami's variables as well.
            let user = get("POSTGRES_USER")
                .or_else(|| get("POSTGRESQL_USERNAME"))
                .unwrap_or_else(|| "postgres".into());
            let password = get("POSTGRES_PASSWORD").or_else(|| get("POSTGRESQL_PASSWORD"));
            Some((user, password, "POSTGRES_USER/POSTGRES_PASSWORD".into()))
        }
        Flavor::MySql | Flavor::MariaDb => {
            let root = get("MARIADB_ROOT_PASSWORD").or_else(|| get("MYSQL_ROOT_PASSWORD"));
            let empty_root = [
                "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD",
                "MYSQL_ALLOW_EMPTY_PASSWORD",
            ]
            .iter()
            .any(|k| env.get(*k).is_some_and(|v| !v.is_empty() && v != "no"));
            let user = get("MARIADB_USER").or_else(|| get("MYSQL_USER"));
            let user_pw = get("MARIADB_PASSWORD").or_else(|| get("MYSQL_PASSWORD"));
            if let Some(pw) = root {
                Some(("root".into(), Some(pw), "MYSQL_ROOT_PASSWORD".into()))
            } else if empty_root {
                Some(("root".into(), None, "MYSQL_ALLOW_EMPTY_PASSWORD".into()))
            } else {
                user.map(|u| (u, user_pw, "MYSQL_USER/MYSQL_PASSWORD".into()))
            }
        }
    };
    match (from_env, &given.user, &given.password) {
        (_, Some(user), Some(pw)) => Some(Credentials {
            user: user.clone(),
            password: Some(pw.clone()),
            source: "--user and the password given".into(),
        }),
        (Some((user, pw, source)), flag_user, flag_pw) => Some(Credentials {
            user: flag_user.clone().unwrap_or(user),
            password: flag_pw.clone().or(pw.map(SecretString::from)),
            source: if flag_user.is_some() || flag_pw.is_some() {
                format!("the flags and {source}")
            } else {
                source
            },
        }),
        (None, Some(user), None) => Some(Credentials {
            user: user.clone(),
            password: None,
            source: "--user".into(),
        }),
        (None, None, Some(pw)) if flavor == Flavor::Postgres => Some(Credentials {
            user: "postgres".into(),
            password: Some(pw.clone()),
            source: "the password given".into(),
        }),
        (None, None, Some(pw)) => Some(Credentials {
            user: "root".into(),
            password: Some(pw.clone()),
            source: "the password given".into(),
        }),
        (None, None, None) => None,
    }
}

/// The database the container was created for (`POSTGRES_DB`, `MYSQL_DATABASE`), if any.
pub fn default_database(flavor: Flavor, env: &HashMap<String, String>) -> Option<String> {
    let keys: &[&str] = match flavor {
        Flavor::Postgres => &["POSTGRES_DB", "POSTGRESQL_DATABASE"],
        Flavor::MySql | Flavor::MariaDb => &["MARIADB_DATABASE", "MYSQL_DATABASE"],
    };
    keys.iter()
        .find_map(|k| env.get(*k).filter(|v| !v.is_empty()).cloned())
}

/// `KEY=value` lines into a map (a value may contain `=`).
pub fn parse_env(lines: &[String]) -> HashMap<String, String> {
    lines
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flavors_from_env_and_image() {
        let none = HashMap::new();
        assert_eq!(flavor_from("postgres:16", &none), Some(Flavor::Postgres));
        assert_eq!(
            flavor_from("postgis/postgis:16-3.4", &none),
            Some(Flavor::Postgres)
        );
        assert_eq!(
            flavor_from("docker.io/bitnami/postgresql:16", &none),
            Some(Flavor::Postgres)
        );
        assert_eq!(
            flavor_from("localhost:5000/mysql:8.0", &none),
            Some(Flavor::MySql)
        );
        assert_eq!(
            flavor_from("percona/percona-server", &none),
            Some(Flavor::MySql)
        );
        assert_eq!(
            flavor_from("mariadb:11@sha256:abc", &none),
            Some(Flavor::MariaDb)
        );
        assert_eq!(flavor_from("busybox", &none), None);
        // A registry host with a port is not a tag.
        assert_eq!(flavor_from("postgres.example:5000/app", &none), None);
        // Variables beat a neutral image name; MariaDB beats its MYSQL_* compatibility names.
        let e = env(&[("PG_MAJOR", "16")]);
        assert_eq!(flavor_from("mycorp/db", &e), Some(Flavor::Postgres));
        let e = env(&[("MYSQL_ROOT_PASSWORD", "x"), ("MARIADB_VERSION", "11")]);
        assert_eq!(flavor_from("mycorp/db", &e), Some(Flavor::MariaDb));
        let e = env(&[("MYSQL_ROOT_PASSWORD", "x")]);
        assert_eq!(flavor_from("mycorp/db", &e), Some(Flavor::MySql));
        let e = env(&[("PATH", "/bin"), ("HOME", "/root")]);
        assert_eq!(flavor_from("mycorp/db", &e), None);
    }

    #[test]
    fn credentials_from_the_container() {
        let none = Overrides::default();
        let e = env(&[("POSTGRES_PASSWORD", "pw")]);
        let c = credentials(Flavor::Postgres, &e, &none).unwrap();
        assert_eq!(c.user, "postgres");
        assert_eq!(c.password.unwrap().expose_secret(), "pw");
        let e = env(&[("POSTGRES_USER", "app"), ("POSTGRES_PASSWORD", "pw")]);
        assert_eq!(
            credentials(Flavor::Postgres, &e, &none).unwrap().user,
            "app"
        );

        let e = env(&[
            ("MYSQL_ROOT_PASSWORD", "r"),
            ("MYSQL_USER", "u"),
            ("MYSQL_PASSWORD", "p"),
        ]);
        let c = credentials(Flavor::MySql, &e, &none).unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.unwrap().expose_secret()),
            ("root", "r")
        );
        let e = env(&[("MARIADB_ROOT_PASSWORD", "m")]);
        let c = credentials(Flavor::MariaDb, &e, &none).unwrap();
        assert_eq!(c.password.unwrap().expose_secret(), "m");
        // A random root password: fall back to the application user.
        let e = env(&[
            ("MYSQL_RANDOM_ROOT_PASSWORD", "yes"),
            ("MYSQL_USER", "u"),
            ("MYSQL_PASSWORD", "p"),
        ]);
        let c = credentials(Flavor::MySql, &e, &none).unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.unwrap().expose_secret()),
            ("u", "p")
        );
        let e = env(&[("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")]);
        let c = credentials(Flavor::MySql, &e, &none).unwrap();
        assert!(c.user == "root" && c.password.is_none());
        assert!(credentials(
            Flavor::MySql,
            &env(&[("MYSQL_RANDOM_ROOT_PASSWORD", "1")]),
            &none
        )
        .is_none());
    }

    #[test]
    fn flags_override_the_container() {
        let e = env(&[("POSTGRES_USER", "app"), ("POSTGRES_PASSWORD", "pw")]);
        let given = Overrides {
            user: None,
            password: Some(SecretString::from("flag")),
        };
        let c = credentials(Flavor::Postgres, &e, &given).unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.unwrap().expose_secret()),
            ("app", "flag")
        );
        let given = Overrides {
            user: Some("admin".into()),
            password: None,
        };
        let c = credentials(Flavor::MySql, &HashMap::new(), &given).unwrap();
        assert!(c.user == "admin" && c.password.is_none());
        assert!(!format!("{:?}", credentials(Flavor::Postgres, &e, &given)).contains("pw"));
    }

    #[test]
    fn default_database_and_env_parsing() {
        let e = parse_env(&["POSTGRES_DB=app".into(), "X=a=b".into(), "BAD".into()]);
        assert_eq!(e["X"], "a=b");
        assert_eq!(
            default_database(Flavor::Postgres, &e).as_deref(),
            Some("app")
        );
        assert_eq!(default_database(Flavor::MySql, &e), None);
    }
}
