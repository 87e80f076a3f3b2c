//! Keys and passphrases from files and the terminal: recipients files, identity files (age or
//! ssh, possibly locked with a passphrase), passphrase files, and passphrases asked for on the
//! terminal. What is read goes no further than the age crate: never into a message (errors name
//! files and line numbers only).

use std::io::{self, Read};
use std::path::Path;

use age::secrecy::SecretString;

use crate::archive::{Keys, Passphrase, RecipientKey};

/// Identity and recipient files are small; refuse to read huge ones.
const KEY_FILE_LIMIT: u64 = 1 << 20;

/// Reads a recipients file as `age -R` does: one recipient a line, `#` comments, blank lines.
pub fn read_recipients_file(path: &Path) -> Result<Vec<RecipientKey>, String> {
    let text = read_small_file(path)?;
    let text = String::from_utf8(text).map_err(|_| format!("{} is not text", path.display()))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = RecipientKey::parse(line)
            .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(format!("{} holds no recipients", path.display()));
    }
    Ok(keys)
}

/// Adds the identities in `path` to `keys`: an age identity file (`AGE-SECRET-KEY-1...` lines,
/// `#` comments), or an ssh private key (ed25519 or RSA). A passphrase that unlocks one is asked
/// for on the terminal when it is needed.
pub fn add_identity_file(keys: &mut Keys, path: &Path) -> Result<(), String> {
    let data = read_small_file(path)?;
    keys.add_identities(&data, &path.display().to_string(), TerminalCallbacks)
}

/// Reads a passphrase file: its content, less one trailing line break.
pub fn read_passphrase_file(path: &Path) -> Result<SecretString, String> {
    let data = read_small_file(path)?;
    let mut text = String::from_utf8(data)
        .map_err(|_| format!("the passphrase in {} is not UTF-8", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(format!("{} holds an empty passphrase", path.display()));
    }
    Ok(SecretString::from(text))
}

/// Asks for a passphrase on the terminal (not echoed); `confirm` asks twice and compares.
pub fn prompt_passphrase(confirm: bool) -> Result<SecretString, String> {
    let no_tty = |e: io::Error| {
        format!("cannot ask for a passphrase: no terminal ({e}); use --passphrase-file FILE")
    };
    let first = rpassword::prompt_password("Passphrase: ").map_err(no_tty)?;
    if first.is_empty() {
        return Err("the passphrase is empty".into());
    }
    if confirm {
        let second = rpassword::prompt_password("Passphrase (again): ").map_err(no_tty)?;
        if second != first {
            return Err("the passphrases do not match".into());
        }
    }
    Ok(SecretString::from(first))
}

/// A passphrase for reading that is asked for on the terminal, and only if the archive turns
/// out to need one.
pub fn passphrase_from_terminal() -> Passphrase {
    Passphrase::Ask(Box::new(|| prompt_passphrase(false)))
}

fn read_small_file(path: &Path) -> Result<Vec<u8>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut data = Vec::new();
    file.take(KEY_FILE_LIMIT + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if data.len() as u64 > KEY_FILE_LIMIT {
        return Err(format!("{} is too large for a key file", path.display()));
    }
    Ok(data)
}

/// Asks on the terminal for what an identity needs (an ssh key's passphrase).
#[derive(Clone, Copy)]
struct TerminalCallbacks;

impl age::Callbacks for TerminalCallbacks {
    fn display_message(&self, message: &str) {
        crate::output::message(message);
    }
    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }
    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }
    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        rpassword::prompt_password(format!("{description}: "))
            .ok()
            .map(SecretString::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn recipients_and_passphrase_files() {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let file = dir.path().join("r.txt");
        std::fs::write(
            &file,
            format!(
                "# backups\n\n{}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@example\n",
                id.to_public()
            ),
        )
        .unwrap();
        assert_eq!(read_recipients_file(&file).unwrap().len(), 2);
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(read_recipients_file(&file).is_err());
        std::fs::write(&file, "nonsense\n").unwrap();
        assert!(read_recipients_file(&file)
            .err()
            .unwrap()
            .contains("line 1"));

        let p = dir.path().join("p");
        std::fs::write(&p, "s3cret\r\n").unwrap();
        assert_eq!(read_passphrase_file(&p).unwrap().expose_secret(), "s3cret");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_passphrase_file(&p).is_err());
    }

    #[test]
    fn identity_file_errors_do_not_echo_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("id");
        std::fs::write(&file, "AGE-SECRET-KEY-1NOTAREALKEYATALL\n").unwrap();
        let err = add_identity_file(&mut Keys::none(), &file).unwrap_err();
        assert!(!err.contains("NOTAREAL"), "{err}");
        let id = age::x25519::Identity::generate();
        std::fs::write(
            &file,
            format!("# created: now\n{}\n", id.to_string().expose_secret()),
        )
        .unwrap();
        let mut keys = Keys::none();
        add_identity_file(&mut keys, &file).unwrap();
        assert!(!keys.is_empty());
        // It opens what was encrypted to it.
        let to = crate::archive::EncryptTo::Recipients(vec![RecipientKey::X25519(id.to_public())]);
        let mut w = crate::archive::encryption::Encrypting::new(Vec::new(), Some(&to)).unwrap();
        std::io::Write::write_all(&mut w, b"x").unwrap();
        let data = w.finish().unwrap();
        assert!(crate::archive::encryption::decrypt(&data[..], &keys).is_ok());
    }
}
