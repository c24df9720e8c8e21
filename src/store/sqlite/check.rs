//! What `hookgate check-config` finds out about a SQLite store without opening it for writing:
//! everything that would make `serve` stop at start.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

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

/// An existing file: readable and writable, a SQLite database, of a schema this build knows.
fn check_existing(path: &Path) -> Vec<String> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        return vec![format!(
            "store.url: {} cannot be opened for writing: {e} (check its owner and permissions)",
            path.display()
        )];
    }
    let version =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).and_then(|c| {
            // Reading the schema makes SQLite check the file's header.
            c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        });
    match version {
        Ok(v) if v > VERSION => vec![format!(
            "store.url: {} has schema version {v}, newer than this hookgate's {VERSION}; run a \
             newer hookgate",
            path.display()
        )],
        Ok(_) => Vec::new(),
        Err(e) => vec![format!(
            "store.url: {} is not a hookgate database: {e}",
            path.display()
        )],
    }
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
    }
}
