-- Registered hooks (issue 13): written once, deleted by marking (the row keeps describing the
-- events stored through it; its verification block, secrets included, is erased). Times are
-- RFC 3339 text, UTC. Listed by id; retention never touches this table.
CREATE TABLE hooks (
    id         TEXT PRIMARY KEY,
    label      TEXT,
    kind       TEXT NOT NULL,
    payload    TEXT,
    verify     TEXT,
    expires_at TEXT,
    created_at TEXT NOT NULL,
    deleted_at TEXT
) WITHOUT ROWID;
