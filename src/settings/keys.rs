//! Encryption flags -> what to encrypt to, decryption flags -> keys. Passphrases are read (from
//! a file or the terminal, by `crate::keys`) and go no further than the age crate: never into a
//! message.

use anyhow::Result;

use crate::archive::{EncryptTo, Keys, Passphrase, RecipientKey};
use crate::cli::{DecryptArgs, EncryptArgs};
use crate::error::{Kind, UserError};
use crate::keys;

fn usage(msg: String) -> anyhow::Error {
    UserError::new(Kind::Usage, msg).into()
}

/// What `save` encrypts to, if anything. Asks for the passphrase now (before the engine is
/// touched) when `--passphrase` was given.
pub fn encrypt_to(args: &EncryptArgs) -> Result<Option<EncryptTo>> {
    if let Some(path) = &args.passphrase_file {
        let p = keys::read_passphrase_file(path).map_err(usage)?;
        return Ok(Some(EncryptTo::Passphrase(p)));
    }
    if args.passphrase {
        let p = keys::prompt_passphrase(true).map_err(usage)?;
        return Ok(Some(EncryptTo::Passphrase(p)));
    }
    let mut recipients: Vec<RecipientKey> = Vec::new();
    for r in &args.recipients {
        recipients.push(RecipientKey::parse(r).map_err(usage)?);
    }
    for file in &args.recipients_files {
        recipients.extend(keys::read_recipients_file(file).map_err(usage)?);
    }
    Ok((!recipients.is_empty()).then_some(EncryptTo::Recipients(recipients)))
}

/// The keys `restore`, `inspect` (and `verify`) decrypt with. A passphrase asked for with
/// `--passphrase` is only asked when the archive turns out to need one.
pub fn keys(args: &DecryptArgs) -> Result<Keys> {
    let mut found = Keys::none();
    for file in &args.identities {
        keys::add_identity_file(&mut found, file).map_err(usage)?;
    }
    if let Some(path) = &args.passphrase_file {
        let p = keys::read_passphrase_file(path).map_err(usage)?;
        found = found.with_passphrase(Passphrase::Given(p));
    } else if args.passphrase {
        found = found.with_passphrase(keys::passphrase_from_terminal());
    }
    Ok(found)
}
