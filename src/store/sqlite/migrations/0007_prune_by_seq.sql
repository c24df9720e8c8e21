-- One b-tree less in every commit: the pruner finds the oldest events by `seq` (they are stored
-- in about the order they are received; prune.rs, `last_before`), so the index on
-- `received_at` only cost a page of every commit's WAL.
DROP INDEX events_by_received_at;
