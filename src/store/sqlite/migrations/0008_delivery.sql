-- Delivery (issue 11): the outbox, its attempts log, and each destination's health.
--
-- `deliveries` grows from the least the pruner needed (0004) to the outbox: one row per
-- (event, destination) written in the event's transaction, plus one per retry or replay (so the
-- unique (event_seq, destination) goes). Ids are the rowid (no AUTOINCREMENT, whose
-- sqlite_sequence row would be written with every event): the pruner deletes the oldest
-- deliveries, so an id comes back only if every delivery was pruned. Times are Unix
-- milliseconds.
CREATE TABLE deliveries_outbox (
    id              INTEGER PRIMARY KEY,
    event_seq       INTEGER NOT NULL,
    destination     TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When a pending delivery is due.
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
INSERT INTO deliveries_outbox (id, event_seq, destination, state, next_attempt_at, created_at)
    SELECT id, event_seq, destination, state,
           CASE WHEN state = 'pending' THEN 0 END, 0
    FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_outbox RENAME TO deliveries;
-- The pruner's NOT EXISTS, and an event's deliveries in the admin API.
CREATE INDEX deliveries_by_event ON deliveries (event_seq);
-- The workers' claim: a destination's due pending deliveries, oldest due first. Only pending
-- rows are in it, so a delivered one leaves it.
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE state = 'pending';

-- Every attempt: when, how long, the status or error kind, the first 4 KiB of the answer.
CREATE TABLE delivery_attempts (
    delivery_id INTEGER NOT NULL,
    number      INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status      INTEGER,
    error       TEXT,
    response    TEXT,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;

-- A row per destination ever configured: paused or not, and its recent health (a destination
-- failing only for `pause_after` is paused: `failing_since` is the first failure after the last
-- success).
CREATE TABLE destinations (
    id                   TEXT    PRIMARY KEY,
    paused               INTEGER NOT NULL DEFAULT 0,
    paused_reason        TEXT,
    failing_since        INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_success_at      INTEGER,
    last_failure_at      INTEGER
) WITHOUT ROWID;
