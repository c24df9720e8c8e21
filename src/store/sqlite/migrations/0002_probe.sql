-- One row the writer rewrites to find out whether a store that failed a commit (disk full,
-- locked, read-only) can commit again, without waiting for an event to try.
CREATE TABLE probe (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  TEXT NOT NULL,
    pad BLOB
);
