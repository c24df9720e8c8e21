-- Delivery (issue 11): the outbox, its attempts log, and each destination's health, as on
-- SQLite (sqlite/migrations/0008_delivery.sql), plus the lease a replica holds on the
-- deliveries it is attempting. Times are Unix milliseconds.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_event_seq_destination_key;
ALTER TABLE deliveries
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at bigint,
    ADD COLUMN created_at      bigint  NOT NULL DEFAULT 0,
    ADD COLUMN delivered_at    bigint,
    ADD COLUMN last_error      text,
    -- A replica attempting the delivery: its lease token, and when the lease ends (then any
    -- replica may take the delivery over).
    ADD COLUMN lease           bigint,
    ADD COLUMN lease_until     bigint;
UPDATE deliveries SET next_attempt_at = 0 WHERE state = 'pending';
CREATE INDEX deliveries_by_event ON deliveries (event_seq);
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE state = 'pending';

CREATE TABLE delivery_attempts (
    delivery_id bigint  NOT NULL,
    number      integer NOT NULL,
    at          bigint  NOT NULL,
    duration_ms bigint  NOT NULL,
    status      integer,
    error       text,
    response    text,
    PRIMARY KEY (delivery_id, number)
);

CREATE TABLE destinations (
    id                   text    PRIMARY KEY,
    paused               boolean NOT NULL DEFAULT false,
    paused_reason        text,
    failing_since        bigint,
    consecutive_failures bigint  NOT NULL DEFAULT 0,
    last_success_at      bigint,
    last_failure_at      bigint
);
