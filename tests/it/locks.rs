//! Two runs at once: one lock per volume on the engine (a second run waits, or refuses with
//! `--no-wait`, or gives up after `--wait`), a lock a killed run left is taken over, and nothing a
//! run did not create is removed (a volume someone made meanwhile, another live run's helper).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// The exit code for a volume locked by another run.
const LOCKED: i32 = 10;

/// A busybox loop that appends a counter to /data/log every 0.1 s and exits on SIGTERM.
const WRITER: &str = "trap 'exit 0' TERM; i=$(wc -l < /data/log 2>/dev/null || echo 0); \
                      while true; do i=$((i+1)); echo $i >> /data/log; sleep 0.1; done";

fn writer(volume: &Volume) -> Container {
    let name = unique("lock-w");
    let mount = format!("{}:/data", volume.name);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-v",
        &mount,
        busybox(),
        "sh",
        "-c",
        WRITER,
    ]);
    Container { name }
}

fn lock_of(volume: &Volume) -> String {
    format!("dvb-lock-{}", volume.name)
}

fn exists(container: &str) -> bool {
    docker_run(&["inspect", container]).code == 0
}

/// Waits up to 60 s for `cond`.
#[track_caller]
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The log in an archive, restored: consecutive numbers from 1 (the writer was stopped, so no
/// line is half-written).
#[track_caller]
fn assert_consistent_log(archive: &std::path::Path) -> usize {
    let restored = Volume::named("lock-restored");
    run(&["restore", archive.to_str().unwrap(), &restored.name]).ok();
    let log = restored.sh("cat /data/log");
    let numbers: Vec<u64> = log.lines().map(|l| l.parse().unwrap()).collect();
    assert!(!numbers.is_empty());
    assert!(
        numbers.iter().enumerate().all(|(i, n)| *n == i as u64 + 1),
        "a consistent log in {}",
        archive.display()
    );
    numbers.len()
}

#[test]
fn two_stop_saves_of_one_volume_take_turns() {
    let vol = Volume::new("lock-turns");
    // Incompressible data at a slow level keeps the first save busy for a few seconds.
    vol.sh("head -c 25000000 /dev/urandom > /data/big");
    let app = writer(&vol);
    let restarts = || container_field(&app.name, "{{.State.StartedAt}}");
    let before = restarts();
    let (a, b) = (tempdir(), tempdir());
    let save = |dir: &tempfile::TempDir| {
        tool()
            .args(["save", &vol.name, "--stop", "--level", "19", "-o"])
            .arg(dir.path())
            .stderr(Stdio::piped())
            .start()
    };
    let first = save(&a);
    wait_until("the first save holds the lock", || exists(&lock_of(&vol)));
    std::thread::sleep(Duration::from_millis(500));
    let second = save(&b);
    let first = first.finish().ok();
    let after_first = restarts();
    let second = second.finish().ok();
    assert!(
        second.stderr.contains("is locked by `save` run")
            && second.stderr.contains("waiting until it ends"),
        "the second run says it waits\n{second}"
    );
    assert!(second.stderr.contains("locked volume"), "{second}");
    // Each run stopped the app itself and started it again: the second did not find it stopped
    // by the first (and then read it live after the first restarted it).
    for r in [&first, &second] {
        assert!(r.stderr.contains("stopping"), "{r}");
        assert!(r.stderr.contains("restarted"), "{r}");
    }
    assert_ne!(before, after_first);
    assert_ne!(
        after_first,
        restarts(),
        "the second run stopped the app again"
    );
    assert_eq!(container_field(&app.name, "{{.State.Status}}"), "running");
    let n1 = assert_consistent_log(&only_archive(a.path()));
    let n2 = assert_consistent_log(&only_archive(b.path()));
    assert!(
        n2 > n1,
        "the second archive was read after the app ran again"
    );
    assert!(!exists(&lock_of(&vol)), "the lock is released");
    assert_eq!(vol.helpers_left(), "");
}

#[test]
fn no_wait_refuses_wait_gives_up_and_a_killed_runs_lock_is_taken_over() {
    let vol = Volume::new("lock-held");
    vol.sh("echo data > /data/f");
    let dir = tempdir();
    let out = dir.path().to_str().unwrap().to_string() + "/";
    // A run that holds the lock and stays there.
    let mut holder = tool()
        .args(["save", &vol.name, "-o", &out])
        .env("FAILPOINTS", "locked=sleep(60000)")
        .stderr(Stdio::piped())
        .start();
    wait_until("the holder holds the lock", || exists(&lock_of(&vol)));

    let r = run(&["save", &vol.name, "-o", &out, "--no-wait"])
        .fails_with(LOCKED, "is locked by `save` run");
    assert!(r.stderr.contains(&format!("pid {}", holder.id())), "{r}");
    assert!(
        r.stderr.contains("--wait DURATION"),
        "the hint says what to do\n{r}"
    );

    let started = Instant::now();
    let r = run(&["save", &vol.name, "-o", &out, "--wait", "1s"]);
    let waited = started.elapsed();
    let r = r.fails_with(LOCKED, "still after waiting 1s");
    assert!(r.stderr.contains("waiting up to 1s"), "{r}");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "nothing saved by the refused runs"
    );

    // Ctrl-C while waiting: interrupted, and the holder's lock is not touched.
    let waiter = tool()
        .args(["save", &vol.name, "-o", &out])
        .stderr(Stdio::piped())
        .start();
    std::thread::sleep(Duration::from_millis(1500));
    let r = interrupt_after(waiter, || true).fails_with(130, "interrupted");
    assert!(r.stderr.contains("waiting until it ends"), "{r}");
    assert!(exists(&lock_of(&vol)), "the holder's lock stays");

    // kill -9: the lock stays, and the next run takes it over.
    let pid = holder.id().to_string();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let _ = holder.wait();
    assert!(
        exists(&lock_of(&vol)),
        "a killed run cannot release its lock"
    );
    let r = run(&["save", &vol.name, "-o", &out, "--no-wait"]).ok();
    assert!(
        r.stderr.contains("taking over the lock")
            && r.stderr.contains(&format!("its process {pid} is gone")),
        "{r}"
    );
    assert_eq!(files_in(dir.path()).len(), 1, "saved");
    assert!(!exists(&lock_of(&vol)), "released at the end");
}

/// This machine's identity as the tool records it: boot id and pid namespace.
fn machine() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    format!("{}/{}", boot.trim(), ns.display())
}

/// A process's start time in clock ticks since boot.
fn pid_start(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().to_string()
}

/// A helper container of a run with pid `pid`, as the tool labels them, mounting `volume`.
fn fake_helper(volume: &str, run: &str, pid: u32, start: &str) -> Container {
    let name = unique("lock-fake-helper");
    let labels = [
        "org.docker-volume-backup.helper=true".to_string(),
        format!("org.docker-volume-backup.helper.volume={volume}"),
        format!("org.docker-volume-backup.run={run}"),
        "org.docker-volume-backup.run.host=test".to_string(),
        format!("org.docker-volume-backup.run.machine={}", machine()),
        format!("org.docker-volume-backup.run.pid={pid}/{start}"),
    ];
    let mount = format!("{volume}:/volume");
    let mut args = vec!["create", "--name", &name, "--network", "none", "-v", &mount];
    for l in &labels {
        args.extend(["--label", l.as_str()]);
    }
    args.extend([busybox(), "true"]);
    docker(&args);
    Container { name }
}

#[test]
fn a_failed_restore_removes_only_what_its_run_made() {
    let src = Volume::new("lock-src");
    src.sh("echo theirs-not > /data/f");
    let dir = tempdir();
    let archive = dir.path().join("a.tar.zst");
    run(&["save", &src.name, "-o", archive.to_str().unwrap()]).ok();
    let theirs = |v: &Volume| v.sh("cat /data/mine");

    // Someone creates the volume between the tool's look (missing) and its create: the engine
    // answers the create with their volume, which the tool leaves alone.
    let target = Volume::named("lock-race");
    let child = tool()
        .args(["restore", archive.to_str().unwrap(), &target.name])
        .env("FAILPOINTS", "restore-before-create=sleep(4000)")
        .stderr(Stdio::piped())
        .start();
    wait_until("the restore holds the lock", || exists(&lock_of(&target)));
    std::thread::sleep(Duration::from_millis(1000));
    docker(&["volume", "create", &target.name]);
    target.sh("echo mine > /data/mine");
    let r = child.finish();
    r.fails_with(5, "was created by someone else at the same moment");
    assert_eq!(theirs(&target), "mine\n", "their volume and data stay");
    assert!(
        target.sh("ls /data") == "mine\n",
        "nothing restored into it"
    );

    // Someone replaces the volume the tool created, before the restore writes into it.
    let target = Volume::named("lock-replaced");
    let child = tool()
        .args(["restore", archive.to_str().unwrap(), &target.name])
        .env("FAILPOINTS", "restore-after-create=sleep(4000)")
        .stderr(Stdio::piped())
        .start();
    wait_until("the restore created the volume", || target.exists());
    std::thread::sleep(Duration::from_millis(300));
    docker(&["volume", "rm", &target.name]);
    docker(&["volume", "create", &target.name]);
    target.sh("echo mine > /data/mine");
    let r = child.finish();
    r.fails_with(5, "was replaced by someone else");
    assert_eq!(theirs(&target), "mine\n");
    assert!(
        target.sh("ls /data") == "mine\n",
        "nothing restored into it"
    );
    assert_eq!(target.helpers_left(), "");

    // The restore's own volume, held by a helper of a live run and one of a dead run when the
    // restore fails: the dead run's helper goes, the live run's stays (and so does the volume).
    let big = dir.path().join("big.tar.zst");
    src.sh("head -c 3000000 /dev/urandom > /data/big");
    run(&["save", &src.name, "-o", big.to_str().unwrap()]).ok();
    let damaged = dir.path().join("damaged.tar.zst");
    let bytes = std::fs::read(&big).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let target = Volume::named("lock-strays");
    let child = tool()
        .args(["restore", damaged.to_str().unwrap(), &target.name])
        .env("FAILPOINTS", "restore-after-create=sleep(3000)")
        .stderr(Stdio::piped())
        .start();
    wait_until("the restore created the volume", || target.exists());
    let me = std::process::id();
    let live = fake_helper(&target.name, "11111111aaaaaaaa", me, &pid_start(me));
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let dead = fake_helper(&target.name, "22222222bbbbbbbb", gone_pid, "1");
    let r = child.finish();
    assert_ne!(r.code, 0, "{r}");
    assert!(exists(&live.name), "a live run's helper stays\n{r}");
    assert!(!exists(&dead.name), "a gone run's helper is removed\n{r}");
    assert!(r.stderr.contains("could not be removed"), "{r}");
}

/// A lock as a run on another machine would leave it: its process cannot be looked at from here.
fn foreign_lock(volume: &Volume) -> Container {
    let name = lock_of(volume);
    let labels = [
        "org.docker-volume-backup.helper=lock".to_string(),
        format!("org.docker-volume-backup.lock.volume={}", volume.name),
        "org.docker-volume-backup.lock.command=save".to_string(),
        "org.docker-volume-backup.run=33333333cccccccc".to_string(),
        "org.docker-volume-backup.run.host=elsewhere".to_string(),
        "org.docker-volume-backup.run.machine=another-boot/pid:[1]".to_string(),
        "org.docker-volume-backup.run.pid=1/1".to_string(),
    ];
    let mut args = vec!["create", "--name", &name, "--network", "none"];
    for l in &labels {
        args.extend(["--label", l.as_str()]);
    }
    args.extend([busybox(), "true"]);
    docker(&args);
    Container { name }
}

#[test]
fn another_machines_lock_is_taken_over_only_when_its_heartbeat_stops() {
    let vol = Volume::new("lock-foreign");
    vol.sh("echo data > /data/f");
    let dir = tempdir();
    let out = dir.path().to_str().unwrap().to_string() + "/";
    let lock = foreign_lock(&vol);
    // Its holder beats: the lock is not taken over, however long the wait.
    let beating = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let beater = {
        let (beating, name) = (beating.clone(), lock.name.clone());
        std::thread::spawn(move || {
            let file = tempfile::NamedTempFile::new().unwrap();
            let mut n = 0;
            while beating.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                std::fs::write(file.path(), format!("{n}\n")).unwrap();
                let to = format!("{name}:/heartbeat");
                docker(&["cp", file.path().to_str().unwrap(), &to]);
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let r = tool()
        .args(["save", &vol.name, "-o", &out, "--wait", "4s"])
        .env("FAILPOINTS", "lock-stale-after=return(2000)")
        .run();
    beating.store(false, std::sync::atomic::Ordering::Relaxed);
    beater.join().unwrap();
    r.fails_with(LOCKED, "pid 1 on host elsewhere");
    assert!(exists(&lock.name), "a beating lock stays");
    // Its heartbeat stands still: taken over once it has not changed for the stale time.
    let started = Instant::now();
    let r = tool()
        .args(["save", &vol.name, "-o", &out, "--wait", "30s"])
        .env("FAILPOINTS", "lock-stale-after=return(2000)")
        .run()
        .ok();
    assert!(
        r.stderr.contains("taking over the lock")
            && r.stderr.contains("its heartbeat has not changed"),
        "{r}"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(files_in(dir.path()).len(), 1, "saved");
    assert!(!exists(&lock.name), "taken over, then released");
}
