//! The manifest: what an archive says about itself, kept in two PAX global headers (`g`) inside
//! the tar stream, one before the volume's entries and one after them.
//!
//! Why PAX global headers: every tar reader skips them (GNU tar, busybox, bsdtar, Go's
//! archive/tar in the engine), so the seed's plain `tar x` restores our archives without a stray
//! manifest file, and the format is the same for zstd, gzip and plain tar. The value lives in the
//! standard `comment` keyword, which readers must ignore silently. The head carries what is known
//! before the data is read; the trailer carries the counts and the checksum of the entries'
//! bytes, known only at the end.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Compression;

/// The format version written into every manifest.
pub const FORMAT_VERSION: u32 = 1;

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
    /// Bytes of the entries' tar stream (headers, content, padding) that the checksum covers.
    pub tar_bytes: u64,
    /// `blake3:<hex>` of those bytes.
    pub checksum: String,
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
    pub fn new(
        entries: u64,
        content_bytes: u64,
        tar_bytes: u64,
        hash: &blake3::Hash,
        segments: &[super::checksum::Segment],
    ) -> Self {
        ManifestTrailer {
            kind: "trailer".into(),
            format: FORMAT_VERSION,
            tool: env!("CARGO_PKG_NAME").into(),
            entries,
            content_bytes,
            tar_bytes,
            checksum: checksum_string(hash),
            segment_bytes: super::checksum::SEGMENT_BYTES,
            segments: segments
                .iter()
                .map(|s| s.hash.to_hex().to_string())
                .collect(),
        }
    }
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
        let trailer = ManifestTrailer::new(3, 10, 2048, &blake3::hash(b"x"), &[]);
        let data = pax_record("comment", &to_json(&trailer));
        assert_eq!(
            parse_global_header(&data),
            Some(ManifestPart::Trailer(trailer))
        );
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
