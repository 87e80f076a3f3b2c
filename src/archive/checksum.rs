//! The checksum of an archive's entries: one blake3 over all their tar bytes, plus one per
//! 64 MiB segment so that damage can be located (which entries) and not only detected.

/// Bytes per segment checksum. Fixed: the segments recorded at save time must line up with the
/// ones computed when reading.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// Small pieces are hashed in batches of this size.
const BATCH: usize = 64 * 1024;

/// One segment's checksum and the entries it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub hash: blake3::Hash,
    pub start: u64,
    pub first_entry: String,
    pub last_entry: String,
}

/// Hashes a stream given in pieces of any size; the result depends on the bytes only.
#[derive(Debug, Clone, Default)]
pub struct StreamHasher {
    whole: blake3::Hasher,
    /// blake3 is fast on long inputs (many 1 KiB chunks at once with SIMD) and slow on the
    /// 512-byte headers and small files that most entries are: those are gathered here first.
    pending: Vec<u8>,
    segment: blake3::Hasher,
    segment_len: u64,
    segments: Vec<Segment>,
    /// Bytes fed to the hashers (pending ones not included).
    total: u64,
    /// Where entries start, by stream offset: the one in progress at the current segment's
    /// start, and those after it.
    marks: Vec<(u64, String)>,
}

impl StreamHasher {
    /// Marks the start of an entry's bytes (for locating damage).
    pub fn entry(&mut self, path: &str) {
        let offset = self.total + self.pending.len() as u64;
        self.marks.push((offset, path.to_string()));
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if self.pending.is_empty() && bytes.len() >= BATCH {
            self.feed(bytes);
        } else {
            self.pending.extend_from_slice(bytes);
            if self.pending.len() >= BATCH {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.feed(&pending);
            self.pending = pending;
            self.pending.clear();
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        self.whole.update(bytes);
        while !bytes.is_empty() {
            let room = (SEGMENT_BYTES - self.segment_len) as usize;
            let take = room.min(bytes.len());
            self.segment.update(&bytes[..take]);
            self.segment_len += take as u64;
            self.total += take as u64;
            bytes = &bytes[take..];
            if self.segment_len == SEGMENT_BYTES {
                self.close_segment();
            }
        }
    }

    fn close_segment(&mut self) {
        let (start, end) = (self.total - self.segment_len, self.total);
        let name_at = |limit: u64, inclusive: bool| {
            self.marks
                .iter()
                .rev()
                .find(|(o, _)| if inclusive { *o <= limit } else { *o < limit })
                .map(|(_, p)| p.clone())
                .unwrap_or_default()
        };
        let first_entry = name_at(start, true);
        let last_entry = name_at(end, false);
        self.segments.push(Segment {
            hash: self.segment.finalize(),
            start,
            first_entry,
            last_entry,
        });
        // Keep the entry in progress at the next segment's start, and the later ones.
        let keep_from = self.marks.iter().rposition(|(o, _)| *o <= end).unwrap_or(0);
        self.marks.drain(..keep_from);
        self.segment = blake3::Hasher::new();
        self.segment_len = 0;
    }

    /// Segments completed so far (the last, partial one excluded).
    pub fn complete_segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The whole checksum and every segment, the last partial one included.
    pub fn finish(&self) -> (blake3::Hash, Vec<Segment>) {
        let mut done = self.clone();
        done.flush();
        if done.segment_len > 0 {
            done.close_segment();
        }
        (done.whole.finalize(), done.segments)
    }
}

/// The first segment whose checksum differs from the recorded one.
pub fn first_damaged<'a>(computed: &'a [Segment], recorded: &[String]) -> Option<&'a Segment> {
    computed
        .iter()
        .zip(recorded)
        .find(|(c, r)| c.hash.to_hex().as_str() != r.as_str())
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_does_not_depend_on_piece_sizes() {
        let data: Vec<u8> = (0..(SEGMENT_BYTES as usize * 2 + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut a = StreamHasher::default();
        a.update(&data);
        let mut b = StreamHasher::default();
        for piece in data.chunks(511) {
            b.update(piece);
        }
        let (ha, sa) = a.finish();
        let (hb, sb) = b.finish();
        assert_eq!(ha, blake3::hash(&data));
        assert_eq!(ha, hb);
        assert_eq!(sa.len(), 3);
        assert_eq!(
            sa.iter().map(|s| s.hash).collect::<Vec<_>>(),
            sb.iter().map(|s| s.hash).collect::<Vec<_>>()
        );
        assert_eq!(sa[1].start, SEGMENT_BYTES);
        assert_eq!(
            sa[1].hash,
            blake3::hash(&data[SEGMENT_BYTES as usize..2 * SEGMENT_BYTES as usize])
        );
    }

    #[test]
    fn damage_is_placed_in_its_segment() {
        let mut h = StreamHasher::default();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            h.entry(name);
            h.update(&vec![i as u8; SEGMENT_BYTES as usize / 2 + 10]);
        }
        let (_, good) = h.finish();
        let recorded: Vec<String> = good.iter().map(|s| s.hash.to_hex().to_string()).collect();
        let mut d = StreamHasher::default();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            d.entry(name);
            let mut data = vec![i as u8; SEGMENT_BYTES as usize / 2 + 10];
            if *name == "c" {
                data[100] ^= 1;
            }
            d.update(&data);
        }
        let (_, bad) = d.finish();
        let hit = first_damaged(&bad, &recorded).unwrap();
        assert_eq!(
            (hit.first_entry.as_str(), hit.last_entry.as_str()),
            ("b", "c")
        );
        assert!(first_damaged(&good, &recorded).is_none());
    }
}
