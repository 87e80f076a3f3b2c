//! A snapshot's directory read back as the tar stream a volume's archive endpoint gives: `./`
//! for the directory itself (its owner, mode and mtime: the volume root's), then `./a`, `./a/b`
//! in tree order, contents read from the repository. `restore` sends that stream through the
//! same checked path as an archive without a manifest.
//!
//! Headers are written here, not by the tar crate's builder (which drops the `./` prefix):
//! GNU headers with base-256 numbers where octal is too small, and a PAX `path`/`linkpath`
//! record for a name over 100 bytes. Hard links are rebuilt from the nodes' inode, device and
//! link count (the first path met carries the content). Sockets have no tar form and are left
//! out (counted); of the extended attributes only `security.capability` is carried (the one the
//! engine's archive endpoint gives and applies; a foreign one could fail the whole upload), the
//! others are counted.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, Result};
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{IndexedFull, LsOptions, Repository};

/// Go's `os.FileMode` bits that restic stores next to the permission bits.
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// Tar entries, the root `./` included.
    pub entries: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// Sockets left out (tar cannot carry them).
    pub sockets: u64,
    /// Extended attributes left out (all but `security.capability`).
    pub xattrs_left_out: u64,
}

/// The one extended attribute a volume's archive endpoint carries both ways.
const CAPABILITY: &str = "security.capability";

/// Writes `root` (a directory node of a snapshot) and everything under it to `out` as a tar
/// stream, ending with the two zero blocks. With `only`, just the directories leading to that
/// relative path and the path's own subtree are written (`restore --path`): the rest of the
/// snapshot is not read at all.
pub fn write_tar<S: IndexedFull>(
    repo: &Repository<S>,
    root: &Node,
    only: Option<&Path>,
    out: &mut dyn Write,
) -> Result<Exported> {
    if !root.is_dir() {
        return Err(anyhow!(
            "the snapshot's path is a {}, not a directory",
            root.node_type
        ));
    }
    let mut w = TarWriter {
        out,
        done: Exported::default(),
        links: HashMap::new(),
    };
    w.entry(repo, Path::new(""), root)?;
    let (start, prefix) = match only {
        None => (root.clone(), PathBuf::new()),
        Some(sub) => {
            let mut node = root.clone();
            let mut at = PathBuf::new();
            for part in sub.components() {
                let Component::Normal(name) = part else {
                    return Err(anyhow!("{}: not a plain relative path", sub.display()));
                };
                let Some(tree) = node.subtree else {
                    return Err(anyhow!("{} is not a directory", at.display()));
                };
                let child = repo
                    .get_tree(&tree)
                    .map_err(|e| {
                        super::failed(&format!("reading the tree of ./{}", at.display()), e)
                    })?
                    .nodes
                    .into_iter()
                    .find(|n| n.name() == name)
                    .ok_or_else(|| anyhow!("./{} is not in the snapshot", sub.display()))?;
                at.push(name);
                w.entry(repo, &at, &child)?;
                node = child;
            }
            (node, at)
        }
    };
    if start.is_dir() {
        let opts = LsOptions::default();
        for item in repo
            .ls(&start, &opts)
            .map_err(|e| super::failed("listing the snapshot", e))?
        {
            let (path, node) =
                item.map_err(|e| super::failed("reading the snapshot's trees", e))?;
            w.entry(repo, &prefix.join(path), &node)?;
        }
    }
    // End of archive: two zero blocks.
    w.out.write_all(&[0u8; 1024]).map_err(sent)?;
    Ok(w.done)
}

/// A write error: the receiving side (the restore) stopped; its own error says why.
fn sent(e: io::Error) -> anyhow::Error {
    anyhow::Error::new(e).context("the tar stream was not taken")
}

struct TarWriter<'a> {
    out: &'a mut dyn Write,
    done: Exported,
    /// (device, inode) of files with more than one link, and the first path written for them.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl TarWriter<'_> {
    /// Writes one node at `rel` (relative to the volume root; empty for the root itself).
    fn entry<S: IndexedFull>(
        &mut self,
        repo: &Repository<S>,
        rel: &Path,
        node: &Node,
    ) -> Result<()> {
        fail::fail_point!("restic-export-entry");
        let mut name = b"./".to_vec();
        name.extend_from_slice(rel.as_os_str().as_bytes());
        let meta = &node.meta;
        let mut header = tar::Header::new_gnu();
        header.set_mode(unix_mode(meta.mode, node.is_dir()));
        header.set_uid(meta.uid.unwrap_or(0).into());
        header.set_gid(meta.gid.unwrap_or(0).into());
        header.set_mtime(mtime(meta));
        header.set_size(0);
        let mut link: Option<Vec<u8>> = None;
        let mut content = false;
        match &node.node_type {
            NodeType::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                if !rel.as_os_str().is_empty() {
                    name.push(b'/');
                }
            }
            NodeType::File => {
                let key = (meta.device_id, meta.inode);
                match self.links.get(&key) {
                    Some(first) if meta.links > 1 && meta.inode != 0 => {
                        header.set_entry_type(tar::EntryType::Link);
                        link = Some(first.clone());
                    }
                    _ => {
                        if meta.links > 1 && meta.inode != 0 {
                            self.links.insert(key, name.clone());
                        }
                        header.set_entry_type(tar::EntryType::Regular);
                        header.set_size(meta.size);
                        content = true;
                    }
                }
            }
            NodeType::Symlink { .. } => {
                header.set_entry_type(tar::EntryType::Symlink);
                link = Some(node.node_type.to_link().as_os_str().as_bytes().to_vec());
            }
            NodeType::Dev { device } | NodeType::Chardev { device } => {
                header.set_entry_type(if matches!(node.node_type, NodeType::Dev { .. }) {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Char
                });
                let (major, minor) = split_device(*device);
                header.set_device_major(major)?;
                header.set_device_minor(minor)?;
            }
            NodeType::Fifo => header.set_entry_type(tar::EntryType::Fifo),
            NodeType::Socket => {
                self.done.sockets += 1;
                return Ok(());
            }
        }
        let mut pax = Vec::new();
        if name.len() > 100 {
            pax_record(&mut pax, "path", &name);
            set_field(&mut header.as_old_mut().name, &name[..100]);
        } else {
            set_field(&mut header.as_old_mut().name, &name);
        }
        if let Some(target) = &link {
            if target.len() > 100 {
                pax_record(&mut pax, "linkpath", target);
                set_field(&mut header.as_old_mut().linkname, &target[..100]);
            } else {
                set_field(&mut header.as_old_mut().linkname, target);
            }
        }
        // Only the attribute the engine itself gives and takes: another (a snapshot restic
        // made of a directory with `user.*` attributes) could fail the whole upload.
        for xattr in &meta.extended_attributes {
            match (&xattr.value, xattr.name == CAPABILITY) {
                (Some(value), true) => {
                    pax_record(&mut pax, &format!("SCHILY.xattr.{CAPABILITY}"), value);
                }
                _ => self.done.xattrs_left_out += 1,
            }
        }
        if !pax.is_empty() {
            let mut ext = tar::Header::new_ustar();
            set_field(&mut ext.as_old_mut().name, b"././@PaxHeader");
            ext.set_mode(0o644);
            ext.set_size(pax.len() as u64);
            ext.set_entry_type(tar::EntryType::XHeader);
            ext.set_cksum();
            self.out.write_all(ext.as_bytes()).map_err(sent)?;
            self.out.write_all(&pax).map_err(sent)?;
            pad(self.out, pax.len() as u64)?;
        }
        header.set_cksum();
        self.out.write_all(header.as_bytes()).map_err(sent)?;
        self.done.entries += 1;
        if content && meta.size > 0 {
            let mut counted = Counted {
                inner: &mut *self.out,
                n: 0,
            };
            let shown = || String::from_utf8_lossy(&name).into_owned();
            repo.dump(node, &mut counted).map_err(|e| {
                super::failed(&format!("reading {} from the repository", shown()), e)
            })?;
            if counted.n != meta.size {
                return Err(anyhow!(
                    "the repository is damaged: {} has {} bytes of content, its node says {}",
                    shown(),
                    counted.n,
                    meta.size
                ));
            }
            pad(self.out, meta.size)?;
            self.done.content_bytes += meta.size;
        }
        Ok(())
    }
}

/// Counts what passes through to the tar stream (a file's content, against its node's size).
struct Counted<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn pad(out: &mut dyn Write, len: u64) -> Result<()> {
    let rest = (512 - len % 512) % 512;
    out.write_all(&[0u8; 512][..rest as usize]).map_err(sent)
}

fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value);
}

/// One PAX record: `LEN key=value\n`, LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Unix permission bits (with setuid, setgid, sticky) of a restic node's Go `FileMode`; a node
/// without a mode gets 0755 (directory) or 0644.
pub fn unix_mode(go_mode: Option<u32>, dir: bool) -> u32 {
    let Some(go) = go_mode else {
        return if dir { 0o755 } else { 0o644 };
    };
    let mut mode = go & 0o777;
    if go & GO_MODE_SETUID != 0 {
        mode |= 0o4000;
    }
    if go & GO_MODE_SETGID != 0 {
        mode |= 0o2000;
    }
    if go & GO_MODE_STICKY != 0 {
        mode |= 0o1000;
    }
    mode
}

/// Seconds since the epoch (tar has no earlier times in an octal field; sub-seconds are lost,
/// as through the engine).
fn mtime(meta: &Metadata) -> u64 {
    meta.mtime.map(|t| t.as_second().max(0) as u64).unwrap_or(0)
}

/// Linux's `dev_t` encoding (what restic stores) into major and minor numbers.
pub fn split_device(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// `name` as restic's tree stores it, for lookups by path.
pub fn os(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes_become_unix_modes() {
        assert_eq!(unix_mode(Some(0o644), false), 0o644);
        // os.ModeDir | 0755
        assert_eq!(unix_mode(Some((1 << 31) | 0o755), true), 0o755);
        assert_eq!(unix_mode(Some(GO_MODE_SETUID | 0o755), false), 0o4755);
        assert_eq!(
            unix_mode(
                Some((1 << 31) | GO_MODE_STICKY | GO_MODE_SETGID | 0o777),
                true
            ),
            0o3777
        );
        assert_eq!(unix_mode(None, true), 0o755);
        assert_eq!(unix_mode(None, false), 0o644);
    }

    #[test]
    fn devices_split_like_glibc() {
        // makedev(8, 1), makedev(1, 3), makedev(259, 65536)
        assert_eq!(split_device(0x801), (8, 1));
        assert_eq!(split_device(0x103), (1, 3));
        let makedev = |major: u64, minor: u64| {
            ((major & 0xfff) << 8)
                | ((major & !0xfff) << 32)
                | (minor & 0xff)
                | ((minor & !0xff) << 12)
        };
        let dev = makedev(259, 65536);
        assert_eq!(split_device(dev), (259, 65536));
    }

    #[test]
    fn pax_records_count_their_own_length() {
        for n in [1usize, 80, 90, 95, 96, 97, 98, 200, 990, 995, 1000] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &vec![b'a'; n]);
            let (len, _) =
                std::str::from_utf8(&out[..out.iter().position(|&b| b == b' ').unwrap()])
                    .map(|s| (s.parse::<usize>().unwrap(), ()))
                    .unwrap();
            assert_eq!(len, out.len(), "value of {n} bytes");
        }
    }
}
