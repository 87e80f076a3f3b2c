//! Where an `ssh://` endpoint points, and the `ssh` argument vector that reaches its daemon the
//! way the docker CLI does.

use crate::docker::context::Host;

/// Where an `ssh://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The daemon socket on the remote machine, when not its default.
    pub socket_path: Option<String>,
}

impl SshTarget {
    /// The target of an `ssh://` host; `None` for other transports.
    pub fn of(host: &Host) -> Option<SshTarget> {
        match host {
            Host::Ssh {
                user,
                host,
                port,
                socket_path,
            } => Some(SshTarget {
                user: user.clone(),
                host: host.clone(),
                port: *port,
                socket_path: socket_path.clone(),
            }),
            _ => None,
        }
    }

    /// The arguments after `ssh`, as docker/cli builds them: a 30 s connect timeout unless the
    /// caller's flags set one, no pseudo-terminal, `-l user`, `-p port`, `--`, the host and the
    /// remote command (`docker --host=unix://PATH system dial-stdio` for a custom socket path).
    pub fn args(&self, extra_flags: &[String]) -> Vec<String> {
        let mut args: Vec<String> = extra_flags.to_vec();
        if !extra_flags.concat().contains("ConnectTimeout") {
            args.extend(["-o".into(), "ConnectTimeout=30".into()]);
        }
        if !extra_flags.iter().any(|f| f == "-T") {
            args.push("-T".into());
        }
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.extend(["--".into(), self.host.clone(), "docker".into()]);
        if let Some(path) = self.socket_path.as_deref() {
            if !path.trim_matches('/').is_empty() {
                // ssh joins the remote command into one line for the remote shell: quoted, a
                // path with spaces, `;` or `$(...)` stays one argument and runs nothing.
                args.push(shell_quote(&format!("--host=unix://{path}")));
            }
        }
        args.extend(["system".into(), "dial-stdio".into()]);
        args
    }

    /// How to log in by hand, for hints: `ssh -p 2222 user@host`.
    pub fn login(&self) -> String {
        let mut s = String::from("ssh ");
        if let Some(port) = self.port {
            s.push_str(&format!("-p {port} "));
        }
        if let Some(user) = &self.user {
            s.push_str(user);
            s.push('@');
        }
        s.push_str(&self.host);
        s
    }

    /// `user@host:port`, for messages.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(user) = &self.user {
            s.push_str(user);
            s.push('@');
        }
        s.push_str(&self.host);
        if let Some(port) = self.port {
            s.push_str(&format!(":{port}"));
        }
        s
    }
}

/// `s` as one word for a POSIX shell: bare when it holds only characters no shell treats
/// specially, else in single quotes (`'` written as `'\''`).
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: Option<&str>, port: Option<u16>, path: Option<&str>) -> SshTarget {
        SshTarget {
            user: user.map(Into::into),
            host: "box.example".into(),
            port,
            socket_path: path.map(Into::into),
        }
    }

    #[test]
    fn args_follow_the_docker_cli() {
        assert_eq!(
            target(Some("deploy"), Some(2222), None).args(&[]),
            [
                "-o",
                "ConnectTimeout=30",
                "-T",
                "-l",
                "deploy",
                "-p",
                "2222",
                "--",
                "box.example",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
        assert_eq!(
            target(None, None, None).args(&[]),
            [
                "-o",
                "ConnectTimeout=30",
                "-T",
                "--",
                "box.example",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
    }

    #[test]
    fn a_socket_path_goes_to_the_remote_docker_cli() {
        let args = target(None, None, Some("/run/user/1000/docker.sock")).args(&[]);
        assert_eq!(
            &args[4..],
            [
                "box.example",
                "docker",
                "--host=unix:///run/user/1000/docker.sock",
                "system",
                "dial-stdio"
            ]
        );
        // What the remote shell would read as more than one word, or run, is quoted.
        let args = target(None, None, Some("/run/a b;touch /tmp/x$(id)'q")).args(&[]);
        assert_eq!(args[6], r"'--host=unix:///run/a b;touch /tmp/x$(id)'\''q'");
        // A bare `/` is no path, as in the CLI.
        assert!(!target(None, None, Some("/"))
            .args(&[])
            .iter()
            .any(|a| a.starts_with("--host")));
    }

    #[test]
    fn flags_given_are_not_doubled() {
        let flags = ["-o".to_string(), "ConnectTimeout=5".into(), "-T".into()];
        let args = target(None, None, None).args(&flags);
        assert_eq!(
            args.iter().filter(|a| a.contains("ConnectTimeout")).count(),
            1
        );
        assert_eq!(args.iter().filter(|a| *a == "-T").count(), 1);
        // A host that looks like an option stays the host.
        let odd = SshTarget {
            host: "-oProxyCommand=x".into(),
            ..target(None, None, None)
        };
        let args = odd.args(&[]);
        let dashdash = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[dashdash + 1], "-oProxyCommand=x");
    }
}
