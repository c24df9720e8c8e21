-- List and search the projections (GET /admin/kratos/identities?email=,
-- GET /admin/identus/{kind}?state=&wallet_id=): one index per filter, each ending in the list
-- order (key, then scope), so a search reads only the rows it answers, not the whole view.
CREATE INDEX projections_by_state ON projections (view, state, key, scope);
CREATE INDEX projections_by_scope ON projections (view, scope, key);
-- Searchable attributes (store::SEARCHABLE_ATTRS), by the expression the search uses.
CREATE INDEX projections_by_email ON projections (view, json_extract(attrs, '$.email'), key, scope);

-- Identities stored before: their search e-mail, as the Kratos source now keeps it
-- (sources::kratos::search_email): traits.email when it is a string, else the first verifiable,
-- then recovery, address sent via e-mail; lower-cased (ASCII, as SQLite's lower()).
UPDATE projections AS p
SET attrs = json_set(p.attrs, '$.email', lower(found.email))
FROM (
    SELECT q.view, q.key, q.scope,
           coalesce(
               CASE WHEN json_type(q.identity, '$.traits.email') = 'text'
                    THEN json_extract(q.identity, '$.traits.email') END,
               (SELECT json_extract(a.value, '$.value') FROM json_each(q.identity, '$.verifiable_addresses') a
                 WHERE json_extract(a.value, '$.via') = 'email' LIMIT 1),
               (SELECT json_extract(a.value, '$.value') FROM json_each(q.identity, '$.recovery_addresses') a
                 WHERE json_extract(a.value, '$.via') = 'email' LIMIT 1)
           ) AS email
    FROM (
        SELECT pr.view, pr.key, pr.scope,
               CAST(coalesce(pr.body, substr(e.body, pr.body_start + 1, pr.body_len)) AS TEXT)
                   AS identity
        FROM projections pr LEFT JOIN events e ON e.seq = pr.event_seq
        WHERE pr.view = 'kratos/identities'
    ) AS q
    WHERE json_valid(q.identity) AND json_type(q.identity) = 'object'
) AS found
WHERE p.view = found.view AND p.key = found.key AND p.scope = found.scope
  AND found.email IS NOT NULL AND found.email <> '';
