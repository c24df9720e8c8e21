-- Traces (issue 14), as on SQLite (sqlite/migrations/0011_trace_context.sql): the W3C trace
-- context of the request that received the event, for its delivery attempts' spans. NULL when
-- traces were off. A nullable column without a default: no table rewrite.
ALTER TABLE events ADD COLUMN trace_context text;
