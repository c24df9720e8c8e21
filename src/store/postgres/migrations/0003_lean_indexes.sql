-- Less work per event for the server, as on SQLite (its migrations 0006 and 0007):
--
-- The pruner finds the oldest events by `seq` (they are stored in about the order they are
-- received; mod.rs, `last_before`), so the index on `received_at` only cost an index entry for
-- every event.
DROP INDEX events_by_received_at;
-- The e-mail search's index evaluated its expression (a JSON parse of `attrs`) for every
-- projection row written, though only rows with an e-mail (Kratos identities) can match. It now
-- takes only the rows whose attributes have an "email" key (string_object writes every key as
-- `"name":`, and a `"` inside a value is escaped); the search repeats the predicate so that the
-- planner can use it (read.rs).
DROP INDEX projections_by_email;
CREATE INDEX projections_by_email ON projections
    (view, ((replace(attrs, '\u0000', '\ufffd')::jsonb) ->> 'email'), key, scope)
    WHERE attrs LIKE '%"email":%';
