//! Integration tests: the real binary against the real Docker Engine (and the real docker CLI
//! for the plugin tests). Run with `make test`; each test removes what it made.

mod harness;

mod bad_input;
mod cancel;
mod cleanup;
mod compose;
mod compose_db;
mod context;
mod db;
mod encrypt;
mod engines;
mod interop;
mod locks;
mod messages;
mod migrate;
mod notify;
mod output;
mod plugin;
mod podman;
mod prune;
mod recover;
mod recovery;
mod restic_read;
mod restic_remote;
mod restic_rest;
mod restic_save;
mod restore_check;
mod roundtrip;
mod s3;
mod schedule;
mod tls;
mod untrusted;
mod verify;
mod volume_options;
