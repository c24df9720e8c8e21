-- Traces (issue 14): the W3C trace context of the request that received the event (a JSON
-- object of the `traceparent` and `tracestate` headers of hookgate's request span), so that
-- each delivery attempt, made later, is a span of the same trace. NULL when traces were off.
ALTER TABLE events ADD COLUMN trace_context TEXT;
