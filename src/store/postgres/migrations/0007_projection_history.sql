-- The events that set each projection row, newest first (the admin API's `events`), as on
-- SQLite (sqlite/migrations/0012_projection_history.sql): at most 50
-- (store::projections::HISTORY_LEN), 824 bytes at most, kept by the statement that upserts the
-- row; an update the row refuses (an older `ord`) adds nothing. No index: only read with the
-- row.
ALTER TABLE projections ADD COLUMN history uuid[];

-- Rows stored before: their history starts with the event that set them.
UPDATE projections p
SET history = array_remove(ARRAY[coalesce(p.event_id,
                                          (SELECT e.id FROM events e WHERE e.seq = p.event_seq))],
                           NULL);
