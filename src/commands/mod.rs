//! One module per command.

pub mod db_dump;
pub mod db_restore;
pub mod inspect;
pub mod ls;
pub mod restore;
pub mod save;
pub mod status;
pub mod verify;
