//! Command-line definitions only: clap types, including Docker's global flags that arrive before
//! the plugin name. Deciding what they mean happens in `settings` and in each command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::archive::Compression;
use crate::db::DumpFormat;
use crate::schedule::Scheduler;

/// Fast, streaming backups and restores of Docker named volumes.
///
/// Works standalone (`docker-volume-backup save mydata`) and as the Docker CLI plugin
/// `docker volumebackup save mydata`. Talks to whatever daemon your Docker context points at.
#[derive(Debug, Parser)]
// The exit codes after the help come from `error::EXIT_CODES`, added where the command is built.
#[command(
    name = "docker-volume-backup",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub storage: StorageArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Docker's own global flags, accepted before or after the command, as `docker` passes them.
#[derive(Debug, Args, Default, Clone)]
pub struct GlobalArgs {
    /// Location of the client config files [env: DOCKER_CONFIG]
    #[arg(long, global = true, value_name = "DIR")]
    pub config: Option<PathBuf>,

    /// Name of the Docker context to use [env: DOCKER_CONTEXT]
    #[arg(short = 'c', long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// Daemon socket to connect to [env: DOCKER_HOST]
    #[arg(short = 'H', long = "host", global = true, value_name = "HOST")]
    pub host: Vec<String>,

    /// Enable debug output
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,

    /// Set the logging level (debug, info, warn, error, fatal)
    #[arg(short = 'l', long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Use TLS; implied by --tlsverify
    #[arg(long, global = true)]
    pub tls: bool,

    /// Use TLS and verify the remote [env: DOCKER_TLS_VERIFY]
    #[arg(long, global = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub tlsverify: Option<bool>,

    /// Trust certs signed only by this CA [default: DOCKER_CERT_PATH/ca.pem]
    #[arg(long, global = true, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,

    /// Path to TLS certificate file [default: DOCKER_CERT_PATH/cert.pem]
    #[arg(long, global = true, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,

    /// Path to TLS key file [default: DOCKER_CERT_PATH/key.pem]
    #[arg(long, global = true, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,

    /// No progress bars or summaries on stderr (errors are still printed)
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up volumes into compressed archives, streaming, with a manifest
    Save(SaveArgs),
    /// Restore an archive (file or `-` for stdin) into a volume, or the newest backup of a volume
    /// found in a destination (`restore DEST VOLUME`) or a restic repository (`restic:REPO`)
    Restore(RestoreArgs),
    /// List volumes with driver, size, compose project and the containers using them
    Ls(LsArgs),
    /// Show an archive's manifest and a summary of its contents
    Inspect(InspectArgs),
    /// Write entries of an archive into a host directory (no engine involved)
    Extract(ExtractArgs),
    /// Check an archive end to end; compare it with a volume, or test-restore it; or check a
    /// restic repository
    Verify(VerifyArgs),
    /// The newest backup of every volume, its age, and whether it meets the RPO
    Status(StatusArgs),
    /// Move volumes to the engine of another Docker context, streaming, verified end to end
    Migrate(MigrateArgs),
    /// Copy a volume into a new volume on the same engine, verified end to end
    Clone(CloneArgs),
    /// List the backups in a destination (a directory, s3://bucket/prefix or restic:REPO), newest
    /// first
    Backups(BackupsArgs),
    /// Delete old backups from a destination by restic-style retention rules, per volume
    Prune(PruneArgs),
    /// Remove dangling volumes (no container uses them) that have a fresh, readable backup
    Cleanup(CleanupArgs),
    /// Recurring backups: a user crontab entry or a systemd user timer
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Run a schedule now (`run-schedule ID`), or, without ID, stay in the foreground and
    /// run every schedule when it is due (for machines with neither cron nor systemd)
    RunSchedule(RunScheduleArgs),
    /// Back up every volume of a compose project into one bundle, its containers stopped
    #[command(name = "compose-export")]
    ComposeExport(ComposeExportArgs),
    /// Recreate a compose project's volumes from a bundle, labelled so that compose adopts them
    #[command(name = "compose-import")]
    ComposeImport(ComposeImportArgs),
    /// Dump a PostgreSQL, MySQL or MariaDB container's databases with its own tools
    DbDump(DbDumpArgs),
    /// Restore a database dump (file or `-` for stdin) into a database container
    DbRestore(DbRestoreArgs),
    /// Finish or undo what killed runs left: restart the containers they stopped, finish or roll
    /// back an interrupted restore, remove their helpers and partial files
    Recover(RecoverArgs),
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Volumes to back up
    #[arg(value_name = "VOLUME", required_unless_present_any = ["all", "project", "filter"],
          conflicts_with_all = ["all", "project", "filter"])]
    pub volumes: Vec<String>,

    #[command(flatten)]
    pub select: SelectArgs,

    #[command(flatten)]
    pub quiesce: QuiesceArgs,

    /// Output file, directory, or `-` for stdout [default: ./backups/<volume>_<YYYYmmdd_HHMMSS>.tar.zst]
    #[arg(short = 'o', long, value_name = "FILE|DIR|-")]
    pub output: Option<String>,

    /// Compression; by default taken from the output file's extension, else zstd
    #[arg(long, value_enum, value_name = "ALGO")]
    pub compression: Option<CompressionArg>,

    #[command(flatten)]
    pub tuning: TuningArgs,

    /// Overwrite an existing output file
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Destination: a directory, s3://bucket/prefix or restic:REPO; repeatable (the volume is
    /// read once and streamed to all of them) [names: <volume>_<YYYYmmdd_HHMMSS>.tar.zst]
    #[arg(long = "to", value_name = "DEST", conflicts_with = "output")]
    pub to: Vec<String>,

    #[command(flatten)]
    pub encrypt: EncryptArgs,

    #[command(flatten)]
    pub restic: ResticSaveArgs,

    #[command(flatten)]
    pub keep: KeepArgs,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// The password of restic repositories (`restic:REPO`).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "restic repositories")]
pub struct ResticPasswordArgs {
    /// Read the restic repository's password from FILE [else RESTIC_PASSWORD_FILE,
    /// RESTIC_PASSWORD, or a prompt on the terminal]
    #[arg(long, value_name = "FILE")]
    pub restic_password_file: Option<PathBuf>,
}

/// Saving into restic repositories (`--to restic:REPO`).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "restic repositories")]
pub struct ResticSaveArgs {
    #[command(flatten)]
    pub password: ResticPasswordArgs,

    /// Create a missing restic repository (format 2, compressed)
    #[arg(long)]
    pub init: bool,

    /// Read and chunk every file again instead of trusting the last snapshot's size and mtime
    /// (tar carries no ctime)
    #[arg(long)]
    pub rehash: bool,
}

/// Encrypting a new archive with age (all of the archive, manifest included).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Encryption (age)")]
pub struct EncryptArgs {
    /// Encrypt to this recipient: an age public key (age1...) or an ssh-ed25519 / ssh-rsa
    /// public key; repeatable
    #[arg(short = 'r', long = "encrypt-to", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Encrypt to the recipients listed in FILE (one a line, `#` comments, as `age -R`);
    /// repeatable
    #[arg(short = 'R', long = "encrypt-to-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// Encrypt with the passphrase in FILE (its first line break at the end is dropped)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["recipients", "recipients_files", "passphrase"])]
    pub passphrase_file: Option<PathBuf>,

    /// Encrypt with a passphrase asked on the terminal (twice, not echoed)
    #[arg(long, conflicts_with_all = ["recipients", "recipients_files"])]
    pub passphrase: bool,
}

impl EncryptArgs {
    pub fn any(&self) -> bool {
        !self.recipients.is_empty()
            || !self.recipients_files.is_empty()
            || self.passphrase_file.is_some()
            || self.passphrase
    }
}

/// Keys for reading an encrypted archive (found by content; plain archives need none).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Decryption (age)")]
pub struct DecryptArgs {
    /// Decrypt with the identities in FILE: an age identity file (`age-keygen` output) or an
    /// ssh private key (ed25519, RSA); repeatable
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,

    /// Decrypt with the passphrase in FILE (its first line break at the end is dropped)
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase")]
    pub passphrase_file: Option<PathBuf>,

    /// Decrypt with a passphrase asked on the terminal (not echoed) if the archive needs one
    #[arg(long)]
    pub passphrase: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Archive to restore, `-` to read it from stdin, or a destination (an existing directory,
    /// or s3://bucket/prefix not ending in an archive's name) to take VOLUME's newest backup from
    #[arg(value_name = "ARCHIVE|DEST|-")]
    pub archive: String,

    /// Target volume [default: the volume name recorded in the archive's manifest]; with DEST:
    /// the volume whose backup is restored (into itself unless --as)
    #[arg(value_name = "VOLUME")]
    pub volume: Option<String>,

    /// With DEST: restore into this volume instead of VOLUME
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,

    /// With DEST: the newest backup taken at or before TIME: RFC 3339, `YYYY-mm-dd[ HH:MM[:SS]]`
    /// in local time (a date alone means its end), or an age such as 90m, 2h, 3d
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,

    /// With DEST: take the backups another engine made (a label as `backups DEST` shows it, or
    /// `unknown` for archives of older versions) [default: this engine's]
    #[arg(long, value_name = "LABEL")]
    pub from_engine: Option<String>,

    /// Restore only the subtree P of the archive (e.g. `uploads/2024`), merged into the volume:
    /// the rest of the volume stays as it is
    #[arg(long, value_name = "P")]
    pub path: Option<String>,

    /// Replace the content of a non-empty volume; the result is exactly the archive's content
    /// (with --path: overwrite what exists under P)
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Create a missing volume with the driver and options the archive records (a bind mount,
    /// a network share), after showing them [default: a plain local volume, labels only]
    #[arg(long)]
    pub apply_volume_options: bool,
    /// Read the volume back and compare every entry with the archive, content and mtimes
    /// included (without it, counts, the root, the first and last entries and every entry's
    /// name, type, owner and mode are checked)
    #[arg(long)]
    pub verify: bool,

    /// With restic:REPO: this snapshot (an ID as `backups` shows it), or ID:/PATH to name the
    /// directory in it that becomes the volume (a snapshot restic made of several paths)
    #[arg(long, value_name = "ID[:/PATH]")]
    pub snapshot: Option<String>,

    #[command(flatten)]
    pub filter: EntryFilterArgs,

    #[command(flatten)]
    pub decrypt: DecryptArgs,

    #[command(flatten)]
    pub restic: ResticPasswordArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Show what was left and what would be done, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Entries of an archive to leave out of a restore.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct EntryFilterArgs {
    /// Skip device nodes (character and block devices) in the archive
    #[arg(long)]
    pub no_devices: bool,

    /// Skip setuid and setgid files in the archive
    #[arg(long)]
    pub no_setuid: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Archive file, or `-` for stdin
    #[arg(value_name = "ARCHIVE|-")]
    pub archive: String,

    /// List every entry (path, type, size, owner, mode, mtime) instead of the summary
    #[arg(long)]
    pub list: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    #[command(flatten)]
    pub decrypt: DecryptArgs,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Archive file, s3:// object, or `-` for stdin
    #[arg(value_name = "ARCHIVE|-")]
    pub archive: String,

    /// Only these paths of the volume and what is under them (as `inspect --list` shows them)
    /// [default: everything]
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,

    /// The directory to write into (created if missing); entries never land outside it
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output: PathBuf,

    /// Replace files that exist in DIR
    #[arg(short = 'f', long)]
    pub force: bool,

    #[command(flatten)]
    pub decrypt: DecryptArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Archive file, `-` for stdin, or restic:REPO (the repository is checked as `restic check`
    /// does)
    #[arg(value_name = "ARCHIVE|-|restic:REPO")]
    pub archive: String,

    /// With restic:REPO: also read and check every pack file
    #[arg(long)]
    pub read_data: bool,

    /// With restic:REPO: read and check only a part of the pack files, as restic's option:
    /// `n/m` (the n-th of m parts), `x%` (a random sample) or a size such as `500M`
    #[arg(long, value_name = "SUBSET", conflicts_with = "read_data")]
    pub read_data_subset: Option<String>,

    #[command(flatten)]
    pub restic: ResticPasswordArgs,

    /// Compare the archive with this live volume, entry by entry
    #[arg(long, value_name = "VOLUME", conflicts_with = "restore_test")]
    pub against: Option<String>,

    /// Restore into a scratch volume, compare it with the archive, and remove it
    #[arg(long)]
    pub restore_test: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    #[command(flatten)]
    pub decrypt: DecryptArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Where backups are kept (directories, s3://bucket/prefix, restic:REPO) [default: ./backups]
    #[arg(value_name = "DEST")]
    pub destinations: Vec<String>,

    #[command(flatten)]
    pub restic: ResticPasswordArgs,

    /// Recovery point objective: the newest backup must be younger than this (e.g. 24h, 7d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub rpo: std::time::Duration,

    /// Recovery time objective: the last test restore measured by `verify --restore-test` must
    /// have taken less than this (e.g. 30m, 2h); a volume never measured misses it
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub rto: Option<std::time::Duration>,

    /// Only these volumes [default: every volume on the engine and in the destinations]
    #[arg(long = "volume", value_name = "VOLUME")]
    pub volumes: Vec<String>,

    /// Output format (prometheus: node_exporter's textfile format)
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    pub format: StatusFormat,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Volumes to move (they stay on the source); or choose them with --project, --all, --filter
    #[arg(value_name = "VOLUME", required_unless_present_any = ["all", "project", "filter"],
          conflicts_with_all = ["all", "project", "filter"])]
    pub volumes: Vec<String>,

    /// The Docker context to copy to (`docker context ls`)
    #[arg(long, value_name = "CONTEXT")]
    pub to: String,

    /// Name on the destination [default: the same name]; only with one volume
    #[arg(long = "as", value_name = "NAME", conflicts_with_all = ["all", "project", "filter"])]
    pub as_name: Option<String>,

    /// The Docker context to copy from [default: the current one, as for every command]
    #[arg(long, value_name = "CONTEXT")]
    pub from: Option<String>,

    /// Replace the content of a non-empty destination volume (as `restore --force`)
    #[arg(short = 'f', long)]
    pub force: bool,

    #[command(flatten)]
    pub select: SelectArgs,

    #[command(flatten)]
    pub quiesce: QuiesceArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct CloneArgs {
    /// The volume to copy
    #[arg(value_name = "VOLUME")]
    pub volume: String,

    /// The new volume (created with the driver, options and labels of VOLUME)
    #[arg(value_name = "NEW")]
    pub new: String,

    #[command(flatten)]
    pub lock: LockArgs,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 90m, 24h, 7d, 2w)"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
    Prometheus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Where archives are kept in object storage: flags over the standard AWS settings.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "S3 (credentials: AWS_* variables, ~/.aws/credentials)")]
pub struct StorageArgs {
    /// S3 endpoint URL (MinIO, Ceph, R2...) [env: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// S3 region [env: AWS_REGION, AWS_DEFAULT_REGION; else the profile's; else us-east-1]
    #[arg(long, global = true, value_name = "REGION")]
    pub s3_region: Option<String>,

    /// AWS profile in ~/.aws/config and ~/.aws/credentials [env: AWS_PROFILE]
    #[arg(long, global = true, value_name = "NAME")]
    pub s3_profile: Option<String>,

    /// Path-style URLs (endpoint/bucket/key) [default: with --s3-endpoint; virtual-hosted on AWS]
    #[arg(long, global = true, conflicts_with = "s3_virtual_host")]
    pub s3_path_style: bool,

    /// Virtual-hosted URLs (bucket.endpoint/key)
    #[arg(long, global = true)]
    pub s3_virtual_host: bool,

    /// Part size of multipart uploads, at least 5MiB [default: 16MiB]
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    pub s3_part_size: Option<usize>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let lower = s.trim().to_ascii_lowercase();
    let (digits, unit) = lower
        .find(|c: char| !c.is_ascii_digit())
        .map_or((lower.as_str(), ""), |i| lower.split_at(i));
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s}: not a size (e.g. 16MiB)"))?;
    let mult = match unit.trim() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("{s}: unknown unit (use KiB, MiB, GiB)")),
    };
    Ok(n * mult)
}

/// Retention rules, as restic's `forget` has them; applied per volume.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Retention (restic's rules, per volume)")]
pub struct KeepArgs {
    /// Keep the N newest backups (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_last: Option<i32>,
    /// Keep the newest backup of each of the last N hours that have one (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_hourly: Option<i32>,
    /// Keep the newest backup of each of the last N days that have one (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_daily: Option<i32>,
    /// Keep the newest backup of each of the last N ISO weeks that have one (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_weekly: Option<i32>,
    /// Keep the newest backup of each of the last N months that have one (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_monthly: Option<i32>,
    /// Keep the newest backup of each of the last N years that have one (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_yearly: Option<i32>,
    /// Keep every backup younger than DURATION before the newest one (e.g. 7d, 2y5m7d3h)
    #[arg(long, value_name = "DURATION", value_parser = crate::retention::Within::parse)]
    pub keep_within: Option<crate::retention::Within>,
}

#[derive(Debug, Args)]
pub struct BackupsArgs {
    /// A directory, s3://bucket/prefix or restic:REPO
    #[arg(value_name = "DEST")]
    pub destination: String,

    /// Only this volume's backups
    #[arg(long, value_name = "VOLUME")]
    pub volume: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    #[command(flatten)]
    pub restic: ResticPasswordArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// A directory, s3://bucket/prefix or restic:REPO (its snapshots are forgotten, then the
    /// data no snapshot needs is pruned)
    #[arg(value_name = "DEST")]
    pub destination: String,

    /// Only this volume's backups [default: every volume, each on its own]
    #[arg(long, value_name = "VOLUME")]
    pub volume: Option<String>,

    /// Show what would be deleted and why the rest stays; delete nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub keep: KeepArgs,

    #[command(flatten)]
    pub restic: ResticPasswordArgs,

    #[command(flatten)]
    pub notify: NotifyArgs,
}
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Where the backups are (directories, s3://bucket/prefix); the newest backup of a volume in
    /// any of them counts
    #[arg(value_name = "DEST", required = true)]
    pub destinations: Vec<String>,

    /// Count the backups another engine made (a label as `backups DEST` shows it, or `unknown`
    /// for archives of older versions) [default: this engine's]
    #[arg(long, value_name = "LABEL")]
    pub from_engine: Option<String>,

    /// Remove a volume only when its newest backup is younger than this (e.g. 90m, 24h, 7d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "24h")]
    pub max_age: std::time::Duration,

    /// Only volumes matching a filter, as `docker volume prune --filter`
    /// (`label=k`, `label=k=v`, `label!=k`, `label!=k=v`); repeatable, all must match
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,

    /// Show what would be removed and why the rest stays; remove nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Do not ask for confirmation (needed when there is no terminal)
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Output format of the listing
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    #[command(flatten)]
    pub decrypt: DecryptArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Install a recurring backup of VOLUME... to DEST...
    Add(Box<ScheduleAddArgs>),
    /// List the schedules, their last run and its result
    Ls(ScheduleLsArgs),
    /// Remove a schedule (its crontab entry or timer, and its settings)
    Rm(ScheduleRmArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("when").required(true)))]
pub struct ScheduleAddArgs {
    /// Volumes to back up
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,

    /// Every day at this local time
    #[arg(long, value_name = "HH:MM", group = "when")]
    pub at: Option<String>,

    /// At this interval (minutes dividing an hour, hours dividing a day, or 1d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, group = "when")]
    pub every: Option<std::time::Duration>,

    /// A five-field cron expression (minute hour day-of-month month day-of-week)
    #[arg(long, value_name = "EXPR", group = "when")]
    pub cron: Option<String>,

    /// Destinations (directories or s3://bucket/prefix); repeatable
    #[arg(long = "to", value_name = "DEST", required = true)]
    pub to: Vec<String>,

    /// Install as a crontab entry or a systemd user timer [default: systemd when
    /// `systemctl --user` works, else crontab]
    #[arg(long, value_enum, value_name = "KIND")]
    pub using: Option<SchedulerArg>,

    /// Compression for the archives
    #[arg(long, value_enum, value_name = "ALGO")]
    pub compression: Option<CompressionArg>,

    #[command(flatten)]
    pub keep: KeepArgs,

    #[command(flatten)]
    pub restic: ResticPasswordArgs,

    #[command(flatten)]
    pub notify: NotifyArgs,

    /// After each run, write the Prometheus metrics of `status --format prometheus` (and the
    /// run's own) to FILE, atomically, for node_exporter's textfile collector
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    /// The RPO the metrics file reports against
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "25h",
          requires = "metrics_file")]
    pub rpo: std::time::Duration,
}

/// `--using`: what installs a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchedulerArg {
    Systemd,
    Cron,
}

impl From<SchedulerArg> for Scheduler {
    fn from(a: SchedulerArg) -> Scheduler {
        match a {
            SchedulerArg::Systemd => Scheduler::Systemd,
            SchedulerArg::Cron => Scheduler::Cron,
        }
    }
}

#[derive(Debug, Args)]
pub struct ScheduleLsArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ScheduleRmArgs {
    /// The schedule's ID (see `schedule ls`)
    #[arg(value_name = "ID")]
    pub id: String,
}

/// Telling someone how a run went: JSON posts and healthcheck pings.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Notifications")]
pub struct NotifyArgs {
    /// POST a JSON summary of the run (what, where, sizes, durations, the error if any) to URL;
    /// repeatable. One that cannot be delivered is a warning, never a failed run
    #[arg(long = "notify", value_name = "URL")]
    pub notify: Vec<String>,

    /// When to post to the --notify URLs
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = NotifyOn::Always)]
    pub notify_on: NotifyOn,

    /// A healthcheck URL (healthchecks.io, Uptime Kuma push): URL/start at the start, URL on
    /// success, URL/fail on failure
    #[arg(long, value_name = "URL")]
    pub ping: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum NotifyOn {
    /// On success and on failure
    #[default]
    Always,
    /// Only when the run fails
    Failure,
}

#[derive(Debug, Args)]
pub struct RunScheduleArgs {
    /// The schedule to run now [default: run every schedule when due, in the foreground]
    #[arg(value_name = "ID")]
    pub id: Option<String>,
}

/// How the project was named on the command line (the part of compose's own flags we take).
#[derive(Debug, Clone, Default, Args)]
pub struct ComposeArgs {
    /// Compose project name [env: COMPOSE_PROJECT_NAME] [default: `name:` in the compose file,
    /// else the directory name]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,

    /// Compose file; repeatable [env: COMPOSE_FILE] [default: compose.yaml, compose.yml,
    /// docker-compose.yml or docker-compose.yaml in the current directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Choosing many volumes at once; each goes into its own archive.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Many volumes")]
pub struct SelectArgs {
    /// Every volume on the engine
    #[arg(long)]
    pub all: bool,

    /// The volumes of this compose project (labelled com.docker.compose.project=P)
    #[arg(long, value_name = "P")]
    pub project: Option<String>,

    /// Volumes matching an engine filter, as `docker volume ls --filter`
    /// (`label=k=v`, `label=k`, `name=x`, `driver=d`, `dangling=true`); repeatable
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl SelectArgs {
    pub fn any(&self) -> bool {
        self.all || self.project.is_some() || !self.filter.is_empty()
    }
}

/// What to do when another run holds a volume (every command that reads or writes volumes
/// locks them on their engine, for as long as it works on them).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Locks")]
pub struct LockArgs {
    /// When another run holds a volume, wait at most DURATION for it (e.g. 30s, 10m, 2h), then
    /// fail [default: wait until it ends]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "no_wait")]
    pub wait: Option<std::time::Duration>,

    /// When another run holds a volume, fail at once instead of waiting
    #[arg(long)]
    pub no_wait: bool,
}

/// Keeping volumes still while they are read (opt-in for `save`).
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Consistency")]
pub struct QuiesceArgs {
    /// Stop the running containers that use the volumes (dependents first) and start them
    /// again afterwards, also on failure or Ctrl-C
    #[arg(long, conflicts_with = "pause")]
    pub stop: bool,

    /// Pause those containers instead of stopping them (frozen, not shut down)
    #[arg(long)]
    pub pause: bool,
}

#[derive(Debug, Args)]
pub struct ComposeExportArgs {
    #[command(flatten)]
    pub compose: ComposeArgs,

    /// Bundle file, directory, or `-` for stdout
    /// [default: ./backups/<project>_<YYYYmmdd_HHMMSS>.compose.tar]
    #[arg(short = 'o', long, value_name = "FILE|DIR|-", conflicts_with = "split")]
    pub output: Option<String>,

    /// Write one archive per volume into DIR instead (`DIR/<volume>.tar.zst`, as the seed's
    /// `migration/<volume>.tar.gz`), with the bundle manifest as `DIR/<project>.compose.json`
    #[arg(long, value_name = "DIR")]
    pub split: Option<std::path::PathBuf>,

    /// Leave the containers running (containers labelled
    /// docker-volume-backup.stop-during-backup=true are still stopped)
    #[arg(long, conflicts_with = "pause")]
    pub no_stop: bool,

    /// Pause the containers instead of stopping them
    #[arg(long)]
    pub pause: bool,

    /// Compression of each volume's archive [default: zstd]
    #[arg(long, value_enum, value_name = "ALGO")]
    pub compression: Option<CompressionArg>,

    #[command(flatten)]
    pub tuning: TuningArgs,

    /// Overwrite existing output files
    #[arg(long)]
    pub force: bool,

    /// Also dump every running database service (PostgreSQL, MySQL, MariaDB) with its own dump
    /// tool, every database of it, before the containers are stopped: `dumps/<service>.sql.zst`
    /// in the bundle, `DIR/<service>_all.sql.zst` with --split
    #[arg(long)]
    pub with_dumps: bool,

    #[command(flatten)]
    pub encrypt: EncryptArgs,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub notify: NotifyArgs,
}

#[derive(Debug, Args)]
pub struct ComposeImportArgs {
    /// A bundle from compose-export, a `--split` directory, `-` for stdin, or a destination (a
    /// directory without a `*.compose.json`, or s3://bucket/prefix) to take the newest bundle of
    /// the project -p names from
    #[arg(value_name = "BUNDLE|DIR|DEST|-")]
    pub bundle: String,

    /// Import under this project name [default: the bundle's project]; with DEST, also the
    /// project whose newest bundle is taken
    #[arg(short = 'p', long = "project-name", value_name = "NEW")]
    pub project_name: Option<String>,

    /// With DEST: take the bundles another engine made (a label as `backups DEST` shows it, or
    /// `unknown` for bundles of older versions) [default: this engine's]
    #[arg(long, value_name = "LABEL")]
    pub from_engine: Option<String>,

    /// Replace the content of volumes that exist and are not empty (with --replay-dumps: of
    /// databases that exist and are not empty)
    #[arg(long)]
    pub force: bool,

    /// Instead of restoring the volumes, replay the bundle's database dumps (compose-export
    /// --with-dumps) into the running containers of the same services of the project (bring it
    /// up first)
    #[arg(long)]
    pub replay_dumps: bool,

    /// Create missing volumes with the drivers and options the bundle records (bind mounts,
    /// network shares), after showing them [default: plain local volumes, labels only]
    #[arg(long, conflicts_with = "replay_dumps")]
    pub apply_volume_options: bool,

    #[command(flatten)]
    pub filter: EntryFilterArgs,

    #[command(flatten)]
    pub decrypt: DecryptArgs,

    #[command(flatten)]
    pub lock: LockArgs,
}

/// Credentials for a database container, instead of those in its environment. The password is
/// never a flag's value: it comes from a file or from an environment variable.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Credentials [default: from the container's environment]")]
pub struct DbCredentialArgs {
    /// Connect as this database user
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Read the password from FILE (its first line break at the end is dropped)
    #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,

    /// Read the password from the environment variable VAR (of this tool, not the container)
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

#[derive(Debug, Args)]
pub struct DbDumpArgs {
    /// The database container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Dump this database [default: POSTGRES_DB / MYSQL_DATABASE of the container, else all]
    #[arg(short = 'd', long, value_name = "DB", conflicts_with = "all")]
    pub database: Option<String>,

    /// Dump every database (pg_dumpall, mysqldump --all-databases)
    #[arg(long)]
    pub all: bool,

    /// Dump format: plain SQL, or PostgreSQL's custom format (pg_dump -Fc, for pg_restore)
    #[arg(long, value_enum, default_value_t = DumpFormatArg::Plain)]
    pub format: DumpFormatArg,

    /// Output file, directory, or `-` for stdout
    /// [default: ./backups/<container>_<db|all>_<YYYYmmdd_HHMMSS>.sql.zst, `.dump` for custom]
    #[arg(short = 'o', long, value_name = "FILE|DIR|-")]
    pub output: Option<String>,

    /// Compression of SQL dumps: zstd, gzip or none; by default taken from the output file's
    /// extension (`.sql.zst`, `.sql.gz`, `.sql`), else zstd
    #[arg(long, value_enum, value_name = "ALGO", hide_possible_values = true)]
    pub compression: Option<CompressionArg>,

    #[command(flatten)]
    pub tuning: TuningArgs,

    /// Overwrite an existing output file
    #[arg(short = 'f', long)]
    pub force: bool,

    #[command(flatten)]
    pub credentials: DbCredentialArgs,

    #[command(flatten)]
    pub notify: NotifyArgs,
}

#[derive(Debug, Args)]
pub struct DbRestoreArgs {
    /// The dump (SQL or PostgreSQL custom format, compressed or not), or `-` for stdin
    #[arg(value_name = "FILE|-")]
    pub input: String,

    /// The database container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Restore into this database [default: the one in the dump's manifest, else the
    /// container's POSTGRES_DB / MYSQL_DATABASE]
    #[arg(short = 'd', long, value_name = "DB")]
    pub database: Option<String>,

    /// Create the database if it does not exist
    #[arg(long)]
    pub create: bool,

    /// Restore over existing objects: a database that is not empty is replaced
    #[arg(short = 'f', long)]
    pub force: bool,

    #[command(flatten)]
    pub credentials: DbCredentialArgs,
}

/// How hard to compress: shared by every command that writes compressed output.
#[derive(Debug, Args, Default, Clone, Copy)]
pub struct TuningArgs {
    /// Compression level (zstd 1-19, gzip 1-9) [default: zstd 3, gzip 6]
    #[arg(long, value_name = "N")]
    pub level: Option<i32>,

    /// Compression threads for zstd [default: number of CPUs]
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,
}

/// `--compression`: the archive compressions, as the user names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// zstd, multi-threaded (`.tar.zst`)
    Zstd,
    /// gzip (`.tar.gz`, `.tgz`): what the seed's `tar czf` recipes make and read
    Gzip,
    /// a plain tar stream (`.tar`)
    None,
}

impl From<CompressionArg> for Compression {
    fn from(a: CompressionArg) -> Compression {
        match a {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::None => Compression::None,
        }
    }
}

/// `db-dump --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DumpFormatArg {
    /// Plain SQL (any engine), replayed with psql / mysql
    Plain,
    /// PostgreSQL's custom format (`pg_dump -Fc`), restored with pg_restore
    Custom,
}

impl From<DumpFormatArg> for DumpFormat {
    fn from(a: DumpFormatArg) -> DumpFormat {
        match a {
            DumpFormatArg::Plain => DumpFormat::Plain,
            DumpFormatArg::Custom => DumpFormat::Custom,
        }
    }
}

/// Docker's own global flags: shown once, in the top-level help, as `docker` does (they are
/// still accepted after any command).
const DOCKER_GLOBALS: &[&str] = &[
    "config",
    "context",
    "host",
    "debug",
    "log_level",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
];

/// The S3 flags: shown only on the commands that read or write a destination.
const S3_FLAGS: &[&str] = &[
    "s3_endpoint",
    "s3_region",
    "s3_profile",
    "s3_path_style",
    "s3_virtual_host",
    "s3_part_size",
];

/// The commands (by path from the top) that take a destination or an archive that may be in S3.
const TAKES_DESTINATION: &[&str] = &[
    "save",
    "restore",
    "inspect",
    "verify",
    "status",
    "backups",
    "prune",
    "cleanup",
    "compose-import",
    "db-restore",
    "schedule add",
];

/// Lays the help out like docker's: each command's `--help` shows its own flags, Docker's global
/// flags appear only in the top-level help, the S3 flags only where a destination is taken.
/// Parsing is unchanged: every global flag is still accepted before or after the command.
/// Call it after the bin name is set (building fixes the commands' names in usage lines).
pub fn docker_style_help(mut command: clap::Command) -> clap::Command {
    command.build();
    let command = command.mut_args(|a| hide_if(a, S3_FLAGS));
    hide_in_subcommands(command, "")
}

fn hide_in_subcommands(mut command: clap::Command, path: &str) -> clap::Command {
    for sub in command.get_subcommands_mut() {
        let sub_path = if path.is_empty() {
            sub.get_name().to_owned()
        } else {
            format!("{path} {}", sub.get_name())
        };
        let takes_destination = TAKES_DESTINATION.contains(&sub_path.as_str());
        let taken = std::mem::take(sub).mut_args(|a| {
            let a = hide_if(a, DOCKER_GLOBALS);
            if takes_destination {
                a
            } else {
                hide_if(a, S3_FLAGS)
            }
        });
        *sub = hide_in_subcommands(taken, &sub_path);
    }
    command
}

fn hide_if(arg: clap::Arg, ids: &[&str]) -> clap::Arg {
    if ids.contains(&arg.get_id().as_str()) {
        arg.hide(true)
    } else {
        arg
    }
}
