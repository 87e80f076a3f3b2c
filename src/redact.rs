//! Secret-looking values, hidden wherever the tool writes them: volume options in manifests,
//! bundle manifests and listings, and every message on stderr (the engine's own error texts
//! included, such as a failed mount that echoes `o=addr=...,password=...`).
//!
//! A name is secret-looking when it contains, in any case, one of [`SECRET_WORDS`]. Its value is
//! replaced by [`REDACTED`]: a whole option (`password=x`), a sub-option of a comma-separated
//! value (`o=addr=nas,username=u,password=x`), or `name=value` anywhere in a text.

use std::borrow::Cow;
use std::collections::HashMap;

/// What a hidden value becomes.
pub const REDACTED: &str = "<redacted>";

/// Parts of a name that mark its value as secret (compared in lower case; `credential` covers
/// `credentials`).
pub const SECRET_WORDS: &[&str] = &["password", "pass", "secret", "token", "key", "credential"];

/// Whether a value named `name` is hidden.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// One volume option's value as it may be shown or recorded: hidden whole when its key is
/// secret-looking, else with its secret-looking `name=value` parts hidden.
pub fn option(key: &str, value: &str) -> String {
    if is_secret_name(key) && !value.is_empty() {
        REDACTED.to_string()
    } else {
        text(value).into_owned()
    }
}

/// Volume options as they may be shown or recorded (see [`option`]).
pub fn options(options: &HashMap<String, String>) -> HashMap<String, String> {
    options
        .iter()
        .map(|(k, v)| (k.clone(), option(k, v)))
        .collect()
}

/// Whether a value had something hidden in it (it cannot be used as the real one).
pub fn is_redacted(value: &str) -> bool {
    value.contains(REDACTED)
}

/// `text` with the value of every secret-looking `name=value` (and `"name": "value"`, as JSON and
/// Rust's debug output spell a map) replaced by [`REDACTED`]. A value ends at a comma, white
/// space, a quote, a backslash or `&`/`;`.
pub fn text(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    // Up to where `text` has been copied into `out`.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some((start, end)) = secret_value_at(bytes, i) else {
            i += 1;
            continue;
        };
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
        i = end.max(i + 1);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A name's byte: letters, digits, `_`, `-`, `.`.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Where a value ends.
fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b',' | b'"' | b'\'' | b'\\' | b'&' | b';')
}

/// At `i` (an `=`, or the `"` closing a quoted name): the byte range of a secret-looking name's
/// non-empty value, if there is one.
fn secret_value_at(bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    match bytes[i] {
        b'=' => {
            let name_start = (0..i)
                .rev()
                .take_while(|&j| is_name_byte(bytes[j]))
                .last()?;
            let name = std::str::from_utf8(&bytes[name_start..i]).ok()?;
            if !is_secret_name(name) {
                return None;
            }
            let start = i + 1;
            let end = (start..bytes.len())
                .find(|&j| ends_value(bytes[j]))
                .unwrap_or(bytes.len());
            (end > start).then_some((start, end))
        }
        b'"' => {
            // `"name": "value"`: `i` closes the name.
            let name_start = (0..i)
                .rev()
                .take_while(|&j| is_name_byte(bytes[j]))
                .last()?;
            if name_start == 0 || bytes[name_start - 1] != b'"' {
                return None;
            }
            let name = std::str::from_utf8(&bytes[name_start..i]).ok()?;
            if !is_secret_name(name) {
                return None;
            }
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            if bytes.get(j) != Some(&b':') {
                return None;
            }
            j += 1;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            if bytes.get(j) != Some(&b'"') {
                return None;
            }
            let start = j + 1;
            // Up to the closing quote, escaped quotes skipped.
            let mut end = start;
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(bytes.len());
            (end > start).then_some((start, end))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_in_any_case() {
        for name in [
            "password",
            "PASSWORD",
            "passwd",
            "pass",
            "smbpass",
            "client_secret",
            "token",
            "api-key",
            "sshkey",
            "credentials",
            "Credentials",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["o", "type", "device", "username", "addr", "uid", "vers"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn whole_options_and_sub_options() {
        assert_eq!(option("password", "hunter2"), REDACTED);
        assert_eq!(option("type", "cifs"), "cifs");
        assert_eq!(option("device", "//127.0.0.1/x"), "//127.0.0.1/x");
        assert_eq!(
            option("o", "addr=10.0.0.1,username=u,password=SEKRIT,vers=3.0"),
            "addr=10.0.0.1,username=u,password=<redacted>,vers=3.0"
        );
        assert_eq!(
            option(
                "o",
                "Password=a b,PASS=x,secret=y,token=z,key=k,credentials=/c"
            ),
            "Password=<redacted> b,PASS=<redacted>,secret=<redacted>,token=<redacted>,\
             key=<redacted>,credentials=<redacted>"
        );
        // An empty value hides nothing.
        assert_eq!(option("o", "password=,uid=1"), "password=,uid=1");
        let map = HashMap::from([
            ("o".to_string(), "username=u,password=p".to_string()),
            ("type".to_string(), "cifs".to_string()),
        ]);
        let shown = options(&map);
        assert_eq!(shown["o"], "username=u,password=<redacted>");
        assert_eq!(shown["type"], "cifs");
        assert!(is_redacted(&shown["o"]));
        assert!(!is_redacted(&shown["type"]));
    }

    #[test]
    fn engine_messages() {
        let engine = "error while mounting volume '/var/lib/docker/volumes/v/_data': failed to \
                      mount local volume: mount //127.0.0.1/x:/var/lib/docker/volumes/v/_data, \
                      flags: 0x0, data: addr=127.0.0.1,username=u,password=SEKRIT99: invalid \
                      argument";
        let shown = text(engine);
        assert!(!shown.contains("SEKRIT"), "{shown}");
        assert!(shown.contains("username=u,password=<redacted> invalid argument"));
        // Rust's debug output and JSON.
        let debug = r#"{"o": "addr=x,password=SEKRIT", "password": "SEKRIT2", "type": "cifs"}"#;
        let shown = text(debug);
        assert_eq!(
            shown,
            r#"{"o": "addr=x,password=<redacted>", "password": "<redacted>", "type": "cifs"}"#
        );
        let json = r#"{"token":"a\"b","name":"v"}"#;
        assert_eq!(text(json), r#"{"token":"<redacted>","name":"v"}"#);
        let query = "https://s3/b?X-Amz-Credential=AKIA/x&X-Amz-Date=1";
        assert_eq!(
            text(query),
            "https://s3/b?X-Amz-Credential=<redacted>&X-Amz-Date=1"
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in [
            "",
            "restored a.tar.zst into volume x (3 entries, checksum verified)",
            "--keep-daily=3",
            "=password",
            "label a=b",
            "key",
            "password=",
            "\"password\"",
            "\"password\": 3",
            "é=ü password",
        ] {
            assert!(matches!(text(s), Cow::Borrowed(_)), "{s}");
        }
        assert_eq!(
            text("ünïcode password=ça,x"),
            "ünïcode password=<redacted>,x"
        );
    }
}
