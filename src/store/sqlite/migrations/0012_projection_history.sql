-- The events that set each projection row, newest first (the admin API's `events`): their ids,
-- 16 bytes each, one after the other. A BLOB rather than a JSON array of text ids: the full
-- history (store::projections::HISTORY_LEN, 50 ids) takes 800 bytes rather than 1.9 KiB, so a
-- row with its own copy of the JSON (migration 0004) stays inline on its page more often. The
-- writer prepends the new event's id and keeps the first 50 in the statement that upserts the
-- row; an update the row refuses (an older `ord`) adds nothing. No index: only read with the
-- row.
ALTER TABLE projections ADD COLUMN history BLOB;

-- Rows stored before: their history starts with the event that set them.
UPDATE projections
SET history = unhex(replace(coalesce(event_id,
                                     (SELECT e.id FROM events e WHERE e.seq = projections.event_seq)),
                            '-', ''));
