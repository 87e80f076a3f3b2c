//! One module per command.

pub mod backups;
pub mod cleanup;
pub mod clone;
pub mod compose_export;
pub mod compose_import;
pub mod db_dump;
pub mod db_restore;
pub mod extract;
pub mod inspect;
pub mod ls;
pub mod migrate;
pub mod prune;
pub mod recover;
pub mod restore;
pub mod save;
pub mod schedule;
pub mod status;
pub mod verify;
