//! PostgreSQL: the command lines of pg_dump, pg_dumpall, psql and pg_restore, and the queries
//! a restore needs. The password is never here: it travels as `PGPASSWORD` in the exec's
//! environment (see `Server::secret_env`).

use std::collections::HashSet;

use anyhow::Result;

use super::{sql_literal, DumpFormat, Scope, Server};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The dump command: `pg_dumpall` for everything, `pg_dump` (plain or custom) for one database.
/// pg_dump takes a consistent snapshot of the database by itself.
pub fn dump_command(user: &str, scope: &Scope, format: DumpFormat) -> Vec<String> {
    match scope {
        Scope::All => strings(&["pg_dumpall", "--no-password", "--username", user]),
        Scope::Database(db) => {
            let mut cmd = strings(&["pg_dump", "--no-password", "--username", user]);
            if format == DumpFormat::Custom {
                cmd.push("--format=custom".into());
            }
            cmd.push("--dbname".into());
            cmd.push(db.clone());
            cmd
        }
    }
}

/// `psql` to run a query and print bare values, one row a line.
fn query_command(user: &str, db: &str, sql: &str) -> Vec<String> {
    let mut cmd = psql(user, db);
    cmd.extend(strings(&["--tuples-only", "--no-align", "--command", sql]));
    cmd
}

/// psql without prompts or a psqlrc, stopping at the first error.
fn psql(user: &str, db: &str) -> Vec<String> {
    strings(&[
        "psql",
        "--no-password",
        "--no-psqlrc",
        "--set",
        "ON_ERROR_STOP=1",
        "--username",
        user,
        "--dbname",
        db,
    ])
}

/// Replays plain SQL from stdin, stopping at the first error. One database's dump runs in a
/// single transaction (all or nothing); a cluster dump cannot (CREATE DATABASE refuses to run
/// inside one).
pub fn psql_restore_command(user: &str, db: &str, single_transaction: bool) -> Vec<String> {
    let mut cmd = psql(user, db);
    cmd.push("--quiet".into());
    if single_transaction {
        cmd.push("--single-transaction".into());
    }
    cmd
}

/// Restores a custom-format dump from stdin into `db`, all or nothing.
pub fn pg_restore_command(user: &str, db: &str) -> Vec<String> {
    strings(&[
        "pg_restore",
        "--no-password",
        "--exit-on-error",
        "--single-transaction",
        "--username",
        user,
        "--dbname",
        db,
    ])
}

/// `"name"` with doubled quotes inside.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The database to connect to for administrative statements.
const MAINTENANCE_DB: &str = "postgres";

impl Server {
    async fn pg_query(&self, db: &str, sql: &str) -> Result<String> {
        let user = self.credentials.user.clone();
        self.run(query_command(&user, db, sql)).await
    }

    /// The server's version, e.g. `15.18 (Debian 15.18-0+deb12u1)`; also checks the credentials.
    pub async fn pg_version(&self) -> Result<String> {
        Ok(self
            .pg_query(MAINTENANCE_DB, "SHOW server_version")
            .await?
            .trim()
            .to_string())
    }

    pub async fn pg_database_exists(&self, db: &str) -> Result<bool> {
        let sql = format!(
            "SELECT 1 FROM pg_database WHERE datname = {}",
            sql_literal(db)
        );
        Ok(self.pg_query(MAINTENANCE_DB, &sql).await?.trim() == "1")
    }

    /// Whether `db` holds any table, view, sequence or function of its own.
    pub async fn pg_database_has_objects(&self, db: &str) -> Result<bool> {
        let sql = "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = \
                   c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%') + (SELECT count(*) FROM pg_proc p JOIN \
                   pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN \
                   ('pg_catalog', 'information_schema'))";
        Ok(self.pg_query(db, sql).await?.trim() != "0")
    }

    /// Creates `db`, empty.
    pub async fn pg_create_database(&self, db: &str) -> Result<()> {
        let sql = format!("CREATE DATABASE {}", ident(db));
        self.pg_query(MAINTENANCE_DB, &sql).await?;
        Ok(())
    }

    /// Drops `db` if it exists, disconnecting its sessions.
    pub async fn pg_drop_database(&self, db: &str) -> Result<()> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(db));
        self.pg_query(MAINTENANCE_DB, &sql).await?;
        Ok(())
    }

    /// Renames `db` to `aside` and `new` to `db` in one transaction (both or neither), after
    /// disconnecting the sessions of `db` (a database in use cannot be renamed; the rename
    /// waits a few seconds for them to go).
    pub async fn pg_rename_into_place(&self, db: &str, new: &str, aside: &str) -> Result<()> {
        let sql = format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = {} \
             AND pid <> pg_backend_pid(); ALTER DATABASE {db} RENAME TO {aside}; \
             ALTER DATABASE {new} RENAME TO {db}",
            sql_literal(db),
            db = ident(db),
            aside = ident(aside),
            new = ident(new),
        );
        self.pg_query(MAINTENANCE_DB, &sql).await?;
        Ok(())
    }

    /// The roles that exist on the server.
    pub async fn pg_roles(&self) -> Result<HashSet<String>> {
        let out = self
            .pg_query(MAINTENANCE_DB, "SELECT rolname FROM pg_roles")
            .await?;
        Ok(out.lines().map(|l| l.to_string()).collect())
    }
}

/// Adapts a pg_dumpall script for replaying with ON_ERROR_STOP onto a running server:
/// `CREATE ROLE x;` is dropped for roles that already exist (the `ALTER ROLE` pg_dumpall writes
/// next sets their attributes; pg_dumpall itself says the CREATE may fail), and with `force`
/// each `CREATE DATABASE x` is preceded by a `DROP DATABASE IF EXISTS x WITH (FORCE)`. COPY data
/// is passed through untouched.
pub struct ClusterFilter {
    existing_roles: HashSet<String>,
    force: bool,
    in_copy: bool,
}

impl ClusterFilter {
    pub fn new(existing_roles: HashSet<String>, force: bool) -> Self {
        ClusterFilter {
            existing_roles,
            force,
            in_copy: false,
        }
    }

    /// What to write for one line of the script (with its line break).
    pub fn line(&mut self, line: &[u8]) -> Option<Vec<u8>> {
        if self.in_copy {
            if line == b"\\.\n" || line == b"\\.\r\n" {
                self.in_copy = false;
            }
            return None;
        }
        let text = std::str::from_utf8(line).ok()?;
        if text.starts_with("COPY ") && text.trim_end().ends_with("FROM stdin;") {
            self.in_copy = true;
            return None;
        }
        if let Some(role) = text
            .strip_prefix("CREATE ROLE ")
            .and_then(|r| r.trim_end().strip_suffix(';'))
        {
            if self.existing_roles.contains(&unquote(role)) {
                return Some(Vec::new());
            }
        }
        if self.force {
            if let Some(rest) = text.strip_prefix("CREATE DATABASE ") {
                let name = take_ident(rest);
                let mut out =
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE);\n").into_bytes();
                out.extend_from_slice(line);
                return Some(out);
            }
        }
        None
    }
}

/// An identifier as written by pg_dump (`app`, `"My DB"`) at the start of `s`.
fn take_ident(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('"') {
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return &s[..i + 2];
            }
            i += 1;
        }
        s
    } else {
        s.split(|c: char| c.is_whitespace() || c == ';')
            .next()
            .unwrap_or(s)
    }
}

fn unquote(ident: &str) -> String {
    match ident.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => ident.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_no_password() {
        let cmd = dump_command("app", &Scope::Database("shop".into()), DumpFormat::Custom);
        assert_eq!(
            cmd.join(" "),
            "pg_dump --no-password --username app --format=custom --dbname shop"
        );
        assert_eq!(
            dump_command("app", &Scope::All, DumpFormat::Plain)[0],
            "pg_dumpall"
        );
        let restore = psql_restore_command("app", "shop", true).join(" ");
        assert!(restore.contains("ON_ERROR_STOP=1") && restore.contains("--single-transaction"));
    }

    #[test]
    fn cluster_filter_skips_existing_roles_and_drops_databases_with_force() {
        let roles = HashSet::from(["app".to_string(), "My Role".to_string()]);
        let mut f = ClusterFilter::new(roles, true);
        assert_eq!(f.line(b"CREATE ROLE app;\n"), Some(vec![]));
        assert_eq!(f.line(b"CREATE ROLE \"My Role\";\n"), Some(vec![]));
        assert_eq!(f.line(b"CREATE ROLE reader;\n"), None);
        assert_eq!(f.line(b"ALTER ROLE app WITH LOGIN;\n"), None);
        let out = f
            .line(b"CREATE DATABASE \"my \"\"db\" WITH TEMPLATE = template0;\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "DROP DATABASE IF EXISTS \"my \"\"db\" WITH (FORCE);\n\
             CREATE DATABASE \"my \"\"db\" WITH TEMPLATE = template0;\n"
        );
        // COPY data is data, whatever it looks like.
        assert_eq!(f.line(b"COPY public.t (a) FROM stdin;\n"), None);
        assert_eq!(f.line(b"CREATE ROLE app;\n"), None);
        assert_eq!(f.line(b"\\.\n"), None);
        assert_eq!(f.line(b"CREATE ROLE app;\n"), Some(vec![]));
        let mut no_force = ClusterFilter::new(HashSet::new(), false);
        assert_eq!(
            no_force.line(b"CREATE DATABASE shop WITH OWNER = app;\n"),
            None
        );
    }
}
