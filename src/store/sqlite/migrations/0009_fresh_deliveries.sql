-- Fresh deliveries (queued with their event, never attempted) are written with
-- next_attempt_at NULL: due from their creation, found by the workers by id from where their
-- last claim left off. Writing one then adds no entry to deliveries_due and delivering it
-- removes none: only deliveries due at a given time (retries, replays, an operator's retry)
-- are in that index. Pending deliveries already stored keep their time, and the index.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at)
    WHERE state = 'pending' AND next_attempt_at IS NOT NULL;
-- Failed deliveries are few: an index of their own counts them without reading the table.
CREATE INDEX deliveries_failed ON deliveries (destination) WHERE state = 'failed';
