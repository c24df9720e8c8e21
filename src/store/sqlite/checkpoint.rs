//! Keeping the WAL small: a checkpoint thread copies committed pages into the database after
//! each commit, and the writer lets the WAL start over between batches once it has grown.
//!
//! SQLite's automatic checkpoint runs inside a commit, while that batch's requests wait; it is
//! replaced by [`note_wal_frames`] (the WAL hook), [`maybe_checkpoint`] and [`run_checkpointer`].

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// WAL frames after which the writer lets the WAL start over (8192 frames of 4 KiB: 32 MiB, the
/// `journal_size_limit`). Large enough that the checkpoint thread, not the writer, copies nearly
/// every frame (measured: at 2048 the writer checkpointed every ~35 ms under load, in its own
/// thread); small enough that a checkpoint, which sorts the WAL index, stays short.
const CHECKPOINT_FRAMES: i32 = 8192;

thread_local! {
    /// Frames in the WAL after the writer's last commit (the writer thread's own connection).
    static WAL_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
    /// The same, as last counted in `hookgate_store_wal_frames_total` ([`maybe_checkpoint`]
    /// resets [`WAL_FRAMES`] before the WAL has actually started over).
    static COUNTED_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// The WAL hook of the writer's connection: notes how large the WAL has grown, and counts the
/// frames the commit wrote in `hookgate_store_wal_frames_total` (a frame is one page and a
/// 24-byte header: what the store writes to the WAL, before a checkpoint writes it again).
pub(super) fn note_wal_frames(
    _: &rusqlite::hooks::Wal,
    frames: std::os::raw::c_int,
) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(frames));
    let before = COUNTED_FRAMES.with(|f| f.replace(frames));
    // Fewer frames than before: the WAL started over, and all of them are this commit's.
    let written = if frames >= before {
        frames - before
    } else {
        frames
    };
    metrics::counter!("hookgate_store_wal_frames_total")
        .increment(u64::try_from(written).unwrap_or(0));
    Ok(())
}

/// Lets the WAL start over once it has grown past [`CHECKPOINT_FRAMES`]: run by the writer
/// between batches, so no commit adds frames meanwhile and the next commit can write from the
/// start of the file. The checkpoint thread has usually copied most frames already, so this is
/// short. PASSIVE never waits for readers (if one holds an old snapshot, a later call finishes).
pub(super) fn maybe_checkpoint(conn: &Connection) {
    if WAL_FRAMES.with(std::cell::Cell::get) < CHECKPOINT_FRAMES {
        return;
    }
    let started = Instant::now();
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok((log, done)) => {
            if log == done {
                WAL_FRAMES.with(|f| f.set(0));
            }
            metrics::histogram!("hookgate_store_checkpoint_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry after the next batch")
        }
    }
}

/// The pause after each checkpoint, during which kicks coalesce. Each checkpoint writes every
/// page changed since the last one, and successive commits change the same rightmost leaves:
/// 50 ms instead of 5 cut the database file's writes from 4.8 to 3.2 KB per 1.5 KB event
/// (docs/performance.md, "Bytes written per event").
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(50);

/// Shows the store's size on disk, the database file and its WAL, as `hookgate_store_bytes`
/// (two `stat` calls: cheap enough after every checkpoint).
pub(super) fn record_size(db: &Path) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let bytes = size(db) + size(Path::new(&wal));
    metrics::gauge!("hookgate_store_bytes").set(bytes as f64);
}

/// The checkpoint thread: a PASSIVE checkpoint after each kick from the writer, a TRUNCATE one
/// when the writer stops (its kicks end). After each, the store's size is shown again (a
/// checkpoint is when the file shrinks after giving space back).
pub(super) fn run_checkpointer(conn: &Connection, kicks: &std::sync::mpsc::Receiver<()>) {
    let path = conn.path().map(std::path::PathBuf::from);
    let checkpoint = |mode: &str| {
        if let Err(e) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
            tracing::warn!(error = %e, mode, "WAL checkpoint failed; will retry");
        }
        if let Some(p) = &path {
            record_size(p);
        }
    };
    while kicks.recv().is_ok() {
        checkpoint("PASSIVE");
        // Let a few commits gather: each checkpoint has a fixed cost (it sorts the WAL index).
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
    checkpoint("TRUNCATE");
}
