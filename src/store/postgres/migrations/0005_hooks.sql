-- Registered hooks (issue 13), as on SQLite (sqlite/migrations/0010_hooks.sql): written once,
-- deleted by marking (the row keeps describing the events stored through it; its verification
-- block, secrets included, is erased). Times are RFC 3339 text, UTC. Listed by id; retention
-- never touches this table.
CREATE TABLE hooks (
    id         text COLLATE "C" PRIMARY KEY,
    label      text,
    kind       text NOT NULL,
    payload    text,
    verify     text,
    expires_at text,
    created_at text NOT NULL,
    deleted_at text
);
