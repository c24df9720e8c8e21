-- Retention (store.retention): old events are deleted, so three things change.
--
-- 1. The feed cursor must never go back. `seq` was a plain rowid (max + 1), so deleting every
--    event would restart it at 1 and a consumer holding cursor 1000 would miss what comes next.
--    AUTOINCREMENT never hands out a value again, even once the rows that had it are gone.
--    SQLite cannot add AUTOINCREMENT to a table, so `events` is rebuilt, keeping every seq.
CREATE TABLE events_autoinc (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    event_type  TEXT,
    dedupe_key  TEXT    NOT NULL,
    sender_id   TEXT,
    received_at TEXT    NOT NULL,
    headers     TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    UNIQUE (source, dedupe_key)
);
-- Copying explicit seq values also sets the AUTOINCREMENT counter (sqlite_sequence) to the
-- largest, so the next event continues where the old table left off.
INSERT INTO events_autoinc (seq, id, source, kind, event_type, dedupe_key, sender_id,
                            received_at, headers, body)
    SELECT seq, id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body
    FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_autoinc RENAME TO events;
CREATE INDEX events_by_source_type ON events (source, event_type, seq);
CREATE UNIQUE INDEX events_by_id ON events (id);
-- The pruner takes the oldest events first. received_at is RFC 3339 in UTC, so text order is
-- time order (to the second; see prune.rs), and new entries land at the end of the index.
CREATE INDEX events_by_received_at ON events (received_at);

-- 2. Projections keep the latest state whatever the age of the event that set it. A row points
--    into its event's body (event_seq, body_start, body_len) while the event exists; just before
--    the event is pruned, the row gets its own copy of that JSON, with the id and time of the
--    event it came from (all three NULL while the event exists). The next event that updates the
--    row points it at that event again and clears them.
--    The table becomes a rowid table: in a WITHOUT ROWID table a row of more than about 1 KiB
--    spills into an overflow page, so every copied body (Identus records, Kratos identities: 1 to
--    3 KiB) would cost two pages; here it stays inline (measured: 50 k copies of 1.5 KiB take
--    222 MiB WITHOUT ROWID, 103 MiB with a rowid). (view, key, scope) stays unique, and its index
--    serves the lookups the primary key served.
CREATE TABLE projections_copying (
    view        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    state       TEXT,
    attrs       TEXT    NOT NULL,
    ord         INTEGER,
    event_seq   INTEGER NOT NULL,
    body_start  INTEGER NOT NULL,
    body_len    INTEGER NOT NULL,
    body        BLOB,
    event_id    TEXT,
    updated_at  TEXT,
    -- View and key first: the admin API looks a thing up by them, with or without a scope.
    UNIQUE (view, key, scope)
);
INSERT INTO projections_copying (view, key, scope, state, attrs, ord, event_seq, body_start,
                                 body_len)
    SELECT view, key, scope, state, attrs, ord, event_seq, body_start, body_len FROM projections;
DROP TABLE projections;
ALTER TABLE projections_copying RENAME TO projections;
-- Which rows point at an event about to be pruned.
CREATE INDEX projections_by_event ON projections (event_seq);

-- 3. Events with a delivery still pending or failed are never pruned. Issue 11 (delivery) owns
--    this table's full shape (attempts, next attempt time, lease, last error) and extends it;
--    here it is the least the pruning query needs to skip those events already.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY,
    event_seq   INTEGER NOT NULL,
    destination TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    -- One delivery per event and destination; also the index the pruner's NOT EXISTS uses.
    UNIQUE (event_seq, destination)
);
