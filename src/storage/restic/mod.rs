//! restic repositories (`restic:REPO`), through rustic_core: every use of its API is under
//! this folder. TEMPORARY BASE of the read side, to be replaced by the shared one.

pub mod export;
mod fault;
pub mod list;
pub mod maintain;
pub mod read;

pub use fault::{brief, failed};

use anyhow::Result;
use rustic_backend::BackendOptions;
use rustic_core::{Credentials, OpenStatus, Repository, RepositoryOptions};

use crate::error::{Kind, UserError};

/// `restic:REPO`: a repository written the way restic writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResticTarget {
    pub repo: String,
}

impl ResticTarget {
    pub fn parse(s: &str) -> Option<ResticTarget> {
        s.strip_prefix("restic:").map(|r| ResticTarget {
            repo: r.to_string(),
        })
    }
}

/// Opens the repository with `password`. Blocking.
pub fn open(target: &ResticTarget, password: &str) -> Result<Repository<OpenStatus>> {
    let backends = BackendOptions::default()
        .repository(&target.repo)
        .to_backends()
        .map_err(|e| failed(&format!("restic:{}", target.repo), e))?;
    let opts = RepositoryOptions::default().no_cache(true);
    let repo = Repository::new(&opts, &backends)
        .map_err(|e| failed(&format!("restic:{}", target.repo), e))?;
    match repo.config_id() {
        Ok(Some(_)) => {}
        _ => {
            return Err(UserError::new(
                Kind::NotFound,
                format!("restic:{}: no restic repository there", target.repo),
            )
            .into())
        }
    }
    repo.open(&Credentials::password(password)).map_err(|e| {
        if e.is_incorrect_password() {
            UserError::new(Kind::Key, format!("restic:{}: wrong password", target.repo)).into()
        } else {
            failed(&format!("opening restic:{}", target.repo), e)
        }
    })
}

/// The repository's password: `RESTIC_PASSWORD_FILE`, then `RESTIC_PASSWORD`.
pub fn password(file: Option<&std::path::Path>) -> Result<String> {
    let file = file
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("RESTIC_PASSWORD_FILE").map(Into::into));
    if let Some(f) = file {
        let text = std::fs::read_to_string(&f)?;
        return Ok(text.lines().next().unwrap_or_default().to_string());
    }
    if let Ok(p) = std::env::var("RESTIC_PASSWORD") {
        return Ok(p);
    }
    Err(UserError::new(Kind::Usage, "no restic password given").into())
}
