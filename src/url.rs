//! URLs as text: their credentials taken out before a URL is saved, logged or shown in an
//! error (`ssh://user:pw@host`, `https://key:secret@endpoint`).

use std::borrow::Cow;

/// `url` without the credentials of its `user:password@` part, and whether there were any.
/// Everything else is kept as typed. An `ssh://` URL keeps its user name (it says whom to log
/// in as; ssh never takes a password from a URL) and loses the password; any other URL loses
/// the whole user part, since a bare user there is often a token. Text that is no URL comes
/// back unchanged.
pub fn strip_credentials(url: &str) -> (Cow<'_, str>, bool) {
    let Some(scheme_end) = url.find("://") else {
        return (Cow::Borrowed(url), false);
    };
    let scheme = &url[..scheme_end];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return (Cow::Borrowed(url), false);
    }
    let start = scheme_end + 3;
    let authority_len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    let authority = &url[start..start + authority_len];
    let Some(at) = authority.rfind('@') else {
        return (Cow::Borrowed(url), false);
    };
    let userinfo = &authority[..at];
    let kept = match userinfo.split_once(':') {
        Some((user, _)) if scheme.eq_ignore_ascii_case("ssh") && !user.is_empty() => {
            format!("{user}@")
        }
        None if scheme.eq_ignore_ascii_case("ssh") => return (Cow::Borrowed(url), false),
        _ => String::new(),
    };
    let stripped = format!("{}{kept}{}", &url[..start], &url[start + at + 1..]);
    (Cow::Owned(stripped), true)
}

/// `text` with the user information of every URL in it removed (`https://user:secret@host` ->
/// `https://host`), and the query string of each URL too (tokens travel there).
pub fn strip_in_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ')')
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let (authority, path) = url.split_at(authority_end);
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        out.push_str(host);
        out.push_str(path);
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_text_lose_credentials_and_queries() {
        assert_eq!(
            strip_in_text("post to https://u:p%40ss@hooks.example/x?token=1 failed"),
            "post to https://hooks.example/x failed"
        );
        assert_eq!(
            strip_in_text("s3://bucket/prefix and ssh://me@host"),
            "s3://bucket/prefix and ssh://host"
        );
        assert_eq!(strip_in_text("no url here"), "no url here");
    }

    #[test]
    fn credentials_leave_urls() {
        let strip = |u| {
            let (s, changed) = strip_credentials(u);
            (s.into_owned(), changed)
        };
        assert_eq!(
            strip("https://AKIA:s3cr3t@minio.example:9000/x?y=1"),
            ("https://minio.example:9000/x?y=1".into(), true)
        );
        assert_eq!(
            strip("tcp://user:pa:ss@docker.example:2376"),
            ("tcp://docker.example:2376".into(), true)
        );
        // A password may hold an `@`: the host starts after the last one.
        assert_eq!(
            strip("http://u:p@ss@h/p@th"),
            ("http://h/p@th".into(), true)
        );
        // A bare user of a URL other than ssh may be a token.
        assert_eq!(strip("https://ghp_token@h/"), ("https://h/".into(), true));
        // ssh keeps whom to log in as.
        assert_eq!(
            strip("ssh://deploy:pw@box:2222"),
            ("ssh://deploy@box:2222".into(), true)
        );
        assert_eq!(strip("ssh://:pw@box"), ("ssh://box".into(), true));
        for kept in [
            "ssh://deploy@box",
            "s3://bucket/prefix",
            "unix:///var/run/docker.sock",
            "/srv/backups/a@b",
            "--keep-last",
            "user@host:/path",
            "weird scheme://u:p@h",
        ] {
            assert_eq!(strip(kept), (kept.to_string(), false), "{kept}");
        }
    }
}
