//! `db-dump` / `db-restore` against real PostgreSQL and MariaDB servers in containers, made
//! from images imported on the spot with the host's Debian server packages
//! (scripts/db-images.sh; nothing is pulled). One server per engine serves all of its checks.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Runs the tool in `dir` with extra environment.
fn run_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = tool();
    cmd.current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.run()
}

/// Files under `dir/backups` (dot-files and `.partial` included).
fn backups(dir: &Path) -> Vec<String> {
    files_in(&dir.join("backups"))
}

/// Runs `db-dump` in the background and, once the dump tool runs in the container, calls
/// `during` (with the dump still going); then waits for the tool to finish.
fn dump_while(
    dir: &Path,
    args: &[&str],
    server: &DbServer,
    tool_name: &str,
    during: impl FnOnce(),
) -> Run {
    let child = tool()
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .start();
    let start = Instant::now();
    while server.pids_of(tool_name).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{tool_name} never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    during();
    child.finish()
}

/// Kills the dump tool (`tool_name`: how its command line starts) inside the container during a dump: an error naming the tool, and no
/// file at all (not even a temporary one).
fn killed_dump_leaves_nothing(d: &Path, server: &DbServer, tool_name: &str) {
    let run = dump_while(d, &["db-dump", &server.name], server, tool_name, || {
        std::thread::sleep(Duration::from_millis(200));
        for pid in server.pids_of(tool_name) {
            docker_run(&["exec", &server.name, "kill", "-9", &pid]);
        }
    });
    assert_ne!(run.code, 0, "{}", run.stderr);
    let tool = tool_name.split(' ').next().unwrap();
    assert!(
        run.stderr.contains(&format!("{tool} failed")),
        "{}",
        run.stderr
    );
    assert_eq!(backups(d), Vec::<String>::new());
}

const PG_SETUP: &str = r#"
    CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL, born date);
    INSERT INTO people (name, born) VALUES ('Zoë Ångström', '1990-01-02'), ('李小龍', '1940-11-27'),
        ('O''Brien "quoted"', NULL), (E'tab\tand\nnewline', '2000-02-29'), ('emoji 🐘', NULL);
    CREATE SEQUENCE invoice_no START 1000 INCREMENT 7;
    SELECT nextval('invoice_no'), nextval('invoice_no'), nextval('invoice_no');
    CREATE VIEW adults AS SELECT name FROM people WHERE born < '2000-01-01';
    CREATE FUNCTION greet(t text) RETURNS text LANGUAGE sql AS $$ SELECT 'hello ' || t $$;
"#;

/// What must survive a round trip of the small PostgreSQL data.
fn pg_fingerprint(server: &DbServer, db: &str) -> String {
    server.sql(
        db,
        "SELECT (SELECT string_agg(id || ':' || name || ':' || coalesce(born::text, '-'), '|' ORDER BY id) FROM people)
         || '#' || (SELECT last_value FROM invoice_no)
         || '#' || (SELECT last_value FROM people_id_seq)
         || '#' || (SELECT count(*) FROM adults)
         || '#' || greet('x')",
    )
}

#[test]
fn postgres_dump_and_restore() {
    // The password as a Docker secret: a file named by POSTGRES_PASSWORD_FILE, which the tool
    // reads inside the container.
    let password = format!("pg-S3cret-{}", std::process::id());
    let secrets = tempdir();
    std::fs::write(secrets.path().join("pg_password"), format!("{password}\n")).unwrap();
    let mount = format!("{}:/run/secrets:ro", secrets.path().display());
    let server = DbServer::start(
        "postgres",
        &[
            ("POSTGRES_USER", "app"),
            ("POSTGRES_PASSWORD_FILE", "/run/secrets/pg_password"),
            ("POSTGRES_DB", "appdb"),
        ],
        &["-v", &mount],
        &password,
    );
    let c = server.name.as_str();
    server.sql("appdb", PG_SETUP);
    server.sql("postgres", "CREATE DATABASE second");
    server.sql("second", PG_SETUP);
    server.sql(
        "second",
        "INSERT INTO people (name) VALUES ('only in second')",
    );
    let appdb = pg_fingerprint(&server, "appdb");
    let second = pg_fingerprint(&server, "second");
    assert!(
        appdb.contains("Zoë Ångström") && appdb.contains("#1014#"),
        "{appdb}"
    );
    let dir = tempdir();
    let d = dir.path();

    // --all (pg_dumpall): refused over existing databases without --force, then replaces them.
    run_in(d, &["db-dump", c, "--all", "-o", "all.sql.zst"]).ok();
    server.sql("second", "DELETE FROM people");
    run_in(d, &["db-restore", "all.sql.zst", c])
        .fails_with(1, "already exists")
        .fails_with(1, "--force");
    run_in(d, &["db-restore", "all.sql.zst", c, "--force"]).ok();
    assert_eq!(pg_fingerprint(&server, "second"), second);
    assert_eq!(pg_fingerprint(&server, "appdb"), appdb);

    // Custom format, into a new database.
    let run = run_in(
        d,
        &["db-dump", c, "--database", "second", "--format", "custom"],
    )
    .ok();
    assert!(run.stderr.contains("custom format"), "{}", run.stderr);
    let files = backups(d);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(&format!("{c}_second_")) && files[0].ends_with(".dump"));
    let custom = d.join("backups").join(&files[0]);
    let head = std::fs::read(&custom).unwrap();
    assert!(head.starts_with(b"PGDMP"), "pg_restore reads it by hand");
    let custom = custom.to_str().unwrap();
    run_in(d, &["db-restore", custom, c, "--database", "second_copy"]).fails_with(4, "--create");
    run_in(
        d,
        &[
            "db-restore",
            custom,
            c,
            "--database",
            "second_copy",
            "--create",
        ],
    )
    .ok();
    assert_eq!(pg_fingerprint(&server, "second_copy"), second);
    // Not over a database that holds objects, unless --force; with it, replaced, not merged.
    run_in(d, &["db-restore", custom, c, "--database", "appdb"]).fails_with(5, "not empty");
    server.sql("second_copy", "CREATE TABLE extra (x int)");
    run_in(
        d,
        &[
            "db-restore",
            custom,
            c,
            "--database",
            "second_copy",
            "--force",
        ],
    )
    .ok();
    assert_eq!(
        server.sql("second_copy", "SELECT to_regclass('extra') IS NULL"),
        "t"
    );
    assert_eq!(pg_fingerprint(&server, "second_copy"), second);

    // Plain SQL by hand: `zstd -d | psql` works despite the manifest line.
    run_in(d, &["db-dump", c, "-d", "second", "-o", "second.sql.zst"]).ok();
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc second.sql.zst | docker exec -i -e PGPASSWORD='{password}' {c} \
             sh -c 'createdb -U app by_hand && psql -X -q -v ON_ERROR_STOP=1 -U app -d by_hand' \
             >/dev/null"
        ))
        .current_dir(d)
        .run()
        .ok();
    assert_eq!(pg_fingerprint(&server, "by_hand"), second);
    std::fs::remove_dir_all(d.join("backups")).unwrap();

    // About 100 MB of rows, made inside the server.
    server.sql(
        "appdb",
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) || repeat('ü', 60) AS payload
         FROM generate_series(1, 700000) g; ALTER TABLE big ADD PRIMARY KEY (id)",
    );
    let big = "SELECT count(*) || ':' || sum(hashtext(payload)) FROM big";
    let big_print = server.sql("appdb", big);

    // The default database is POSTGRES_DB; the password is in no command line meanwhile.
    let mut seen = String::new();
    let run = dump_while(d, &["db-dump", c], &server, "pg_dump --no-password", || {
        seen = server.command_lines();
    });
    let run = run.ok();
    assert!(seen.contains("pg_dump"), "{seen}");
    assert!(
        !seen.contains(&password),
        "password in a command line: {seen}"
    );
    assert!(!run.stderr.contains(&password));
    let files = backups(d);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with(&format!("{c}_appdb_")) && files[0].ends_with(".sql.zst"),
        "{files:?}"
    );
    let plain = d.join("backups").join(&files[0]);
    let plain = plain.to_str().unwrap();
    run_in(
        d,
        &[
            "db-restore",
            plain,
            c,
            "--database",
            "appdb_copy",
            "--create",
        ],
    )
    .ok();
    assert_eq!(server.sql("appdb_copy", big), big_print);
    assert_eq!(pg_fingerprint(&server, "appdb_copy"), appdb);

    // A cut dump stops the restore and rolls it back: no half database.
    let bytes = std::fs::read(plain).unwrap();
    std::fs::write(d.join("cut.sql.zst"), &bytes[..bytes.len() / 4]).unwrap();
    run_in(
        d,
        &[
            "db-restore",
            "cut.sql.zst",
            c,
            "--database",
            "cut",
            "--create",
        ],
    )
    .fails_with(6, "truncated");
    assert_eq!(
        server.sql(
            "cut",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
    std::fs::remove_dir_all(d.join("backups")).unwrap();

    // A dump killed midway: an error with the tool named, and no file.
    killed_dump_leaves_nothing(d, &server, "pg_dump --no-password");

    // pg_dumpall writes SQL only.
    run_in(d, &["db-dump", c, "--all", "--format", "custom"]).fails_with(2, "--database DB");
    // A wrong password (from a file: never a flag's value): the server's message, no file.
    std::fs::write(d.join("pw"), "not-the-password\n").unwrap();
    run_in(d, &["db-dump", c, "--password-file", "pw"])
        .fails_with(1, "password authentication failed")
        .fails_with(1, "--password-file");
    run_env(
        d,
        &[("WRONG_PW", "nope")],
        &["db-dump", c, "--password-env", "WRONG_PW"],
    )
    .fails_with(1, "password authentication failed");
    assert_eq!(backups(d), Vec::<String>::new());
    // The right one from our own environment works.
    run_env(
        d,
        &[("GOOD_PW", &password)],
        &[
            "db-dump",
            c,
            "--database",
            "second",
            "--password-env",
            "GOOD_PW",
            "-o",
            "-",
        ],
    )
    .ok();
}

const MARIADB_SETUP: &str = r#"
    CREATE TABLE people (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, born DATE)
        CHARACTER SET utf8mb4;
    INSERT INTO people (name, born) VALUES ('Zoë Ångström', '1990-01-02'), ('李小龍', '1940-11-27'),
        ('O''Brien "quoted"', NULL), ('tab\tand\nnewline', '2000-02-29'), ('emoji 🐬', NULL);
    DELETE FROM people WHERE id = 3;
    CREATE TABLE audit (n INT);
    CREATE TRIGGER count_people AFTER INSERT ON people FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
    CREATE VIEW adults AS SELECT name FROM people WHERE born < '2000-01-01';
    CREATE FUNCTION greet(t VARCHAR(20)) RETURNS VARCHAR(40) DETERMINISTIC RETURN CONCAT('hello ', t);
"#;

/// What must survive a round trip of the small MariaDB data.
fn mariadb_fingerprint(server: &DbServer, db: &str) -> String {
    server.sql(
        db,
        &format!(
            "SELECT CONCAT_WS('#',
               (SELECT GROUP_CONCAT(id, ':', name, ':', IFNULL(born, '-') ORDER BY id SEPARATOR '|') FROM people),
               (SELECT AUTO_INCREMENT FROM information_schema.tables WHERE table_schema = '{db}' AND table_name = 'people'),
               (SELECT COUNT(*) FROM adults),
               (SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = '{db}'),
               greet('x'))"
        ),
    )
}

#[test]
fn mariadb_dump_and_restore() {
    let password = format!("my-S3cret-{}", std::process::id());
    let server = DbServer::start(
        "mariadb",
        &[
            ("MARIADB_ROOT_PASSWORD", &password),
            ("MARIADB_DATABASE", "shop"),
        ],
        &[],
        &password,
    );
    let c = server.name.as_str();
    server.sql("shop", MARIADB_SETUP);
    server.sql("mysql", "CREATE DATABASE crm CHARACTER SET utf8mb4");
    server.sql("crm", MARIADB_SETUP);
    let shop = mariadb_fingerprint(&server, "shop");
    let crm = mariadb_fingerprint(&server, "crm");
    assert!(shop.contains("emoji 🐬") && shop.contains("#6#"), "{shop}");
    let dir = tempdir();
    let d = dir.path();

    // Every database: refused over databases with tables, replaced with --force.
    run_in(d, &["db-dump", c, "--all", "-o", "all.sql.gz"]).ok();
    let gz = std::fs::read(d.join("all.sql.gz")).unwrap();
    assert_eq!(gz[..2], [0x1f, 0x8b], "gzip by the file's extension");
    server.sql("crm", "DELETE FROM people");
    run_in(d, &["db-restore", "all.sql.gz", c]).fails_with(5, "--force");
    run_in(d, &["db-restore", "all.sql.gz", c, "--force"]).ok();
    assert_eq!(mariadb_fingerprint(&server, "crm"), crm);

    // To stdout, uncompressed, and back through stdin: into a new database, then over it.
    let sql = run_in(
        d,
        &[
            "db-dump",
            c,
            "-d",
            "crm",
            "-o",
            "-",
            "--compression",
            "none",
        ],
    )
    .ok()
    .stdout;
    assert!(String::from_utf8_lossy(&sql).starts_with("-- docker-volume-backup db-dump {"));
    for extra in ["--create", "--force"] {
        let mut restore = tool()
            .current_dir(d)
            .args(["db-restore", "-", c, "-d", "crm_copy", extra])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .start();
        std::io::Write::write_all(&mut restore.stdin.take().unwrap(), &sql).unwrap();
        let run = restore.finish();
        run.ok();
        assert_eq!(mariadb_fingerprint(&server, "crm_copy"), crm);
    }

    // About 100 MB of rows, made inside the server.
    server.sql(
        "shop",
        "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(200)) CHARACTER SET utf8mb4;
         SET SESSION max_recursive_iterations = 2000000;
         INSERT INTO big WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 700000)
         SELECT n, CONCAT(MD5(n), REPEAT('-ü', 30)) FROM seq",
    );
    let big = "SELECT CONCAT(COUNT(*), ':', SUM(CRC32(payload))) FROM big";
    let big_print = server.sql("shop", big);

    // The default database is MARIADB_DATABASE; the password is in no command line meanwhile.
    let mut seen = String::new();
    let run = dump_while(d, &["db-dump", c], &server, "mariadb-dump --user", || {
        seen = server.command_lines();
    });
    let run = run.ok();
    assert!(
        run.stderr.contains("--single-transaction"),
        "{}",
        run.stderr
    );
    assert!(seen.contains("mariadb-dump"), "{seen}");
    assert!(
        !seen.contains(&password),
        "password in a command line: {seen}"
    );
    let files = backups(d);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(&format!("{c}_shop_")) && files[0].ends_with(".sql.zst"));
    let dump = d.join("backups").join(&files[0]);
    let dump = dump.to_str().unwrap();
    run_in(d, &["db-restore", dump, c]).fails_with(5, "not empty");
    run_in(
        d,
        &["db-restore", dump, c, "--database", "shop_copy", "--create"],
    )
    .ok();
    assert_eq!(server.sql("shop_copy", big), big_print);
    assert_eq!(mariadb_fingerprint(&server, "shop_copy"), shop);
    std::fs::remove_dir_all(d.join("backups")).unwrap();

    // A dump killed midway: an error with the tool named, and no file.
    killed_dump_leaves_nothing(d, &server, "mariadb-dump --user");

    // A wrong password: the server's message, no file.
    std::fs::write(d.join("pw"), "not-the-password").unwrap();
    run_in(d, &["db-dump", c, "--password-file", "pw"]).fails_with(1, "Access denied");
    assert_eq!(backups(d), Vec::<String>::new());
    // PostgreSQL's custom format is PostgreSQL's.
    run_in(d, &["db-dump", c, "--format", "custom"]).fails_with(2, "PostgreSQL's");
    // A PostgreSQL dump is not fed to MariaDB.
    std::fs::write(d.join("pg.sql"), "--\n-- PostgreSQL database dump\n--\n").unwrap();
    run_in(d, &["db-restore", "pg.sql", c, "-d", "shop"]).fails_with(2, "runs MariaDB");
}

#[test]
fn db_dump_refuses_what_is_not_a_running_database() {
    let dir = tempdir();
    let d = dir.path();
    // A container that is not a database at all.
    let plain = unique("busybox");
    docker(&[
        "run",
        "-d",
        "--name",
        &plain,
        "--network",
        "none",
        busybox(),
        "sleep",
        "600",
    ]);
    let _plain = Container {
        name: plain.clone(),
    };
    run_in(d, &["db-dump", &plain])
        .fails_with(1, "is not a PostgreSQL, MySQL or MariaDB container");
    // One that claims to be PostgreSQL but has no pg_dump.
    let fake = unique("fakepg");
    docker(&[
        "run",
        "-d",
        "--name",
        &fake,
        "--network",
        "none",
        "-e",
        "POSTGRES_PASSWORD=x",
        busybox(),
        "sleep",
        "600",
    ]);
    let _fake = Container { name: fake.clone() };
    run_in(d, &["db-dump", &fake, "--database", "x"]).fails_with(1, "`pg_dump` is not available");
    // No POSTGRES_DB: everything, with pg_dumpall.
    run_in(d, &["db-dump", &fake]).fails_with(1, "`pg_dumpall` is not available");
    // A stopped one.
    let stopped = unique("stoppedpg");
    docker(&[
        "create",
        "--name",
        &stopped,
        "-e",
        "POSTGRES_PASSWORD=x",
        busybox(),
        "true",
    ]);
    let _stopped = Container {
        name: stopped.clone(),
    };
    run_in(d, &["db-dump", &stopped]).fails_with(1, "is not running");
    // And one that does not exist.
    run_in(d, &["db-dump", "dvbt-no-such-container"]).fails_with(4, "no container");
    assert_eq!(backups(d), Vec::<String>::new());
    // Restoring something that is not a dump fails before the engine is asked anything.
    std::fs::write(d.join("x.sql"), "hello, not a dump\n").unwrap();
    run_in(d, &["db-restore", "x.sql", &plain]).fails_with(6, "not a database dump");
}

/// The first half of a file.
fn cut(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len() / 2].to_vec()
}

/// A file with a stretch in its middle overwritten by text no client, decoder or archive
/// reader takes; its end (and so its end marker and trailer) is left as it was.
fn corrupt(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let junk = b"\n');\nTHIS IS NOT SQL;\n".repeat(12);
    let at = out.len() / 2;
    let end = (at + junk.len()).min(out.len());
    out[at..end].copy_from_slice(&junk[..end - at]);
    out
}

/// A dump of db-dump's without its first (manifest) and last (trailer) lines: SQL exactly as
/// the dump tool wrote it, as from any other source.
fn foreign(dump: &[u8]) -> Vec<u8> {
    let body = &dump[dump.iter().position(|&b| b == b'\n').unwrap() + 1..];
    let last = body[..body.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    assert!(body[last + 1..].starts_with(b"-- docker-volume-backup db-dump end {"));
    body[..last + 1].to_vec()
}

/// A file with one hex letter in its middle (of an md5 in the rows) changed to another: still
/// SQL every client takes, with other data in it.
fn flip(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = (out.len() / 2..)
        .find(|&i| (b'a'..=b'f').contains(&out[i]))
        .unwrap();
    out[at] = if out[at] == b'a' { b'b' } else { b'a' };
    out
}

/// `db-restore --force` of each format (plain SQL raw and compressed, custom, pg_dumpall), cut
/// in half and corrupted: a clear error, a non-zero exit, and every database exactly as it
/// was, with no new database left behind. The whole dumps still restore.
#[test]
fn postgres_damaged_dumps_leave_the_databases_as_they_were() {
    let password = "pg-damage-pw";
    let server = DbServer::start(
        "postgres",
        &[
            ("POSTGRES_USER", "app"),
            ("POSTGRES_PASSWORD", password),
            ("POSTGRES_DB", "appdb"),
        ],
        &[],
        password,
    );
    let c = server.name.as_str();
    let fill = "CREATE TABLE t (id int PRIMARY KEY, payload text);
        INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g";
    server.sql("appdb", fill);
    server.sql("postgres", "CREATE DATABASE other");
    server.sql("other", fill);
    let dir = tempdir();
    let d = dir.path();
    run_in(d, &["db-dump", c, "-o", "plain.sql"]).ok();
    run_in(d, &["db-dump", c, "-o", "plain.sql.zst"]).ok();
    run_in(
        d,
        &["db-dump", c, "--format", "custom", "-o", "custom.dump"],
    )
    .ok();
    run_in(d, &["db-dump", c, "--all", "-o", "all.sql"]).ok();
    run_in(d, &["db-dump", c, "--all", "-o", "all.sql.zst"]).ok();
    let read = |name: &str| std::fs::read(d.join(name)).unwrap();
    let plain = read("plain.sql");
    assert!(plain.starts_with(b"-- docker-volume-backup db-dump {"));
    let text = String::from_utf8_lossy(&plain);
    assert!(
        text.trim_end()
            .rsplit('\n')
            .next()
            .unwrap()
            .starts_with("-- docker-volume-backup db-dump end {\"bytes\":"),
        "a trailer ends the dump: {}",
        &text[text.len() - 300..]
    );
    assert!(read("custom.dump").starts_with(b"PGDMP"));

    // What the databases hold after the dumps were made: a restore would change it.
    for db in ["appdb", "other"] {
        server.sql(db, "INSERT INTO t VALUES (20001, 'after the dump')");
    }
    let state = || {
        server.sql(
            "postgres",
            "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database \
             WHERE datname NOT LIKE 'template%'",
        ) + "|"
            + &server.sql("appdb", "SELECT count(*) || ':' || max(id) FROM t")
            + "|"
            + &server.sql("other", "SELECT count(*) || ':' || max(id) FROM t")
    };
    let before = state();
    assert_eq!(before, "appdb,other,postgres|20001:20001|20001:20001");

    // (file, database flag, damage, exit code, what the error says)
    type Damage = fn(&[u8]) -> Vec<u8>;
    let cases: &[(&str, bool, Damage, i32, &str)] = &[
        (
            "plain.sql",
            true,
            cut,
            6,
            "-- PostgreSQL database dump complete",
        ),
        // psql would take the changed rows: db-dump's checksum refuses them.
        ("plain.sql", true, flip, 6, "does not match the checksum"),
        ("plain.sql.zst", true, cut, 6, "truncated"),
        ("plain.sql.zst", true, corrupt, 6, "damaged"),
        ("custom.dump", true, cut, 1, "pg_restore failed"),
        ("custom.dump", true, corrupt, 1, "pg_restore failed"),
        ("all.sql", false, cut, 6, "cluster dump complete"),
        ("all.sql", false, flip, 6, "does not match the checksum"),
        ("all.sql", false, corrupt, 6, "does not match the checksum"),
        ("all.sql.zst", false, cut, 6, "truncated"),
        ("all.sql.zst", false, corrupt, 6, "damaged"),
    ];
    for (file, one, damage, code, says) in cases {
        std::fs::write(d.join("bad"), damage(&read(file))).unwrap();
        let mut args = vec!["db-restore", "bad", c, "--force"];
        if *one {
            args.extend(["--database", "appdb"]);
        }
        let run = run_in(d, &args);
        assert_eq!(run.code, *code, "{file}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{file}: {}", run.stderr);
        let left = if *one {
            "database `appdb` is as it was"
        } else {
            "nothing was changed"
        };
        assert!(run.stderr.contains(left), "{file}: {}", run.stderr);
        assert_eq!(state(), before, "{file} changed the server: {}", run.stderr);
    }

    // SQL that db-dump did not write (no manifest line) restores, with a warning.
    std::fs::write(d.join("foreign.sql"), foreign(&plain)).unwrap();
    let run = run_in(
        d,
        &[
            "db-restore",
            "foreign.sql",
            c,
            "-d",
            "elsewhere",
            "--create",
        ],
    )
    .ok();
    assert!(run.stderr.contains("not made by"), "{}", run.stderr);
    assert!(run.stderr.contains("`\\!`"), "{}", run.stderr);
    server.sql("postgres", "DROP DATABASE elsewhere");
    let run = run_in(
        d,
        &["db-restore", "plain.sql.zst", c, "-d", "appdb", "--force"],
    )
    .ok();
    assert!(!run.stderr.contains("not made by"), "{}", run.stderr);

    // The whole dumps replace the databases: their rows as dumped.
    for (file, one) in [
        ("plain.sql", true),
        ("custom.dump", true),
        ("all.sql.zst", false),
    ] {
        for db in ["appdb", "other"] {
            server.sql(
                db,
                "INSERT INTO t VALUES (20001, 'after the dump') ON CONFLICT DO NOTHING",
            );
        }
        let mut args = vec!["db-restore", file, c, "--force"];
        if one {
            args.extend(["--database", "appdb"]);
        }
        run_in(d, &args).ok();
        let other = if one { "20001:20001" } else { "20000:20000" };
        assert_eq!(
            state(),
            format!("appdb,other,postgres|20000:20000|{other}"),
            "{file}"
        );
    }
}

/// The same for MariaDB: a replaced database is first replayed into a scratch database, so a
/// dump that is whole at its end but damaged inside fails before the old one is dropped.
#[test]
fn mariadb_damaged_dumps_leave_the_databases_as_they_were() {
    let password = "my-damage-pw";
    let server = DbServer::start(
        "mariadb",
        &[
            ("MARIADB_ROOT_PASSWORD", password),
            ("MARIADB_DATABASE", "shop"),
        ],
        &[],
        password,
    );
    let c = server.name.as_str();
    let fill = "CREATE TABLE t (id INT PRIMARY KEY, payload VARCHAR(40));
        INSERT INTO t WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq
        WHERE n < 20000) SELECT n, MD5(n) FROM seq";
    server.sql(
        "shop",
        &format!("SET SESSION max_recursive_iterations = 100000; {fill}"),
    );
    server.sql("mysql", "CREATE DATABASE crm");
    server.sql(
        "crm",
        &format!("SET SESSION max_recursive_iterations = 100000; {fill}"),
    );
    let dir = tempdir();
    let d = dir.path();
    run_in(d, &["db-dump", c, "-o", "shop.sql"]).ok();
    run_in(d, &["db-dump", c, "-o", "shop.sql.zst"]).ok();
    run_in(d, &["db-dump", c, "--all", "-o", "all.sql"]).ok();
    let read = |name: &str| std::fs::read(d.join(name)).unwrap();
    // A dump that db-dump did not write: no trailer to check, only mysqldump's end line.
    std::fs::write(d.join("foreign.sql"), foreign(&read("shop.sql"))).unwrap();

    for db in ["shop", "crm"] {
        server.sql(db, "INSERT INTO t VALUES (20001, 'after the dump')");
    }
    let state = || {
        server.sql(
            "mysql",
            "SELECT GROUP_CONCAT(schema_name ORDER BY schema_name) FROM information_schema.schemata \
             WHERE schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
        ) + "|"
            + &server.sql("shop", "SELECT CONCAT(COUNT(*), ':', MAX(id)) FROM t")
            + "|"
            + &server.sql("crm", "SELECT CONCAT(COUNT(*), ':', MAX(id)) FROM t")
    };
    let before = state();
    assert_eq!(before, "crm,shop|20001:20001|20001:20001");

    type Damage = fn(&[u8]) -> Vec<u8>;
    let cases: &[(&str, bool, Damage, i32, &str, &str)] = &[
        (
            "shop.sql",
            true,
            cut,
            6,
            "-- Dump completed",
            "nothing was changed",
        ),
        (
            "shop.sql",
            true,
            flip,
            6,
            "does not match the checksum",
            "nothing was changed",
        ),
        (
            "shop.sql.zst",
            true,
            cut,
            6,
            "truncated",
            "nothing was changed",
        ),
        (
            "shop.sql.zst",
            true,
            corrupt,
            6,
            "damaged",
            "nothing was changed",
        ),
        // Whole at its end, no checksum: the trial replay fails, the database stays.
        (
            "foreign.sql",
            true,
            corrupt,
            1,
            "failed",
            "database `shop` is as it was",
        ),
        (
            "all.sql",
            false,
            cut,
            6,
            "-- Dump completed",
            "nothing was changed",
        ),
        (
            "all.sql",
            false,
            flip,
            6,
            "does not match the checksum",
            "nothing was changed",
        ),
    ];
    for (file, one, damage, code, says, left) in cases {
        std::fs::write(d.join("bad"), damage(&read(file))).unwrap();
        let mut args = vec!["db-restore", "bad", c, "--force"];
        if *one {
            args.extend(["--database", "shop"]);
        }
        let run = run_in(d, &args);
        assert_eq!(run.code, *code, "{file}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{file}: {}", run.stderr);
        assert!(run.stderr.contains(left), "{file}: {}", run.stderr);
        assert_eq!(state(), before, "{file} changed the server: {}", run.stderr);
    }

    // The whole dumps replace the databases.
    let run = run_in(
        d,
        &["db-restore", "foreign.sql", c, "-d", "shop", "--force"],
    )
    .ok();
    assert!(run.stderr.contains("not made by"), "{}", run.stderr);
    assert_eq!(state(), "crm,shop|20000:20000|20001:20001");
    run_in(d, &["db-restore", "all.sql", c, "--force"]).ok();
    assert_eq!(state(), "crm,shop|20000:20000|20000:20000");
}
