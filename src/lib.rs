//! docker-volume-backup: fast, streaming backups and restores of Docker named volumes, as a
//! standalone binary and as the Docker CLI plugin `docker volumebackup`.

// stdout is data and stderr is for people: every write to either goes through `output`.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod archive;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod db;
pub mod docker;
pub mod error;
pub mod exit;
pub mod journal;
pub mod keys;
#[cfg(test)]
mod layers;
pub mod notify;
pub mod ops;
pub mod output;
pub mod pipe;
pub mod plugin;
pub mod redact;
pub mod retention;
pub mod schedule;
pub mod settings;
pub mod storage;
pub mod url;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::error::Kind;
use crate::exit::classify;
use crate::settings::Ctx;

/// Runs the tool with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == "docker-cli-plugin-metadata")
    {
        return finish(output::data_line(&plugin::metadata()));
    }
    let as_plugin = plugin::is_plugin_invocation(args.first());
    let mut command = Cli::command().after_help(error::exit_codes_help());
    if as_plugin {
        // Help and errors then show what the user typed: `docker volumebackup save ...`.
        command = command.bin_name(format!("docker {}", plugin::PLUGIN_NAME));
    }
    let command = cli::docker_style_help(command);
    let args = if as_plugin {
        plugin::strip_plugin_name(args)
    } else {
        args
    };
    let recover = if as_plugin {
        format!("docker {} recover", plugin::PLUGIN_NAME)
    } else {
        "docker-volume-backup recover".to_string()
    };
    // Kept in the run's journal and shown after a crash: without the credentials of a URL
    // (`restic:rest:https://user:password@host/`).
    let command_line = args
        .iter()
        .skip(1)
        .map(|a| url::strip_in_text(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // Help, version and usage errors: clap writes them (help on stdout, with its colours).
            let _ = e.print();
            return if e.use_stderr() {
                Kind::Usage.exit_code()
            } else {
                0
            };
        }
    };
    let settings = settings::from_globals(&cli.global);
    let s3 = settings::storage::s3_options(&cli.storage);
    // OpenDAL's HTTP client needs a process-wide TLS crypto provider; another one may already
    // be installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let out = settings::printer(&cli.global);
    // Every process this run starts is marked as its own, before any thread runs: an ssh master
    // that outlives a killed run is told by it (`storage::restic::ssh_masters`).
    std::env::set_var(docker::owner::ENV_RUN, docker::owner::process_tag());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::message(&format!(
                "docker-volume-backup: error: cannot start the async runtime: {e}"
            ));
            return 1;
        }
    };
    // With the `failpoints` feature (tests only), FAILPOINTS=name=action stops the run at a
    // named step; without it this is nothing.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    // What a killed run left is said before anything else happens; `recover` shows it itself.
    if !matches!(cli.command, Command::Recover(_)) {
        if let Some(text) = journal::warning(&journal::leftovers(), &recover) {
            output::warn(&text);
        }
    }
    journal::begin(&command_line, &docker::owner::Owner::this_run().run);
    let code = runtime.block_on(async {
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone(), recover.clone());
        plugin::watch_cli_socket(cancel.clone());
        let ctx = Ctx {
            settings,
            cancel,
            s3,
            out,
            report: Default::default(),
        };
        finish(run(&ctx, cli.command).await)
    });
    journal::end();
    storage::restic::settle();
    // Blocking threads may still wait on a pipe; they hold nothing that needs cleaning.
    runtime.shutdown_background();
    code
}

/// Runs the command, reporting it to `--notify` and `--ping` URLs when asked (never changing its
/// outcome).
async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    let Some(plan) = settings::notify::plan(&command) else {
        return dispatch(ctx, command).await;
    };
    let reporting = notify::Run::start(plan).await;
    let result = dispatch(ctx, command).await;
    let error = result
        .as_ref()
        .err()
        .filter(|e| !output::is_stdout_closed(e))
        .map(|e| format!("{e:#}"));
    let engine = ctx.settings.endpoint().ok().map(|e| e.to_string());
    reporting.finish(engine, &ctx.report, error).await;
    result
}

async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Save(args) => commands::save::run(ctx, args).await,
        Command::Restore(args) => commands::restore::run(ctx, args).await,
        Command::Ls(args) => commands::ls::run(ctx, args).await,
        Command::Inspect(args) => commands::inspect::run(ctx, args).await,
        Command::Extract(args) => commands::extract::run(ctx, args).await,
        Command::Verify(args) => commands::verify::run(ctx, args).await,
        Command::Status(args) => commands::status::run(ctx, args).await,
        Command::Migrate(args) => commands::migrate::run(ctx, args).await,
        Command::Clone(args) => commands::clone::run(ctx, args).await,
        Command::Backups(args) => commands::backups::run(ctx, args).await,
        Command::Prune(args) => commands::prune::run(ctx, args).await,
        Command::Cleanup(args) => commands::cleanup::run(ctx, args).await,
        Command::Schedule(command) => commands::schedule::run(ctx, command).await,
        Command::RunSchedule(args) => commands::schedule::run_schedule(ctx, args).await,
        Command::DbDump(args) => commands::db_dump::run(ctx, args).await,
        Command::DbRestore(args) => commands::db_restore::run(ctx, args).await,
        Command::ComposeExport(args) => commands::compose_export::run(ctx, args).await,
        Command::ComposeImport(args) => commands::compose_import::run(ctx, args).await,
        Command::Recover(args) => commands::recover::run(ctx, args).await,
    }
}

/// The exit code for how a command ended, with the error reported if there was one.
fn finish(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        // Nobody reads stdout any more (`ls | head -1`): nothing failed, and no one to tell.
        Err(err) if output::is_stdout_closed(&err) => 0,
        Err(err) => report(&err),
    }
}

/// Prints an error with its causes and hint; returns the exit code for it.
fn report(err: &anyhow::Error) -> i32 {
    let (kind, hint) = classify(err);
    let mut msg = format!("docker-volume-backup: error: {err}");
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(&format!("\n  caused by: {text}"));
        }
    }
    if let Some(hint) = hint {
        msg.push_str(&format!("\n  hint: {hint}"));
    }
    output::message(&msg);
    kind.exit_code()
}

/// First Ctrl-C, SIGTERM or SIGHUP (a closed terminal, a dropped ssh session): cancel, and let
/// the run clean up (restart what it stopped, remove its helpers and partial files). A second
/// one leaves at once, except while the only copy of restored data is a scratch volume: then
/// the run finishes the swap, and only a third leaves, saying where the data is.
fn watch_signals(cancel: CancellationToken, recover: String) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let mut term = signal(SignalKind::terminate()).ok();
        let mut hup = signal(SignalKind::hangup()).ok();
        let mut presses = 0;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => { if r.is_err() { return; } }
                _ = next(&mut term) => {}
                _ = next(&mut hup) => {}
            }
            presses += 1;
            let only_copy = journal::only_copy_now();
            match (presses, only_copy) {
                (1, None) => {
                    output::message(
                        "\ninterrupted: cleaning up (press Ctrl-C again to quit at once)",
                    );
                    cancel.cancel();
                }
                (1, Some(data)) => {
                    output::message(&format!(
                        "\ninterrupted: the restored data is only in {data}; finishing the copy \
                         first"
                    ));
                    cancel.cancel();
                }
                (2, Some(data)) => output::message(&format!(
                    "interrupted again: the restored data is only in {data}; finishing the \
                     copy (press Ctrl-C once more to leave it there)"
                )),
                (_, Some(data)) => {
                    output::message(&format!(
                        "leaving: the restored data is in {data}; `{recover}` finishes the restore"
                    ));
                    std::process::exit(Kind::Interrupted.exit_code());
                }
                (_, None) => std::process::exit(Kind::Interrupted.exit_code()),
            }
        }
    });
}

/// The next delivery of a signal, or never when it could not be watched.
async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal.as_mut() {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
