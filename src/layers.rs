//! The import rules of ARCHITECTURE.md, checked against the source on every `cargo test`: only
//! the entry point, the commands and the resolve step see `cli.rs`; nothing imports a command;
//! no command imports another; `error.rs` imports nothing of the crate.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(path relative to src/, text)` of every source file.
fn tree() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a readable source file");
            let rel = p
                .strip_prefix(&src)
                .expect("under src/")
                .display()
                .to_string();
            (rel, text)
        })
        // This file names the patterns it looks for.
        .filter(|(rel, _)| rel != "layers.rs")
        .collect()
}

/// The lines of `text` outside its `#[cfg(test)]` module that mention `needle`.
fn mentions(text: &str, needle: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//") && l.contains(needle))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn only_the_top_sees_the_command_line() {
    for (file, text) in tree() {
        let top = file == "lib.rs"
            || file == "cli.rs"
            || file.starts_with("commands/")
            || file.starts_with("settings/");
        if !top {
            let found = mentions(&text, "crate::cli");
            assert!(found.is_empty(), "{file} imports cli.rs: {found:?}");
            let found = mentions(&text, "clap::");
            assert!(found.is_empty(), "{file} uses clap: {found:?}");
        }
    }
}

#[test]
fn nothing_imports_a_command() {
    for (file, text) in tree() {
        let found = mentions(&text, "crate::commands");
        assert!(found.is_empty(), "{file} imports a command: {found:?}");
        if file.starts_with("commands/") && file != "commands/mod.rs" {
            let found = mentions(&text, "super::");
            assert!(
                found.is_empty(),
                "{file} imports another command: {found:?}"
            );
        }
    }
}

#[test]
fn errors_depend_on_nothing() {
    let (_, text) = tree()
        .into_iter()
        .find(|(f, _)| f == "error.rs")
        .expect("src/error.rs");
    let found = mentions(&text, "crate::");
    assert!(found.is_empty(), "error.rs imports {found:?}");
}

#[test]
fn the_checks_see_the_tree() {
    let files = tree();
    assert!(files.iter().any(|(f, _)| f == "commands/save.rs"));
    assert!(files.iter().any(|(f, _)| f == "docker/helper.rs"));
    // The rule would catch a violation: a line that imports cli.rs is found.
    assert_eq!(
        mentions("use crate::cli::SaveArgs;\n", "crate::cli"),
        ["use crate::cli::SaveArgs;"]
    );
}
