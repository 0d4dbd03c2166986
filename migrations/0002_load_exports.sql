-- Which live variables of a load are exported as Prometheus gauges (GET /metrics,
-- bpfdepot_variable{load, name}). One row per exported variable; the list outlives a restart
-- of the service with the load it belongs to and goes with the load's row.
CREATE TABLE load_exports (
    load_id INTEGER NOT NULL REFERENCES loads (id) ON DELETE CASCADE,
    name    TEXT    NOT NULL CHECK (length(name) > 0),
    PRIMARY KEY (load_id, name)
) WITHOUT ROWID;
