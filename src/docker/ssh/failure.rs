//! Why an ssh connection failed: ssh's (and the remote docker CLI's) stderr sorted into a few
//! failures, each with a message and a hint.

use std::fmt;

/// What went wrong on the ssh side, sorted from ssh's and the remote docker CLI's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshFailure {
    /// The ssh program itself could not be started.
    NoSshClient,
    /// No ssh connection: refused, unknown host, timeout, no route.
    Unreachable,
    /// The server refused our keys (or wanted a password we cannot ask for).
    Auth,
    /// The host key is unknown or changed.
    HostKey,
    /// Logged in, but there is no `docker` command on the remote machine.
    DockerMissing,
    /// The remote user may not use the Docker socket.
    SocketPermission,
    /// The remote docker CLI could not reach its daemon.
    DaemonDown,
    /// Anything else (the connection was cut, ssh was killed, ...).
    Other,
}

impl SshFailure {
    /// Sorts ssh's stderr (and its exit status) into a failure.
    pub fn classify(stderr: &str, exit_code: Option<i32>) -> SshFailure {
        let has = |needle: &str| stderr.contains(needle);
        if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            SshFailure::HostKey
        } else if has("Permission denied (") || has("Too many authentication failures") {
            SshFailure::Auth
        } else if has("Connection refused")
            || has("Could not resolve hostname")
            || has("No route to host")
            || has("Network is unreachable")
            || has("Connection timed out")
            || has("Operation timed out")
        {
            SshFailure::Unreachable
        } else if has("docker: command not found")
            || has("docker: not found")
            || has("docker: No such file")
            || exit_code == Some(127)
        {
            SshFailure::DockerMissing
        } else if has("permission denied while trying to connect to the Docker daemon")
            || has("connect: permission denied")
        {
            SshFailure::SocketPermission
        } else if has("Cannot connect to the Docker daemon")
            || has("Is the docker daemon running")
            || has("connect: no such file or directory")
            || has("connect: connection refused")
        {
            SshFailure::DaemonDown
        } else {
            SshFailure::Other
        }
    }

    /// A few words for the message: "ssh could not connect", ...
    pub fn summary(self) -> &'static str {
        match self {
            SshFailure::NoSshClient => "the ssh client could not be started",
            SshFailure::Unreachable => "ssh could not connect",
            SshFailure::Auth => "ssh authentication failed",
            SshFailure::HostKey => "ssh refused the host key",
            SshFailure::DockerMissing => "docker is not installed on the remote machine",
            SshFailure::SocketPermission => {
                "the remote user may not use the Docker socket (permission denied)"
            }
            SshFailure::DaemonDown => "the remote docker CLI cannot reach its daemon",
            SshFailure::Other => "the ssh connection failed",
        }
    }

    /// What to try next.
    pub fn hint(self, login: &str) -> String {
        match self {
            SshFailure::NoSshClient => {
                "install an OpenSSH client (`ssh` on PATH), as the docker CLI needs it for ssh:// \
                 endpoints too"
                    .into()
            }
            SshFailure::Unreachable => {
                format!("check the host name and port, and that `{login}` works")
            }
            SshFailure::Auth => format!(
                "ssh runs without a terminal, as the docker CLI runs it: load your key into \
                 ssh-agent (`ssh-add`) or configure it in ~/.ssh/config, then check that \
                 `{login} docker version` works without a prompt"
            ),
            SshFailure::HostKey => {
                format!("connect once with `{login}` to check and accept the host key")
            }
            SshFailure::DockerMissing => "install the docker CLI on the remote machine (on the \
                 PATH of non-interactive ssh sessions), or put the socket path in the URL: \
                 ssh://user@host/var/run/docker.sock still needs the CLI there"
                .into(),
            SshFailure::SocketPermission => format!(
                "add the remote user to the `docker` group there (`sudo usermod -aG docker USER`) \
                 and log in again, or connect as another user (`ssh://other@...`); check with \
                 `{login} docker version`"
            ),
            SshFailure::DaemonDown => format!(
                "is the Docker daemon running on the remote machine? (`{login} docker version`)"
            ),
            SshFailure::Other => format!("check that `{login} docker version` works"),
        }
    }
}

/// Why an ssh connection ended badly: the inner error of the I/O errors this transport returns,
/// so that callers can find it in an error chain.
#[derive(Debug, Clone)]
pub struct SshError {
    pub failure: SshFailure,
    /// `user@host:port`.
    pub target: String,
    /// How ssh ended (`exit status 255`, `killed by signal 9`).
    pub status: String,
    /// The last lines ssh (or the remote docker CLI) wrote on stderr.
    pub stderr: String,
    /// How to log in by hand (`ssh -p 2222 user@host`), for the hint.
    pub login: String,
}

impl SshError {
    pub fn hint(&self) -> String {
        self.failure.hint(&self.login)
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.failure.summary(), self.target)?;
        if !self.status.is_empty() {
            write!(f, ", ssh {}", self.status)?;
        }
        f.write_str(")")?;
        let detail = self.stderr.trim();
        if !detail.is_empty() {
            write!(f, ": {}", detail.lines().collect::<Vec<_>>().join(" / "))?;
        }
        Ok(())
    }
}

impl std::error::Error for SshError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_sorted_into_failures() {
        let c = SshFailure::classify;
        assert_eq!(
            c(
                "ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n",
                Some(255)
            ),
            SshFailure::Unreachable
        );
        assert_eq!(
            c(
                "ssh: Could not resolve hostname nowhere: Name or service not known",
                Some(255)
            ),
            SshFailure::Unreachable
        );
        assert_eq!(
            c("root@127.0.0.1: Permission denied (publickey).", Some(255)),
            SshFailure::Auth
        );
        assert_eq!(
            c("Host key verification failed.", Some(255)),
            SshFailure::HostKey
        );
        assert_eq!(
            c("bash: line 1: docker: command not found", Some(127)),
            SshFailure::DockerMissing
        );
        assert_eq!(
            c("sh: 1: docker: not found", Some(127)),
            SshFailure::DockerMissing
        );
        assert_eq!(
            c(
                "permission denied while trying to connect to the Docker daemon socket at \
                 unix:///var/run/docker.sock: ...",
                Some(1)
            ),
            SshFailure::SocketPermission
        );
        assert_eq!(
            c(
                "failed to open the raw stream connection: dial unix /var/run/docker.sock: \
                 connect: permission denied",
                Some(1)
            ),
            SshFailure::SocketPermission
        );
        assert_eq!(
            c(
                "failed to open the raw stream connection: dial unix /x.sock: connect: no such \
                 file or directory",
                Some(1)
            ),
            SshFailure::DaemonDown
        );
        assert_eq!(
            c("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", Some(1)),
            SshFailure::DaemonDown
        );
        assert_eq!(c("", None), SshFailure::Other);
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = SshError {
            failure: SshFailure::Auth,
            target: "me@box:22".into(),
            status: "exit status 255".into(),
            stderr: "me@box: Permission denied (publickey).\r\n".into(),
            login: "ssh -p 22 me@box".into(),
        };
        assert!(err.hint().contains("`ssh -p 22 me@box docker version`"));
        assert_eq!(
            err.to_string(),
            "ssh authentication failed (me@box:22, ssh exit status 255): me@box: Permission \
             denied (publickey)."
        );
    }
}
