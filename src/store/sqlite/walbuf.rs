//! The WAL write buffer: a small SQLite VFS, used only by the writer's connection, that gathers
//! a commit's WAL writes into one `pwrite`.
//!
//! # Why
//! SQLite writes each WAL frame with two `write` calls (its 24-byte header, then the page), so
//! a commit of ~34 frames makes ~68 `pwrite` system calls before its `fdatasync`. Measured on the
//! benchmark VM: two `pwrite`s per frame cost 4.28 µs a frame, one `pwrite` of 40 contiguous
//! frames 0.92 µs a frame: ~145 µs of each commit could be ~31 µs, on the writer thread, which
//! is the bottleneck of durable inserts.
//!
//! # How
//! The VFS "hookgate-walbuf" is a copy of the default (unix) VFS whose `xOpen` differs:
//! - any file but a WAL (the database, journals, temporary files) is opened by the real VFS
//!   directly into SQLite's file object, with the real methods: nothing changes for them;
//! - a WAL file (`SQLITE_OPEN_WAL`) is wrapped: a write contiguous with the buffered range is
//!   appended to a buffer in memory (up to [`BUFFER_BYTES`], ~128 KiB); the buffer goes to the
//!   real file, with one write, before any other call on the file (sync, read, truncate, size,
//!   close, locks, file controls, shared memory), and before a write that does not follow it.
//!
//! # Durability
//! Every byte SQLite wrote is in the real file before `xSync` is delegated, unchanged, so a
//! commit is exactly as durable as without the buffer. If the buffer cannot be written, the
//! call that wrote it (usually `xSync`) fails with the write's error, and SQLite rolls the
//! transaction back as after a failed write; the buffer is dropped (its frames were never part
//! of a committed transaction: a commit is published only after its sync succeeds).
//!
//! This relies on `synchronous=FULL` (or EXTRA) on the connection, which hookgate's writer
//! always sets: with it, SQLite syncs the WAL at every commit *before* publishing the new frames
//! in the WAL index (the shared memory other connections read). With `synchronous=NORMAL`
//! SQLite would publish frames without any call on the WAL file, and other connections (the
//! checkpoint thread, readers) could read frames still in this buffer: [`open`] sets FULL
//! before anything else, and checks it.

#![allow(unsafe_code)]

use std::ffi::{CStr, c_int, c_void};
use std::path::Path;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

use libsqlite3_sys as ffi;
use rusqlite::{Connection, OpenFlags};

/// The VFS's registered name.
const VFS_NAME: &CStr = c"hookgate-walbuf";

/// The most bytes a WAL file's buffer holds: the most the unix VFS writes in one call (its
/// `seekAndWriteFd` masks a write's length with `0x1ffff`: a longer write would be cut short, or
/// written as nothing, and fail as "disk full"). 31 frames of 4 KiB; a commit of ~34 frames is
/// written in two calls.
const BUFFER_BYTES: usize = 0x1ffff;

/// The VFS this one wraps (the default VFS when it was registered).
static REAL_VFS: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(ptr::null_mut());

/// The result code of registering the VFS (once per process).
static REGISTERED: OnceLock<c_int> = OnceLock::new();

/// Opens `path` (read-write, created if needed, like [`Connection::open`]) through the WAL
/// write buffer, with `synchronous=FULL` set before anything is written.
///
/// # Errors
/// When the VFS cannot be registered, or the database cannot be opened.
pub(super) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let rc = *REGISTERED.get_or_init(register);
    if rc != ffi::SQLITE_OK {
        return Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("the WAL write buffer (a SQLite VFS) could not be registered".into()),
        ));
    }
    let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), VFS_NAME)?;
    // Before any write: the buffer is flushed by the WAL sync at every commit (module doc).
    conn.pragma_update(None, "synchronous", "FULL")?;
    let level: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    if level < 2 {
        return Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_MISUSE),
            Some(format!(
                "the WAL write buffer needs synchronous=FULL, the connection has {level}"
            )),
        ));
    }
    Ok(conn)
}

/// Registers the VFS (not as the default); answers SQLite's result code.
fn register() -> c_int {
    // SAFETY: `sqlite3_vfs_find(NULL)` initialises SQLite if needed and answers the default VFS
    // or NULL; a registered VFS is never freed.
    let real = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
    if real.is_null() {
        return ffi::SQLITE_ERROR;
    }
    // SAFETY: `real` points to a live VFS (above); this copies its fields (plain data).
    let mut vfs = unsafe { *real };
    let Some(size) = c_int::try_from(REAL_AT)
        .ok()
        .and_then(|at| at.checked_add(vfs.szOsFile))
    else {
        return ffi::SQLITE_ERROR;
    };
    // Every field but these stays the real VFS's (its `pAppData` included: its own methods,
    // copied, may read it). The real VFS's methods are used for everything but `xOpen`.
    vfs.szOsFile = size;
    vfs.zName = VFS_NAME.as_ptr();
    vfs.pNext = ptr::null_mut();
    vfs.xOpen = Some(x_open);
    REAL_VFS.store(real, Ordering::Release);
    let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(vfs));
    // SAFETY: the VFS object lives for the rest of the process (leaked), and its name is a
    // static string; 0: not the default VFS.
    unsafe { ffi::sqlite3_vfs_register(vfs, 0) }
}

/// A WAL file opened through the VFS: SQLite's file object (first, so that SQLite's pointer is
/// a pointer to this), then the buffer; the real file follows at [`REAL_AT`].
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    /// The real VFS's file, in the same allocation, at [`REAL_AT`].
    real: *mut ffi::sqlite3_file,
    /// Bytes written by SQLite, not yet in the real file.
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    at: i64,
}

/// Where the real file starts in SQLite's allocation (`szOsFile` bytes, 8-aligned by SQLite).
const REAL_AT: usize = size_of::<WalFile>().next_multiple_of(16);

/// The methods of a wrapped WAL file. Version 2: no `xFetch` (memory-mapped I/O is for the
/// database file, which is not wrapped).
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

#[cfg(test)]
mod counts {
    //! What the tests check: that writes were buffered, and several went in one flush.
    use std::sync::atomic::AtomicU64;
    pub(super) static BUFFERED: AtomicU64 = AtomicU64::new(0);
    pub(super) static FLUSHES: AtomicU64 = AtomicU64::new(0);
}

/// `xOpen`: a WAL file is wrapped; any other file is the real VFS's, unchanged.
unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real_vfs = REAL_VFS.load(Ordering::Acquire);
    // SAFETY: set before the VFS was registered, to a VFS that is never freed.
    let Some(real_open) = (unsafe { real_vfs.as_ref() }).and_then(|v| v.xOpen) else {
        return ffi::SQLITE_ERROR;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // SAFETY: `file` has `szOsFile` bytes, more than the real VFS's; the other arguments
        // are SQLite's own, passed on.
        return unsafe { real_open(real_vfs, name, file, flags, out_flags) };
    }
    // SAFETY: `file` points to `szOsFile` = REAL_AT + the real VFS's size bytes, aligned to 8
    // by SQLite's allocator (REAL_AT is a multiple of 16).
    let real = unsafe { file.cast::<u8>().add(REAL_AT) }.cast::<ffi::sqlite3_file>();
    // SAFETY: both point into SQLite's allocation (above); no methods yet, so that on failure
    // neither SQLite nor this code closes a file that was not opened.
    unsafe {
        (*file).pMethods = ptr::null();
        (*real).pMethods = ptr::null();
    }
    // SAFETY: `real` has the real VFS's `szOsFile` bytes; the other arguments are SQLite's.
    let rc = unsafe { real_open(real_vfs, name, real, flags, out_flags) };
    if rc != ffi::SQLITE_OK {
        // SAFETY: a real file with methods must be closed even though its open failed.
        unsafe {
            if let Some(close) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
                close(real);
            }
        }
        return rc;
    }
    // SAFETY: `file` is the start of SQLite's allocation, large enough and aligned for a
    // `WalFile` (above); it held no `WalFile` before, so nothing is overwritten un-dropped.
    unsafe {
        file.cast::<WalFile>().write(WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            real,
            buf: Vec::new(),
            at: 0,
        });
    }
    ffi::SQLITE_OK
}

/// The `WalFile` behind a file SQLite calls a [`WAL_METHODS`] method on.
///
/// # Safety
/// `file` must be a file opened by [`x_open`] as a WAL (its methods are [`WAL_METHODS`]), not
/// closed; SQLite calls one method of a file at a time, so the reference is not aliased.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    // SAFETY: the caller's contract.
    unsafe { &mut *file.cast::<WalFile>() }
}

impl WalFile {
    /// The real file's methods.
    fn methods(&self) -> Option<&ffi::sqlite3_io_methods> {
        // SAFETY: `real` was opened successfully by the real VFS (x_open), so its methods
        // pointer is valid until it is closed, which happens only in `x_close`.
        unsafe { (*self.real).pMethods.as_ref() }
    }

    /// Writes `n` bytes at `data` to the real file at `offset`.
    fn write_through(&self, data: *const c_void, n: c_int, offset: i64) -> c_int {
        let Some(write) = self.methods().and_then(|m| m.xWrite) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        // SAFETY: `real` is open (see `methods`); `data` holds `n` bytes (the caller's).
        unsafe { write(self.real, data, n, offset) }
    }

    /// Writes the buffer to the real file, in one call, and empties it (even on failure: see
    /// the module doc). Answers the write's result code.
    fn flush(&mut self) -> c_int {
        if self.buf.is_empty() {
            return ffi::SQLITE_OK;
        }
        #[cfg(test)]
        counts::FLUSHES.fetch_add(1, Ordering::Relaxed);
        let rc = match c_int::try_from(self.buf.len()) {
            Ok(n) => self.write_through(self.buf.as_ptr().cast(), n, self.at),
            Err(_) => ffi::SQLITE_IOERR_WRITE,
        };
        self.buf.clear();
        rc
    }

    /// The buffer's end, as a file offset.
    fn end(&self) -> Option<i64> {
        i64::try_from(self.buf.len())
            .ok()
            .and_then(|n| self.at.checked_add(n))
    }
}

/// Flushes the buffer, then runs `f` on the real file and its methods (or answers `missing`
/// when the real file has no such method); a failed flush answers its own code.
///
/// # Safety
/// As for [`wal`].
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    f: impl FnOnce(*mut ffi::sqlite3_file, &ffi::sqlite3_io_methods) -> Option<c_int>,
    missing: c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    let w = unsafe { wal(file) };
    let rc = w.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match w.methods() {
        Some(m) => f(w.real, m).unwrap_or(missing),
        None => missing,
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this only on a file opened with WAL_METHODS.
    let w = unsafe { wal(file) };
    let n = match usize::try_from(amt) {
        Ok(n) if !data.is_null() && n <= BUFFER_BYTES => n,
        // Nothing to gather (or too large to): after what is buffered, straight through.
        _ => {
            let rc = w.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            return w.write_through(data, amt, offset);
        }
    };
    let follows = !w.buf.is_empty() && w.end() == Some(offset);
    if !follows || w.buf.len().saturating_add(n) > BUFFER_BYTES {
        let rc = w.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if w.buf.try_reserve(n).is_err() {
        // No memory for the buffer: write through instead (after what is buffered).
        let rc = w.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        return w.write_through(data, amt, offset);
    }
    if w.buf.is_empty() {
        w.at = offset;
    }
    // SAFETY: SQLite passes `amt` readable bytes at `data` (not null, checked above), which do
    // not overlap the buffer (SQLite's own memory).
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) };
    w.buf.extend_from_slice(bytes);
    #[cfg(test)]
    counts::BUFFERED.fetch_add(1, Ordering::Relaxed);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on a file opened with WAL_METHODS, once, last.
    let w = unsafe { wal(file) };
    let flushed = w.flush();
    let closed = match w.methods().and_then(|m| m.xClose) {
        // SAFETY: `real` is open; SQLite closes it here, once.
        Some(close) => unsafe { close(w.real) },
        None => ffi::SQLITE_OK,
    };
    // Frees the buffer's memory (SQLite frees the file object's own allocation).
    drop(std::mem::take(&mut w.buf));
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amt: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this only on a WAL_METHODS file; the arguments are passed on.
    unsafe {
        flushed(
            file,
            |real, m| m.xRead.map(|f| f(real, data, amt, offset)),
            ffi::SQLITE_IOERR_READ,
        )
    }
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xTruncate.map(|f| f(real, size)),
            ffi::SQLITE_IOERR_TRUNCATE,
        )
    }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: as in `x_read`. The sync is the real one, after every buffered byte is written.
    unsafe {
        flushed(
            file,
            |real, m| m.xSync.map(|f| f(real, flags)),
            ffi::SQLITE_IOERR_FSYNC,
        )
    }
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xFileSize.map(|f| f(real, size)),
            ffi::SQLITE_IOERR_FSTAT,
        )
    }
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xLock.map(|f| f(real, level)),
            ffi::SQLITE_IOERR_LOCK,
        )
    }
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xUnlock.map(|f| f(real, level)),
            ffi::SQLITE_IOERR_UNLOCK,
        )
    }
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xCheckReservedLock.map(|f| f(real, out)),
            ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
        )
    }
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xFileControl.map(|f| f(real, op, arg)),
            ffi::SQLITE_NOTFOUND,
        )
    }
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on a WAL_METHODS file.
    let w = unsafe { wal(file) };
    match w.methods().and_then(|m| m.xSectorSize) {
        // SAFETY: `real` is open.
        Some(f) => unsafe { f(w.real) },
        None => 4096,
    }
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this only on a WAL_METHODS file.
    let w = unsafe { wal(file) };
    match w.methods().and_then(|m| m.xDeviceCharacteristics) {
        // SAFETY: `real` is open.
        Some(f) => unsafe { f(w.real) },
        None => 0,
    }
}

// SQLite maps shared memory through the database file, never the WAL: these only pass on.

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xShmMap.map(|f| f(real, page, size, extend, out)),
            ffi::SQLITE_IOERR_SHMMAP,
        )
    }
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xShmLock.map(|f| f(real, offset, n, flags)),
            ffi::SQLITE_IOERR_SHMLOCK,
        )
    }
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as in `x_read`. A barrier answers nothing, so a failed flush cannot be reported
    // here; SQLite never calls it on a WAL file (shared memory is the database file's).
    unsafe {
        flushed(
            file,
            |real, m| {
                m.xShmBarrier.map(|f| {
                    f(real);
                    ffi::SQLITE_OK
                })
            },
            ffi::SQLITE_OK,
        );
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: as in `x_read`.
    unsafe {
        flushed(
            file,
            |real, m| m.xShmUnmap.map(|f| f(real, delete)),
            ffi::SQLITE_OK,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::Ordering;

    use rusqlite::Connection;

    use super::{counts, open};

    /// A body of `len` bytes that differs by row.
    fn body(id: i64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i64::try_from(i).unwrap_or(0) * 31 + id * 7) % 251).unwrap_or(0))
            .collect()
    }

    /// A connection through the buffer, in WAL mode, checkpointing only when asked.
    fn buffered(path: &Path) -> Connection {
        let c = open(path).expect("open through the WAL write buffer");
        let mode: String = c
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .expect("WAL");
        assert_eq!(mode, "wal");
        c.pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no automatic checkpoint");
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)",
        )
        .expect("table");
        c
    }

    /// Commits `batches` transactions of `rows` rows each, after the rows already there.
    fn commit_batches(c: &mut Connection, batches: i64, rows: i64, len: usize) {
        let first: i64 = c
            .query_row("SELECT coalesce(max(id), 0) FROM t", [], |r| r.get(0))
            .expect("max");
        for b in 0..batches {
            let tx = c.transaction().expect("begin");
            for r in 0..rows {
                let id = first + b * rows + r + 1;
                tx.execute(
                    "INSERT INTO t (id, body) VALUES (?1, ?2)",
                    (id, body(id, len)),
                )
                .expect("insert");
            }
            tx.commit().expect("commit");
        }
    }

    /// Every row 1..=n is there, with its body, and the file is sound.
    fn assert_rows(c: &Connection, n: i64, len: usize) {
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity check");
        assert_eq!(ok, "ok");
        let count: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, n);
        let mut stmt = c
            .prepare("SELECT id, body FROM t ORDER BY id")
            .expect("select");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .expect("rows");
        for (i, row) in rows.enumerate() {
            let (id, b) = row.expect("row");
            assert_eq!(id, i64::try_from(i).expect("small") + 1);
            assert!(b == body(id, len), "row {id} has another body");
        }
    }

    #[test]
    fn many_commits_are_read_back_without_the_buffer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("walbuf.db");
        let buffered_before = counts::BUFFERED.load(Ordering::Relaxed);
        let mut c = buffered(&path);
        commit_batches(&mut c, 300, 20, 700);
        // A transaction larger than the buffer (several flushes before its sync).
        commit_batches(&mut c, 1, 3000, 700);
        let n = 300 * 20 + 3000;
        // Read back by a plain connection while the buffered one is open, then after a
        // checkpoint by the buffered one, then after it closed.
        assert_rows(&Connection::open(&path).expect("plain"), n, 700);
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        commit_batches(&mut c, 50, 20, 700);
        let n = n + 50 * 20;
        assert_rows(&Connection::open(&path).expect("plain"), n, 700);
        drop(c);
        assert_rows(&Connection::open(&path).expect("plain"), n, 700);
        // The buffer was used, and gathered writes (several per flush).
        let buffered = counts::BUFFERED.load(Ordering::Relaxed) - buffered_before;
        assert!(buffered > 2 * 350, "only {buffered} writes were buffered");
        assert!(
            counts::BUFFERED.load(Ordering::Relaxed) > 2 * counts::FLUSHES.load(Ordering::Relaxed)
        );
    }

    #[test]
    fn a_commit_is_in_the_files_when_it_returns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("walbuf.db");
        let mut c = buffered(&path);
        let mut n = 0;
        for round in 0..5 {
            commit_batches(&mut c, 10 + round, 25, 1500);
            n += (10 + round) * 25;
            // As a crash right after the commit would leave them: the files as they are, with
            // the connection still open (no close, no checkpoint flushed anything).
            let copy = tempfile::tempdir().expect("temp dir");
            let db = copy.path().join("walbuf.db");
            std::fs::copy(&path, &db).expect("copy the database");
            let wal = std::fs::copy(
                dir.path().join("walbuf.db-wal"),
                copy.path().join("walbuf.db-wal"),
            )
            .expect("copy the WAL");
            assert!(wal > 0, "the rows are in the WAL");
            assert_rows(&Connection::open(&db).expect("plain"), n, 1500);
        }
    }

    #[test]
    fn spilled_rewritten_and_rolled_back_frames_stay_right() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("walbuf.db");
        let mut c = buffered(&path);
        // A small cache: a large transaction spills frames to the WAL before its commit, and
        // rewrites some of them in place (writes that do not follow the buffer, reads of it).
        c.pragma_update(None, "cache_size", 20).expect("cache size");
        commit_batches(&mut c, 1, 2000, 900);
        {
            let tx = c.transaction().expect("begin");
            for round in 0..3 {
                tx.execute(
                    "UPDATE t SET body = zeroblob(900 + ?1) WHERE id % 3 = ?1",
                    [round],
                )
                .expect("update");
            }
            // Rolled back: none of its spilled frames may count.
            tx.rollback().expect("rollback");
        }
        commit_batches(&mut c, 20, 50, 900);
        let tx = c.transaction().expect("begin");
        tx.execute("UPDATE t SET body = body WHERE id % 2 = 0", [])
            .expect("update");
        tx.commit().expect("commit");
        assert_rows(&Connection::open(&path).expect("plain"), 3000, 900);
        assert_rows(&c, 3000, 900);
    }
}
