-- jsonb refuses the escape `\u0000` (PostgreSQL text holds no NUL), so casting the attributes of
-- a projection whose value has a NUL made every insert of it fail (503 for a valid event). The
-- search expression maps it to U+FFFD first (the search maps a NUL in the value it looks for
-- the same way, read.rs). A value holding the six characters `\u0000` as text is indexed with
-- `\ufffd` instead: such a value is not found by a search for itself.
DROP INDEX projections_by_email;
CREATE INDEX projections_by_email ON projections
    (view, ((replace(attrs, '\u0000', '\ufffd')::jsonb) ->> 'email'), key, scope);
