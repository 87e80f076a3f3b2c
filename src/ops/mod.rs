//! Operations: what the commands are made of. Each streams bytes between the engine, archives
//! and destinations with a progress display, and cleans up on every path; commands parse, call
//! operations and print. Operations never import a command, nor a clap type.

pub mod copy;
pub mod ctx;
pub mod new_volume;
pub mod output_plan;
pub mod prune;
pub mod recover;
pub mod restore;
pub mod save;
pub mod select;
pub mod transfer;

pub use ctx::Ctx;
