//! Encryption flags -> what to encrypt to, decryption flags -> keys. Passphrases are read here
//! (from a file or the terminal) and go no further than the age crate: never into a message.

use anyhow::Result;

use crate::archive::encryption::{self, Passphrase, RecipientKey};
use crate::archive::{EncryptTo, Keys};
use crate::cli::{DecryptArgs, EncryptArgs};
use crate::error::{Kind, UserError};

fn usage(msg: String) -> anyhow::Error {
    UserError::new(Kind::Usage, msg).into()
}

/// What `save` encrypts to, if anything. Asks for the passphrase now (before the engine is
/// touched) when `--passphrase` was given.
pub fn encrypt_to(args: &EncryptArgs) -> Result<Option<EncryptTo>> {
    if let Some(path) = &args.passphrase_file {
        let p = encryption::read_passphrase_file(path).map_err(usage)?;
        return Ok(Some(EncryptTo::Passphrase(p)));
    }
    if args.passphrase {
        let p = encryption::prompt_passphrase(true).map_err(usage)?;
        return Ok(Some(EncryptTo::Passphrase(p)));
    }
    let mut keys: Vec<RecipientKey> = Vec::new();
    for r in &args.recipients {
        keys.push(RecipientKey::parse(r).map_err(usage)?);
    }
    for file in &args.recipients_files {
        keys.extend(encryption::read_recipients_file(file).map_err(usage)?);
    }
    Ok((!keys.is_empty()).then_some(EncryptTo::Recipients(keys)))
}

/// The keys `restore`, `inspect` (and `verify`) decrypt with. A passphrase asked for with
/// `--passphrase` is only asked when the archive turns out to need one.
pub fn keys(args: &DecryptArgs) -> Result<Keys> {
    let mut keys = Keys::none();
    for file in &args.identities {
        keys.add_identity_file(file).map_err(usage)?;
    }
    if let Some(path) = &args.passphrase_file {
        let p = encryption::read_passphrase_file(path).map_err(usage)?;
        keys = keys.with_passphrase(Passphrase::Given(p));
    } else if args.passphrase {
        keys = keys.with_passphrase(Passphrase::Prompt);
    }
    Ok(keys)
}
