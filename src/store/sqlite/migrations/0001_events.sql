-- The events, as received, and two projections that point into their bodies.
-- seq is the position in commit order (one writer); until migration 3 the event id (a v7 UUID)
-- carried it, so looking an event up by id was a rowid lookup.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
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
CREATE INDEX events_by_source_type ON events (source, event_type, seq);
-- Projections point into the body of the event that set them (body_start, body_len) rather
-- than keeping a second copy of the JSON.
CREATE TABLE kratos_identities (
    identity_id TEXT PRIMARY KEY,
    event_seq   INTEGER NOT NULL,
    state       TEXT,
    schema_id   TEXT,
    updated_at  TEXT    NOT NULL,
    body_start  INTEGER NOT NULL,
    body_len    INTEGER NOT NULL
);
CREATE TABLE identus_records (
    kind        TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    wallet_id   TEXT    NOT NULL,
    state       TEXT,
    ts          TEXT    NOT NULL,
    ts_ns       INTEGER NOT NULL,
    event_seq   INTEGER NOT NULL,
    body_start  INTEGER NOT NULL,
    body_len    INTEGER NOT NULL,
    -- Kind and id first: the admin API looks records up by them, with or without a wallet.
    PRIMARY KEY (kind, record_id, wallet_id)
) WITHOUT ROWID;
