//! The resolve step: parsed arguments into settings. Docker's global flags become context
//! options here, and each flag group becomes a plain domain value in `flags`; nothing below the
//! commands sees a clap type.

pub mod flags;
pub mod keys;
pub mod notify;
pub mod storage;

use crate::cli::GlobalArgs;
use crate::docker::context::ContextOptions;
pub use crate::ops::ctx::{Ctx, Settings};
use crate::output::Printer;

/// Docker's global flags as the context options every command resolves its engine from.
pub fn from_globals(g: &GlobalArgs) -> Settings {
    Settings {
        context: ContextOptions {
            config_dir: g.config.clone(),
            context: g.context.clone(),
            hosts: g.host.clone(),
            tls: g.tls,
            tlsverify: g.tlsverify,
            tlscacert: g.tlscacert.clone(),
            tlscert: g.tlscert.clone(),
            tlskey: g.tlskey.clone(),
        },
    }
}

/// `-q`, `-D` and `--log-level debug`: how chatty stderr is.
pub fn printer(g: &GlobalArgs) -> Printer {
    let debug = g.debug
        || g.log_level
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("debug"));
    Printer::new(g.quiet, debug)
}
