//! What every operation gets from the run: the resolved Docker context options, how chatty to
//! be, and the cancellation token (Ctrl-C, the CLI's socket).

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::docker::context::{self, ContextOptions, Endpoint};
use crate::docker::Engine;

/// Settings shared by every command.
pub struct Settings {
    pub context: ContextOptions,
}

impl Settings {
    /// The endpoint of the user's Docker context, resolved as the docker CLI does.
    pub fn endpoint(&self) -> Result<Endpoint> {
        let home = dirs::home_dir();
        Ok(context::resolve(
            &self.context,
            &|key| std::env::var(key).ok(),
            home.as_deref(),
        )?)
    }

    /// The endpoint of the named context (`migrate --to/--from`), read from the same config
    /// directory; Docker's connection flags (`-H`, `--tls*`) do not apply to it.
    pub fn endpoint_of(&self, context: &str) -> Result<Endpoint> {
        let options = ContextOptions {
            config_dir: self.context.config_dir.clone(),
            context: Some(context.to_owned()),
            ..Default::default()
        };
        let home = dirs::home_dir();
        Ok(context::resolve(
            &options,
            &|key| std::env::var(key).ok(),
            home.as_deref(),
        )?)
    }
}

impl Settings {
    /// The endpoint a journal recorded: the named context, or (for the default context) the
    /// recorded host with this run's other connection flags (TLS).
    pub fn endpoint_of_record(&self, context: &str, host: &str) -> Result<Endpoint> {
        if context != context::DEFAULT_CONTEXT {
            return self.endpoint_of(context);
        }
        let options = ContextOptions {
            context: None,
            hosts: vec![host.to_owned()],
            ..self.context.clone()
        };
        let home = dirs::home_dir();
        Ok(context::resolve(
            &options,
            &|key| std::env::var(key).ok(),
            home.as_deref(),
        )?)
    }
}

/// What every command and operation gets from the run: the settings, the cancellation token
/// (Ctrl-C, SIGTERM, the CLI's socket), the S3 options and the printer.
pub struct Ctx {
    pub settings: Settings,
    pub cancel: CancellationToken,
    /// The S3 settings of this run (`--s3-*`).
    pub s3: crate::storage::S3Options,
    /// How chatty stderr is (`-q`, `-D`).
    pub out: crate::output::Printer,
    /// What the run wrote, for `--notify`'s summary.
    pub report: crate::notify::Report,
}

impl Ctx {
    /// Connects to the engine of the user's context.
    pub async fn engine(&self) -> Result<Engine> {
        let endpoint = self.settings.endpoint()?;
        self.out.debug(&format!("connecting to {endpoint}"));
        Engine::connect(endpoint, self.out).await
    }

    /// Fails with "interrupted" if the user cancelled.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(crate::error::UserError::interrupted().into());
        }
        Ok(())
    }
}
