//! The manifest: what an archive says about itself, kept in two PAX global headers (`g`) inside
//! the tar stream, one before the volume's entries and one after them.
//!
//! Why PAX global headers: every tar reader skips them (GNU tar, busybox, bsdtar, Go's
//! archive/tar in the engine), so the seed's plain `tar x` restores our archives without a stray
//! manifest file, and the format is the same for zstd, gzip and plain tar. The value lives in the
//! standard `comment` keyword, which readers must ignore silently. The head carries what is known
//! before the data is read; the trailer carries the counts and the checksum of the entries'
//! bytes, known only at the end.
//!
//! Format 2 seals the manifest: the trailer's `checksum` covers the head (its header's bytes as
//! stored), every other trailer field and the entries' checksum, so an edited head or trailer
//! fails `verify` and `restore`. Format 1 archives (whose checksum covers the entries only) are
//! still read; their manifest is reported as not covered. The checksum proves integrity, not
//! authenticity: whoever can edit an archive can compute a new one.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Compression;

/// The format version written into every manifest.
pub const FORMAT_VERSION: u32 = 2;
/// The first version whose checksum covers the manifest too.
pub const SEALED_FORMAT: u32 = 2;

/// The path in the `g` header; readers never create it as a file.
pub(crate) const HEADER_NAME: &str = "docker-volume-backup.manifest";

/// Written before the entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestHead {
    /// Always "head".
    pub kind: String,
    pub format: u32,
    pub tool: String,
    pub tool_version: String,
    /// RFC 3339 time the save started.
    pub created: String,
    pub volume: VolumeInfo,
    pub source: SourceInfo,
    pub compression: Compression,
}

/// The volume as the engine described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VolumeInfo {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub options: HashMap<String, String>,
    #[serde(default)]
    pub labels: HashMap<String, String>,
}

/// Where the volume was read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SourceInfo {
    pub context: String,
    pub endpoint: String,
    #[serde(default)]
    pub engine_version: String,
    /// Which engine the volume was read from; archives written before engines were told apart
    /// have none (the engine is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineInfo>,
}

/// The source engine's identity (`docker::identity`), as plain values: the archive format
/// knows nothing of the engine edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EngineInfo {
    /// `docker` or `podman`.
    pub flavour: String,
    /// What identifies the engine (Docker's engine ID; Podman's host name and storage root).
    pub id: String,
    /// The engine's host name.
    pub name: String,
    /// The engine's label, as archive names carry it (`laptop-3f9a1c0b`).
    pub label: String,
}

/// Written after the entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTrailer {
    /// Always "trailer".
    pub kind: String,
    pub format: u32,
    pub tool: String,
    /// Entries in the volume's tar stream (the volume root included).
    pub entries: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// Bytes of the entries' tar stream (headers, content, padding).
    pub tar_bytes: u64,
    /// Format 2: `blake3:<hex>` of the manifest head, every other field of this trailer and the
    /// entries' checksum (`sealed_checksum`). Format 1: of the entries' bytes only.
    pub checksum: String,
    /// Format 2: `blake3:<hex>` of the entries' tar bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries_checksum: Option<String>,
    /// Size of the segments below (the last may be shorter).
    #[serde(default)]
    pub segment_bytes: u64,
    /// blake3 (hex) of each segment of those bytes, to tell where damage is.
    #[serde(default)]
    pub segments: Vec<String>,
}

/// A manifest part recognised in a `g` header.
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestPart {
    Head(Box<ManifestHead>),
    Trailer(ManifestTrailer),
}

impl ManifestHead {
    pub fn new(volume: VolumeInfo, source: SourceInfo, compression: Compression) -> Self {
        ManifestHead {
            kind: "head".into(),
            format: FORMAT_VERSION,
            tool: env!("CARGO_PKG_NAME").into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            volume,
            source,
            compression,
        }
    }
}

impl ManifestTrailer {
    /// The trailer of the entries hashed to `hash`, sealed with the digest of the head's
    /// header (`head_digest`, as written before them).
    pub fn new(
        entries: u64,
        content_bytes: u64,
        tar_bytes: u64,
        hash: &blake3::Hash,
        segments: &[super::checksum::Segment],
        head_digest: Option<&blake3::Hash>,
    ) -> Self {
        let mut trailer = ManifestTrailer {
            kind: "trailer".into(),
            format: FORMAT_VERSION,
            tool: env!("CARGO_PKG_NAME").into(),
            entries,
            content_bytes,
            tar_bytes,
            checksum: String::new(),
            entries_checksum: Some(checksum_string(hash)),
            segment_bytes: super::checksum::SEGMENT_BYTES,
            segments: segments
                .iter()
                .map(|s| s.hash.to_hex().to_string())
                .collect(),
        };
        trailer.checksum = sealed_checksum(head_digest, &trailer);
        trailer
    }
}

/// The digest of a manifest head as it is stored: the data of its PAX global header.
pub fn head_digest(header_data: &[u8]) -> blake3::Hash {
    blake3::hash(header_data)
}

/// The format 2 checksum: the head's digest (or its absence) and every trailer field but
/// `checksum`, each length-prefixed so that no two manifests hash alike.
pub fn sealed_checksum(head_digest: Option<&blake3::Hash>, t: &ManifestTrailer) -> String {
    let mut h = blake3::Hasher::new_derive_key("docker-volume-backup manifest checksum, format 2");
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    match head_digest {
        Some(d) => field(d.as_bytes()),
        None => field(b""),
    }
    field(t.kind.as_bytes());
    field(&t.format.to_le_bytes());
    field(t.tool.as_bytes());
    field(&t.entries.to_le_bytes());
    field(&t.content_bytes.to_le_bytes());
    field(&t.tar_bytes.to_le_bytes());
    field(t.entries_checksum.as_deref().unwrap_or_default().as_bytes());
    field(&t.segment_bytes.to_le_bytes());
    field(&(t.segments.len() as u64).to_le_bytes());
    for s in &t.segments {
        field(s.as_bytes());
    }
    checksum_string(&h.finalize())
}

/// How checksums are spelled in manifests.
pub fn checksum_string(hash: &blake3::Hash) -> String {
    format!("blake3:{}", hash.to_hex())
}

/// The JSON of a manifest part, as stored in the `comment` record.
pub(crate) fn to_json<T: Serialize>(part: &T) -> Vec<u8> {
    serde_json::to_vec(part).expect("manifest serialises")
}

/// Recognises our manifest in the data of a `g` header; foreign global headers give `None`.
pub(crate) fn parse_global_header(data: &[u8]) -> Option<ManifestPart> {
    let comment = tar::PaxExtensions::new(data)
        .filter_map(Result::ok)
        .find(|ext| ext.key_bytes() == b"comment")?;
    let value: serde_json::Value = serde_json::from_slice(comment.value_bytes()).ok()?;
    if value.get("tool")?.as_str()? != env!("CARGO_PKG_NAME") {
        return None;
    }
    match value.get("kind")?.as_str()? {
        "head" => serde_json::from_value(value)
            .ok()
            .map(|h| ManifestPart::Head(Box::new(h))),
        "trailer" => serde_json::from_value(value)
            .ok()
            .map(ManifestPart::Trailer),
        _ => None,
    }
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record itself.
pub(crate) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // space, '=', newline
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for n in [0usize, 1, 5, 90, 93, 94, 95, 996, 997, 10_000] {
            let rec = pax_record("comment", &vec![b'x'; n]);
            let (len, _) = std::str::from_utf8(&rec).unwrap().split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), rec.len(), "value length {n}");
            let parsed = tar::PaxExtensions::new(&rec).next().unwrap().unwrap();
            assert_eq!(parsed.value_bytes().len(), n);
        }
    }

    #[test]
    fn manifest_round_trips_through_a_global_header() {
        let head = ManifestHead::new(
            VolumeInfo {
                name: "données".into(),
                driver: "local".into(),
                options: HashMap::new(),
                labels: [("a=b".to_string(), "c\nd".to_string())].into(),
            },
            SourceInfo::default(),
            Compression::Zstd,
        );
        let data = pax_record("comment", &to_json(&head));
        assert_eq!(
            parse_global_header(&data),
            Some(ManifestPart::Head(Box::new(head)))
        );
        let trailer = ManifestTrailer::new(3, 10, 2048, &blake3::hash(b"x"), &[], None);
        let data = pax_record("comment", &to_json(&trailer));
        assert_eq!(
            parse_global_header(&data),
            Some(ManifestPart::Trailer(trailer))
        );
    }

    #[test]
    fn the_seal_covers_the_head_and_every_trailer_field() {
        let head = head_digest(b"head");
        let t = ManifestTrailer::new(3, 10, 2048, &blake3::hash(b"x"), &[], Some(&head));
        assert_eq!(t.checksum, sealed_checksum(Some(&head), &t));
        assert_ne!(t.checksum, sealed_checksum(Some(&head_digest(b"Head")), &t));
        assert_ne!(t.checksum, sealed_checksum(None, &t));
        let edits: [fn(&mut ManifestTrailer); 6] = [
            |t| t.entries += 1,
            |t| t.content_bytes += 1,
            |t| t.tar_bytes += 512,
            |t| t.entries_checksum = Some(checksum_string(&blake3::hash(b"y"))),
            |t| t.segments.push("00".into()),
            |t| t.format = 1,
        ];
        for edit in edits {
            let mut edited = t.clone();
            edit(&mut edited);
            assert_ne!(t.checksum, sealed_checksum(Some(&head), &edited));
        }
    }

    #[test]
    fn format_1_trailers_still_parse() {
        let json = br#"{"kind":"trailer","format":1,"tool":"docker-volume-backup","entries":1,"content_bytes":0,"tar_bytes":512,"checksum":"blake3:00"}"#;
        let data = pax_record("comment", json);
        let Some(ManifestPart::Trailer(t)) = parse_global_header(&data) else {
            panic!("not parsed");
        };
        assert_eq!((t.format, t.entries_checksum), (1, None));
    }

    #[test]
    fn foreign_global_headers_are_not_manifests() {
        assert_eq!(
            parse_global_header(&pax_record("comment", b"git sha")),
            None
        );
        assert_eq!(
            parse_global_header(&pax_record("comment", b"{\"kind\":\"head\"}")),
            None
        );
        assert_eq!(parse_global_header(b"garbage"), None);
    }
}
