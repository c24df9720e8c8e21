//! What `hookgate check-config` finds out about a SQLite store without opening it for writing:
//! everything that would make `serve` stop at start.

use std::path::Path;

use super::schema::VERSION;

/// The problems `serve` would hit opening the store at `path`, each naming `store.url`.
pub fn check(path: &Path) -> Vec<String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => vec![format!(
            "store.url: {} is a folder; name a file inside it (e.g. sqlite://{}/hookgate.db)",
            path.display(),
            path.display()
        )],
        Ok(_) => check_existing(path),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            check_creatable(path)
        }
        Err(e) => vec![format!("store.url: {} cannot be read: {e}", path.display())],
    }
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Where the header keeps `PRAGMA user_version` (4 bytes, big-endian): the schema version.
const USER_VERSION_AT: usize = 60;

/// An existing file: readable and writable, a SQLite database, of a schema this build knows.
/// Read from the file's header rather than through SQLite, which would create the `-wal` and
/// `-shm` files beside it (owned by whoever runs the check).
fn check_existing(path: &Path) -> Vec<String> {
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            return vec![format!(
                "store.url: {} cannot be opened for writing: {e} (check its owner and permissions)",
                path.display()
            )];
        }
    };
    let mut header = [0u8; 100];
    let read = read_up_to(&mut file, &mut header);
    match read {
        // An empty file is a new database to SQLite.
        Ok(0) => Vec::new(),
        Ok(n) if n == header.len() && header.starts_with(SQLITE_MAGIC) => {
            let mut version = [0u8; 4];
            version.copy_from_slice(&header[USER_VERSION_AT..USER_VERSION_AT + 4]);
            let v = i64::from(i32::from_be_bytes(version));
            if v > VERSION {
                vec![format!(
                    "store.url: {} has schema version {v}, newer than this hookgate's {VERSION}; \
                     run a newer hookgate",
                    path.display()
                )]
            } else {
                Vec::new()
            }
        }
        Ok(_) => vec![format!(
            "store.url: {} is not a hookgate database (not a SQLite file)",
            path.display()
        )],
        Err(e) => vec![format!("store.url: {} cannot be read: {e}", path.display())],
    }
}

/// Reads until `buf` is full or the file ends; how many bytes were read.
fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read as _;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A file still to be made: the nearest folder that exists must let us create what is missing.
fn check_creatable(path: &Path) -> Vec<String> {
    let mut dir = path.parent();
    while let Some(d) = dir {
        let d = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        match std::fs::metadata(d) {
            Ok(meta) if meta.is_dir() => return probe(d, path),
            Ok(_) => {
                return vec![format!(
                    "store.url: the folder for {} cannot be created: {} is a file, not a folder",
                    path.display(),
                    d.display()
                )];
            }
            Err(_) => dir = d.parent(),
        }
    }
    Vec::new()
}

/// Creates and removes a file in `dir`: the one sure test that the store could be made there.
fn probe(dir: &Path, path: &Path) -> Vec<String> {
    let name = dir.join(format!(".hookgate-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&name)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&name);
            Vec::new()
        }
        Err(e) => vec![format!(
            "store.url: {} cannot be created: {} does not let hookgate write ({e})",
            path.display(),
            dir.display()
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_under_a_file_or_in_a_folder_that_exists_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "not a database\n".repeat(100)).unwrap();
        let errs = check(&file.join("sub/hookgate.db"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("store.url:") && errs[0].contains("is a file"));
        let errs = check(dir.path());
        assert!(errs[0].contains("is a folder"), "{errs:?}");
        assert!(check(&dir.path().join("new/deeper/hookgate.db")).is_empty());
        assert!(!dir.path().join("new").exists(), "a check creates nothing");
        let errs = check(&file);
        assert!(errs[0].contains("is not a hookgate database"), "{errs:?}");

        // A real database: this build's version passes, a newer one is named; no file is made.
        let db = dir.path().join("h.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", VERSION).unwrap();
        drop(conn);
        assert!(check(&db).is_empty());
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        drop(conn);
        let errs = check(&db);
        assert!(errs[0].contains("newer than this hookgate's"), "{errs:?}");
        assert!(!dir.path().join("h.db-wal").exists() && !dir.path().join("h.db-shm").exists());
    }
}
