"""Riding out a database outage: the durable local journal that what a call, an inbound text or a
status callback produced is written to before it is acknowledged, the applier that stores it in
the database (retrying until it can, idempotently), and the businesses as last read, for when the
database cannot answer."""
