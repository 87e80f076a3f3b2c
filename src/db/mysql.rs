//! MySQL and MariaDB: the command lines of mysqldump / mariadb-dump and mysql / mariadb, and the
//! queries a restore needs. The password travels as `MYSQL_PWD` in the exec's environment.

use anyhow::Result;

use super::{sql_literal, Scope, Server};

/// The dump command with a consistent snapshot (`--single-transaction`) and routines, events
/// and triggers. One database is dumped without `CREATE DATABASE`, so that it can be restored
/// under another name; `--all-databases` creates its databases itself.
pub fn dump_command(tool: &str, user: &str, scope: &Scope) -> Vec<String> {
    let mut cmd: Vec<String> = [
        tool,
        "--user",
        user,
        "--single-transaction",
        "--routines",
        "--events",
        "--triggers",
        "--hex-blob",
        "--default-character-set=utf8mb4",
    ]
    .map(String::from)
    .to_vec();
    match scope {
        Scope::All => cmd.push("--all-databases".into()),
        Scope::Database(db) => {
            // `--` so that a database called `-x` stays a name.
            cmd.push("--".into());
            cmd.push(db.clone());
        }
    }
    cmd
}

/// The client: `mariadb` where it exists (MariaDB 11 has no `mysql`), else `mysql`.
pub fn client_for(dump_tool: &str) -> &'static str {
    if dump_tool.starts_with("mariadb") {
        "mariadb"
    } else {
        "mysql"
    }
}

/// Replays SQL from stdin; the client stops at the first error and exits non-zero.
pub fn restore_command(client: &str, user: &str, db: Option<&str>) -> Vec<String> {
    let mut cmd: Vec<String> = [client, "--user", user, "--default-character-set=utf8mb4"]
        .map(String::from)
        .to_vec();
    if let Some(db) = db {
        cmd.push(format!("--database={db}"));
    }
    cmd
}

/// `` `name` `` with doubled backticks inside.
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Databases that belong to the server, not to users.
const SYSTEM_SCHEMAS: &str = "('mysql', 'information_schema', 'performance_schema', 'sys')";

impl Server {
    async fn my_query(&self, client: &str, sql: &str) -> Result<String> {
        let user = self.credentials.user.clone();
        let cmd: Vec<String> = [client, "--user", &user, "--batch", "--skip-column-names"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--execute".to_string(), sql.to_string()])
            .collect();
        self.run(cmd).await
    }

    /// The server's version, e.g. `10.11.19-MariaDB-0+deb12u1`; also checks the credentials.
    pub async fn my_version(&self, client: &str) -> Result<String> {
        Ok(self
            .my_query(client, "SELECT VERSION()")
            .await?
            .trim()
            .to_string())
    }

    pub async fn my_database_exists(&self, client: &str, db: &str) -> Result<bool> {
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = {}",
            sql_literal(db)
        );
        Ok(self.my_query(client, &sql).await?.trim() != "0")
    }

    /// Tables (and views) in `db`, or in every user database when `db` is `None`.
    pub async fn my_table_count(&self, client: &str, db: Option<&str>) -> Result<u64> {
        let filter = match db {
            Some(db) => format!("table_schema = {}", sql_literal(db)),
            None => format!("table_schema NOT IN {SYSTEM_SCHEMAS}"),
        };
        let sql = format!("SELECT COUNT(*) FROM information_schema.tables WHERE {filter}");
        Ok(self
            .my_query(client, &sql)
            .await?
            .trim()
            .parse()
            .unwrap_or(0))
    }

    pub async fn my_drop_database(&self, client: &str, db: &str) -> Result<()> {
        let sql = format!("DROP DATABASE IF EXISTS {}", ident(db));
        self.my_query(client, &sql).await?;
        Ok(())
    }

    pub async fn my_recreate_database(
        &self,
        client: &str,
        db: &str,
        drop_first: bool,
    ) -> Result<()> {
        let mut sql = String::new();
        if drop_first {
            sql.push_str(&format!("DROP DATABASE IF EXISTS {}; ", ident(db)));
        }
        sql.push_str(&format!("CREATE DATABASE {}", ident(db)));
        self.my_query(client, &sql).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_no_password() {
        let cmd = dump_command("mariadb-dump", "root", &Scope::Database("shop".into())).join(" ");
        assert!(cmd.starts_with("mariadb-dump --user root --single-transaction --routines"));
        assert!(cmd.ends_with("-- shop") && !cmd.contains("-p"));
        let all = dump_command("mysqldump", "root", &Scope::All).join(" ");
        assert!(all.ends_with("--all-databases"));
        assert_eq!(client_for("mysqldump"), "mysql");
        assert_eq!(
            restore_command("mariadb", "root", Some("shop")).join(" "),
            "mariadb --user root --default-character-set=utf8mb4 --database=shop"
        );
        assert_eq!(ident("a`b"), "`a``b`");
    }
}
