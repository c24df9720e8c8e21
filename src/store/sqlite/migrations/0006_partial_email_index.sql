-- Fewer pages per commit. Every index a row enters is one more page the commit writes to the
-- WAL (and a checkpoint writes again). projections_by_email took an entry for every projection
-- row, though only rows with an e-mail (Kratos identities) can match a search by e-mail: each
-- Identus or ABP commit wrote a page of NULL entries. It now holds only the rows that have one.
-- A search by e-mail (json_extract(attrs, '$.email') = ?) implies IS NOT NULL, so it still reads
-- through this index; nothing else used it.
DROP INDEX projections_by_email;
CREATE INDEX projections_by_email ON projections (view, json_extract(attrs, '$.email'), key, scope)
    WHERE json_extract(attrs, '$.email') IS NOT NULL;
