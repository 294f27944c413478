"""svc_collect: the event log: ingest once, validate, protect, durable before ack, replay by cursor."""
