//! `ssh://` endpoints, reached the way the docker CLI reaches them (docker/cli `cli/connhelper`):
//! the system `ssh` runs `docker system dial-stdio` on the remote machine and HTTP travels over its
//! stdin and stdout. Running the user's own `ssh` honours their `~/.ssh/config`, agent, jump hosts
//! and known hosts. Like the CLI, every connection is one `ssh` process in a session of its own
//! (so Ctrl-C reaches us, not ssh, and cleanup can still talk to the remote engine, and ssh never
//! blocks on a password prompt on our terminal); connections are pooled and reused, because one
//! `ssh` + remote `docker` start costs about half a second.
//!
//! `argv.rs` builds the `ssh` command line, `failure.rs` sorts ssh's stderr into what the user
//! needs to hear, and `transport.rs` runs the processes and carries HTTP over them.

mod argv;
mod failure;
mod transport;

pub use argv::SshTarget;
pub use failure::{SshError, SshFailure};
pub use transport::{client, http_client, Dialer, FailureLog, SshStream};
