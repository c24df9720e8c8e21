-- Event ids are now made by the process that receives the event (UUID v7) rather than derived
-- from seq, so that several processes can write to one store: look them up through an index.
-- (v7 ids grow with time, so new entries land at the end of the index.)
CREATE UNIQUE INDEX events_by_id ON events (id);

-- One table for every kind's projections: the store knows no sender. A row is the latest state
-- of one thing (view, key, scope); `ord`, when set, keeps an older update from replacing a newer
-- one (senders that deliver out of order), and NULL means the later commit wins.
CREATE TABLE projections (
    view        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    state       TEXT,
    attrs       TEXT    NOT NULL,
    ord         INTEGER,
    event_seq   INTEGER NOT NULL,
    body_start  INTEGER NOT NULL,
    body_len    INTEGER NOT NULL,
    -- View and key first: the admin API looks a thing up by them, with or without a scope.
    PRIMARY KEY (view, key, scope)
) WITHOUT ROWID;

INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
    SELECT 'kratos/identities', identity_id, '', state, json_object('schema_id', schema_id),
           NULL, event_seq, body_start, body_len
    FROM kratos_identities;
INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
    SELECT 'identus/' || kind, record_id, wallet_id, state, json_object('ts', ts),
           ts_ns, event_seq, body_start, body_len
    FROM identus_records;
DROP TABLE kratos_identities;
DROP TABLE identus_records;
