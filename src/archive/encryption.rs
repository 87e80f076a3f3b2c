//! Encryption with age (<https://age-encryption.org/v1>), through the `age` crate: recipients and
//! passphrases for writing, identities and passphrases for reading, and detection by content.
//! Keys arrive as values (parsed text, or a passphrase source given by the caller): reading key
//! files and asking on the terminal belong to `crate::keys`.
//!
//! The age layer wraps the compressed stream (compress, then encrypt), so everything of the
//! archive, manifest included, is inside it. Secrets (passphrases, identities) never appear in a
//! message: errors name files and line numbers only.

use std::io::{self, BufRead, BufReader, Read, Write};

use age::armor::ArmoredReader;
use age::secrecy::SecretString;
use serde::Serialize;

use super::{ArchiveError, KeyNeed};

/// The binary age header starts with this (then the version, `v1`).
const AGE_MAGIC: &[u8] = b"age-encryption.org/";
/// The ASCII-armored form (`age -a`) starts with this line.
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// Bytes to read before deciding what a stream is: enough for the armor's first line.
pub const SNIFF_LEN: usize = 40;

/// How an archive is encrypted, as far as its clear-text header tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// age, to one or more public keys (X25519 or ssh)
    Recipients,
    /// age, with a passphrase (scrypt)
    Passphrase,
}

impl std::fmt::Display for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encryption::Recipients => "age, to recipients",
            Encryption::Passphrase => "age, with a passphrase",
        })
    }
}

/// Whether the first bytes of a stream are an age file, binary or armored.
pub fn is_age(head: &[u8]) -> bool {
    let trimmed = head.trim_ascii_start();
    head.starts_with(AGE_MAGIC) || trimmed.starts_with(ARMOR_BEGIN)
}

// ------------------------------------------------------------------------------------------
// Writing
// ------------------------------------------------------------------------------------------

/// One public key to encrypt to.
#[derive(Clone)]
pub enum RecipientKey {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl RecipientKey {
    /// Parses an `age1...` recipient or an ssh public key line (`ssh-ed25519 AAAA... comment`,
    /// `ssh-rsa AAAA... comment`).
    pub fn parse(s: &str) -> Result<RecipientKey, String> {
        let s = s.trim();
        if s.starts_with("age1") {
            return s
                .parse::<age::x25519::Recipient>()
                .map(RecipientKey::X25519)
                .map_err(|e| format!("invalid age recipient `{s}`: {e}"));
        }
        if s.starts_with("ssh-") {
            return s
                .parse::<age::ssh::Recipient>()
                .map(RecipientKey::Ssh)
                .map_err(|e| {
                    let why = match e {
                        age::ssh::ParseRecipientKeyError::RsaModulusTooLarge => "RSA key too large",
                        age::ssh::ParseRecipientKeyError::RsaModulusTooSmall => "RSA key too small",
                        age::ssh::ParseRecipientKeyError::Unsupported(_) => "unsupported key type",
                        _ => "not a valid ssh-ed25519 or ssh-rsa public key",
                    };
                    format!("invalid ssh recipient: {why}")
                });
        }
        Err(format!(
            "`{s}` is not a recipient: give an age public key (age1...) or an ssh-ed25519 / \
             ssh-rsa public key"
        ))
    }

    fn as_recipient(&self) -> &dyn age::Recipient {
        match self {
            RecipientKey::X25519(r) => r,
            RecipientKey::Ssh(r) => r,
        }
    }
}

/// What a new archive is encrypted to.
pub enum EncryptTo {
    Recipients(Vec<RecipientKey>),
    Passphrase(SecretString),
}

impl EncryptTo {
    fn encryptor(&self) -> Result<age::Encryptor, ArchiveError> {
        match self {
            EncryptTo::Passphrase(p) => Ok(age::Encryptor::with_user_passphrase(p.clone())),
            EncryptTo::Recipients(keys) => {
                age::Encryptor::with_recipients(keys.iter().map(RecipientKey::as_recipient))
                    .map_err(|e| ArchiveError::Output(io::Error::other(e.to_string())))
            }
        }
    }
}

/// A writer that encrypts (or passes through); `finish` completes the age stream.
pub enum Encrypting<W: Write> {
    Plain(W),
    Age(age::stream::StreamWriter<W>),
}

impl<W: Write> Encrypting<W> {
    /// Writes the age header to `inner` now if `to` is given.
    pub fn new(inner: W, to: Option<&EncryptTo>) -> Result<Self, ArchiveError> {
        match to {
            None => Ok(Encrypting::Plain(inner)),
            Some(to) => Ok(Encrypting::Age(
                to.encryptor()?
                    .wrap_output(inner)
                    .map_err(ArchiveError::Output)?,
            )),
        }
    }

    /// Writes the last chunk (if encrypting) and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encrypting::Plain(w) => Ok(w),
            Encrypting::Age(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for Encrypting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encrypting::Plain(w) => w.write(buf),
            Encrypting::Age(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encrypting::Plain(w) => w.write_all(buf),
            Encrypting::Age(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encrypting::Plain(w) => w.flush(),
            Encrypting::Age(w) => w.flush(),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Reading
// ------------------------------------------------------------------------------------------

/// A passphrase for reading: given, or asked for (through the caller's closure, e.g. on the
/// terminal) only if the archive turns out to need one. The closure's error says why no
/// passphrase could be had.
pub enum Passphrase {
    Given(SecretString),
    Ask(Box<dyn Fn() -> Result<SecretString, String> + Send + Sync>),
}

/// The keys a reader may use. Empty keys read plain archives and refuse encrypted ones.
#[derive(Default)]
pub struct Keys {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    passphrase: Option<Passphrase>,
}

impl Keys {
    /// No keys: encrypted archives are refused.
    pub fn none() -> Keys {
        Keys::default()
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.passphrase.is_none()
    }

    #[cfg(test)]
    pub(crate) fn add_identity_for_tests(&mut self, id: Box<dyn age::Identity + Send + Sync>) {
        self.identities.push(id);
    }

    pub fn with_passphrase(mut self, p: Passphrase) -> Keys {
        self.passphrase = Some(p);
        self
    }

    /// Adds the identities in `data`, the content of the identity file called `name` (in
    /// messages): an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments), one
    /// encrypted with a passphrase (`age -p`), or an ssh private key (ed25519 or RSA). The
    /// passphrase of a protected one is asked for through `callbacks`: at once for an age
    /// file, when the key is first used for an ssh key.
    pub fn add_identities<C: age::Callbacks>(
        &mut self,
        data: &[u8],
        name: &str,
        callbacks: C,
    ) -> Result<(), String> {
        let name = name.to_string();
        let looks_ssh = !is_age(data) && data.trim_ascii_start().starts_with(b"-----BEGIN");
        if looks_ssh {
            let identity =
                age::ssh::Identity::from_buffer(data, Some(name.clone())).map_err(|_| {
                    format!("{name} is not an age identity file nor an ssh private key")
                })?;
            if let age::ssh::Identity::Unsupported(_) = identity {
                return Err(format!(
                    "{name}: this kind of ssh key is not supported (use ed25519 or RSA)"
                ));
            }
            self.identities
                .push(Box::new(identity.with_callbacks(callbacks)));
            return Ok(());
        }
        if is_age(data) {
            // An identity file encrypted with a passphrase (`age -p`, as `age-keygen | age -p`).
            let reader = Unarmor::new(data).map_err(|e| format!("{name}: {e}"))?;
            let decryptor =
                age::Decryptor::new_buffered(reader).map_err(|e| format!("{name}: {e}"))?;
            let locked = age::encrypted::EncryptedIdentity::new(decryptor, callbacks.clone(), None)
                .ok_or_else(|| {
                    format!("{name} is an age file encrypted to recipients, not an identity file")
                })?;
            let file = locked.decrypt(Some(&name)).map_err(|e| match e {
                age::DecryptError::KeyDecryptionFailed | age::DecryptError::DecryptionFailed => {
                    format!("cannot unlock {name}: wrong passphrase, or no terminal to ask on")
                }
                other => format!("{name}: {other}"),
            })?;
            let identities = file.into_identities().map_err(|e| format!("{name}: {e}"))?;
            if identities.is_empty() {
                return Err(format!("{name} holds no identities"));
            }
            self.identities.extend(identities);
            return Ok(());
        }
        // The crate's own messages name a line number, never the content.
        let file = age::IdentityFile::from_buffer(data).map_err(|e| format!("{name}: {e}"))?;
        let identities = file.into_identities().map_err(|e| format!("{name}: {e}"))?;
        if identities.is_empty() {
            return Err(format!("{name} holds no identities"));
        }
        self.identities.extend(identities);
        Ok(())
    }
}

/// The plaintext of an age stream.
pub type AgeReader<R> = age::stream::StreamReader<Unarmor<R>>;

/// An age file as the decryptor reads it: binary as it is, armored through the crate's
/// dearmoring reader (which costs about as much as the decryption: not for binary files).
pub enum Unarmor<R> {
    Binary(BufReader<R>),
    Armored(ArmoredReader<BufReader<BufReader<R>>>),
}

impl<R: Read> Unarmor<R> {
    fn new(input: R) -> io::Result<Self> {
        let mut buf = BufReader::with_capacity(64 << 10, input);
        let binary = buf.fill_buf()?.starts_with(AGE_MAGIC);
        Ok(if binary {
            Unarmor::Binary(buf)
        } else {
            Unarmor::Armored(ArmoredReader::new(buf))
        })
    }
}

impl<R: Read> Read for Unarmor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Unarmor::Binary(r) => r.read(out),
            Unarmor::Armored(r) => r.read(out),
        }
    }
}

impl<R: Read> BufRead for Unarmor<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Unarmor::Binary(r) => r.fill_buf(),
            Unarmor::Armored(r) => r.fill_buf(),
        }
    }
    fn consume(&mut self, n: usize) {
        match self {
            Unarmor::Binary(r) => r.consume(n),
            Unarmor::Armored(r) => r.consume(n),
        }
    }
}

/// Reads the age header of `input`, finds a key among `keys` that opens it and returns the
/// decrypting reader. Every key problem is found here, before any data is read.
pub fn decrypt<R: Read>(input: R, keys: &Keys) -> Result<(AgeReader<R>, Encryption), ArchiveError> {
    let input = Unarmor::new(input).map_err(|e| header_error(e.into()))?;
    let decryptor = age::Decryptor::new_buffered(input).map_err(header_error)?;
    let kind = if decryptor.is_scrypt() {
        Encryption::Passphrase
    } else {
        Encryption::Recipients
    };
    if keys.is_empty() {
        return Err(ArchiveError::NeedKey {
            need: KeyNeed::Any,
            why: format!("the archive is encrypted ({kind}): a key is needed"),
        });
    }
    let mut tried: Vec<Box<dyn age::Identity>> = Vec::new();
    if kind == Encryption::Passphrase {
        let passphrase = match &keys.passphrase {
            Some(Passphrase::Given(p)) => p.clone(),
            Some(Passphrase::Ask(ask)) => ask().map_err(ArchiveError::KeyUnavailable)?,
            None => {
                return Err(ArchiveError::NeedKey {
                    need: KeyNeed::Passphrase,
                    why: "the archive is encrypted with a passphrase: a passphrase is needed"
                        .into(),
                })
            }
        };
        tried.push(Box::new(age::scrypt::Identity::new(passphrase)));
    } else if keys.identities.is_empty() {
        return Err(ArchiveError::NeedKey {
            need: KeyNeed::Identity,
            why: "the archive is encrypted to recipients, not with a passphrase: an identity is \
                  needed"
                .into(),
        });
    }
    let identities = keys
        .identities
        .iter()
        .map(|i| i.as_ref() as &dyn age::Identity)
        .chain(tried.iter().map(|i| i.as_ref()));
    let reader = decryptor.decrypt(identities).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys
        | age::DecryptError::DecryptionFailed
        | age::DecryptError::KeyDecryptionFailed => ArchiveError::WrongKey(match kind {
            Encryption::Passphrase => "wrong passphrase".into(),
            Encryption::Recipients => "none of the identities given can decrypt it".into(),
        }),
        other => header_error(other),
    })?;
    Ok((reader, kind))
}

fn header_error(e: age::DecryptError) -> ArchiveError {
    match e {
        age::DecryptError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            ArchiveError::Truncated("the age header ends early".into())
        }
        age::DecryptError::Io(e) => ArchiveError::from_io(e),
        age::DecryptError::UnknownFormat => {
            ArchiveError::Unsupported("a newer age format this tool does not read".into())
        }
        age::DecryptError::ExcessiveWork { .. } => ArchiveError::Unsupported(
            "the passphrase's work factor is far above what this machine takes in seconds".into(),
        ),
        other => ArchiveError::Corrupt(format!("the age header is damaged: {other}")),
    }
}

/// Names the errors of the decrypting reader: an authentication failure is damage.
pub fn payload_error(e: io::Error) -> io::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<ArchiveError>()) {
        return e;
    }
    match e.kind() {
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => e,
        io::ErrorKind::UnexpectedEof => io::Error::other(ArchiveError::Truncated(
            "the encrypted stream ends early".into(),
        )),
        io::ErrorKind::InvalidData => io::Error::other(ArchiveError::Corrupt(
            "the encrypted data is damaged (authentication failed)".into(),
        )),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn encrypt(to: &EncryptTo, data: &[u8]) -> Vec<u8> {
        let mut w = Encrypting::new(Vec::new(), Some(to)).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn detects_binary_and_armored_age() {
        let id = age::x25519::Identity::generate();
        let to = EncryptTo::Recipients(vec![RecipientKey::X25519(id.to_public())]);
        let data = encrypt(&to, b"hello");
        assert!(is_age(&data[..SNIFF_LEN]));
        assert!(is_age(b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl"));
        assert!(is_age(b"\n  -----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(!is_age(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]));
        assert!(!is_age(b"age-encryption"));
        assert!(!is_age(b""));
    }

    #[test]
    fn round_trip_and_key_errors() {
        let id = age::x25519::Identity::generate();
        let to = EncryptTo::Recipients(vec![RecipientKey::X25519(id.to_public())]);
        let data = encrypt(&to, b"hello world");

        let mut keys = Keys::none();
        keys.identities.push(Box::new(id));
        let (mut r, kind) = decrypt(&data[..], &keys).unwrap();
        assert_eq!(kind, Encryption::Recipients);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world");

        let err = decrypt(&data[..], &Keys::none()).err().unwrap();
        assert!(
            matches!(
                err,
                ArchiveError::NeedKey {
                    need: KeyNeed::Any,
                    ..
                }
            ),
            "{err}"
        );
        let mut other = Keys::none();
        other
            .identities
            .push(Box::new(age::x25519::Identity::generate()));
        let err = decrypt(&data[..], &other).err().unwrap();
        assert!(matches!(err, ArchiveError::WrongKey(_)), "{err}");
        let pass = Keys::none().with_passphrase(Passphrase::Given("x".to_string().into()));
        let err = decrypt(&data[..], &pass).err().unwrap();
        assert!(
            matches!(
                err,
                ArchiveError::NeedKey {
                    need: KeyNeed::Identity,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("--"), "no flag named: {err}");
    }

    #[test]
    fn damaged_payload_is_corrupt() {
        let id = age::x25519::Identity::generate();
        let to = EncryptTo::Recipients(vec![RecipientKey::X25519(id.to_public())]);
        let mut data = encrypt(&to, &[7u8; 200_000]);
        let n = data.len();
        data[n - 1000] ^= 1;
        let mut keys = Keys::none();
        keys.identities.push(Box::new(id));
        let (mut r, _) = decrypt(&data[..], &keys).unwrap();
        let err = io::copy(&mut r, &mut io::sink())
            .map_err(payload_error)
            .unwrap_err();
        let err = ArchiveError::from_io(err);
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
    }

    #[test]
    fn a_passphrase_is_asked_for_only_when_needed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let asked = Arc::new(AtomicUsize::new(0));
        let ask = |answer: Result<&'static str, &'static str>| {
            let asked = Arc::clone(&asked);
            Passphrase::Ask(Box::new(move || {
                asked.fetch_add(1, Ordering::SeqCst);
                answer.map(|p| p.to_string().into()).map_err(String::from)
            }))
        };
        // An archive to recipients: the passphrase is not asked for.
        let id = age::x25519::Identity::generate();
        let to = EncryptTo::Recipients(vec![RecipientKey::X25519(id.to_public())]);
        let data = encrypt(&to, b"x");
        let mut keys = Keys::none().with_passphrase(ask(Ok("unused")));
        keys.identities.push(Box::new(id));
        assert!(decrypt(&data[..], &keys).is_ok());
        assert_eq!(asked.load(Ordering::SeqCst), 0);
        // A passphrase archive: asked once; a failure to ask is the caller's message.
        let data = encrypt(&EncryptTo::Passphrase("pw".to_string().into()), b"x");
        let keys = Keys::none().with_passphrase(ask(Err("no terminal here")));
        let err = decrypt(&data[..], &keys).err().unwrap();
        assert!(
            matches!(&err, ArchiveError::KeyUnavailable(m) if m == "no terminal here"),
            "{err}"
        );
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        let mut keys = Keys::none();
        keys.identities
            .push(Box::new(age::x25519::Identity::generate()));
        let err = decrypt(&data[..], &keys).err().unwrap();
        assert!(
            matches!(
                err,
                ArchiveError::NeedKey {
                    need: KeyNeed::Passphrase,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[derive(Clone)]
    struct Answer(&'static str);
    impl age::Callbacks for Answer {
        fn display_message(&self, _: &str) {}
        fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
            None
        }
        fn request_public_string(&self, _: &str) -> Option<String> {
            None
        }
        fn request_passphrase(&self, _: &str) -> Option<SecretString> {
            Some(self.0.to_string().into())
        }
    }

    #[test]
    fn passphrase_protected_identity_files_unlock() {
        let id = age::x25519::Identity::generate();
        let to = EncryptTo::Passphrase("unlock me".to_string().into());
        let text = format!("# key\n{}\n", id.to_string().expose_secret());
        let locked = encrypt(&to, text.as_bytes());
        let mut keys = Keys::none();
        keys.add_identities(&locked, "key.age", Answer("unlock me"))
            .unwrap();
        assert_eq!(keys.identities.len(), 1);
        let err = Keys::none()
            .add_identities(&locked, "key.age", Answer("bad-secret-xyz"))
            .unwrap_err();
        assert!(err.contains("cannot unlock key.age"), "{err}");
        assert!(!err.contains("bad-secret-xyz"), "{err}");
        // It opens what was encrypted to it.
        let data = encrypt(
            &EncryptTo::Recipients(vec![RecipientKey::X25519(id.to_public())]),
            b"x",
        );
        assert!(decrypt(&data[..], &keys).is_ok());
    }
}
