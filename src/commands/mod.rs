//! One module per command.

pub mod backups;
pub mod inspect;
pub mod ls;
pub mod prune;
pub mod restore;
pub mod save;
pub mod schedule;
pub mod status;
pub mod verify;
