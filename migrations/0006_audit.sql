-- The audit trail: one row per mutation, and per request refused for its credential, with who
-- asked (token name, or NULL without authentication), from where, what and what it touched.
-- Append-only: UPDATE is refused, and DELETE of any row younger than the retention window
-- (audit_retention.days) is refused, so only the service's pruning of old rows can delete.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         TEXT    NOT NULL,
    client     TEXT,
    address    TEXT,
    request_id TEXT    NOT NULL,
    method     TEXT    NOT NULL,
    route      TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    object_id  TEXT,
    load_id    INTEGER,
    link_id    INTEGER,
    change     TEXT
);
CREATE INDEX audit_by_load ON audit (load_id, id) WHERE load_id IS NOT NULL;
CREATE INDEX audit_by_object ON audit (object_id, id) WHERE object_id IS NOT NULL;
CREATE INDEX audit_by_client ON audit (client, id);

CREATE TABLE audit_retention (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    days INTEGER NOT NULL CHECK (days >= 1)
);
INSERT INTO audit_retention (one, days) VALUES (1, 90);

CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
WHEN OLD.at > strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (SELECT days FROM audit_retention) || ' days')
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: rows inside the retention window cannot be deleted');
END;
