//! The snapshot gate: rustic's archiver writes the snapshot file as its last step, whatever its
//! source went through (it only logs a source's errors). Between that write and this tool's
//! check of the stream, a killed run would leave a snapshot of a cut stream looking like a good
//! one. So every backend is wrapped: while `held` runs on a thread, the snapshot files that
//! thread writes are not written (rustic still gets their id). The tool writes the snapshot
//! itself once the stream is known whole, with its final manifest: a snapshot exists only
//! complete.

use std::cell::Cell;
use std::sync::Arc;

use bytes::Bytes;
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};

thread_local! {
    static HELD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the snapshot files written from this thread held back (see the module).
/// rustic writes a backup's snapshot from the thread that called `archive`.
pub fn held<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            HELD.with(|h| h.set(self.0));
        }
    }
    let _reset = Reset(HELD.with(|h| h.replace(true)));
    f()
}

/// A backend whose snapshot writes `held` holds back; everything else passes through.
pub struct Gate(pub Arc<dyn WriteBackend>);

impl ReadBackend for Gate {
    fn location(&self) -> String {
        self.0.location()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.0.list_with_size(tpe)
    }

    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        self.0.list(tpe)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.0.read_full(tpe, id)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.0.read_partial(tpe, id, cacheable, offset, length)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.0.warmup_path(tpe, id)
    }

    fn needs_warm_up(&self) -> bool {
        self.0.needs_warm_up()
    }

    fn warm_up(&self, tpe: FileType, id: &Id) -> RusticResult<()> {
        self.0.warm_up(tpe, id)
    }
}

impl WriteBackend for Gate {
    fn create(&self) -> RusticResult<()> {
        self.0.create()
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        if tpe == FileType::Snapshot && HELD.with(Cell::get) {
            return Ok(());
        }
        self.0.write_bytes(tpe, id, cacheable, content)
    }

    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.0.remove(tpe, id, cacheable)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records what reaches it.
    #[derive(Default)]
    struct Seen(Mutex<Vec<FileType>>);

    impl ReadBackend for Seen {
        fn location(&self) -> String {
            "seen".into()
        }
        fn list_with_size(&self, _: FileType) -> RusticResult<Vec<(Id, u32)>> {
            Ok(vec![])
        }
        fn read_full(&self, _: FileType, _: &Id) -> RusticResult<Bytes> {
            Ok(Bytes::new())
        }
        fn read_partial(
            &self,
            _: FileType,
            _: &Id,
            _: bool,
            _: u32,
            _: u32,
        ) -> RusticResult<Bytes> {
            Ok(Bytes::new())
        }
        fn warmup_path(&self, _: FileType, _: &Id) -> String {
            String::new()
        }
    }

    impl WriteBackend for Seen {
        fn write_bytes(&self, tpe: FileType, _: &Id, _: bool, _: BytesList) -> RusticResult<()> {
            self.0.lock().unwrap().push(tpe);
            Ok(())
        }
        fn remove(&self, _: FileType, _: &Id, _: bool) -> RusticResult<()> {
            Ok(())
        }
    }

    #[test]
    fn snapshots_are_held_only_inside_held_and_only_on_its_thread() {
        let seen = Arc::new(Seen::default());
        let gate = Arc::new(Gate(seen.clone()));
        let write = |g: &Gate, t| g.write_bytes(t, &Id::default(), false, BytesList::default());
        held(|| {
            write(&gate, FileType::Snapshot).unwrap();
            write(&gate, FileType::Pack).unwrap();
            let other = Arc::clone(&gate);
            std::thread::spawn(move || write(&other, FileType::Snapshot).unwrap())
                .join()
                .unwrap();
        });
        write(&gate, FileType::Snapshot).unwrap();
        assert_eq!(
            *seen.0.lock().unwrap(),
            [FileType::Pack, FileType::Snapshot, FileType::Snapshot]
        );
    }
}
