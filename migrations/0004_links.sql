-- Links: a program of a load attached to a kernel hook (POST /v1/loads/{id}/links, or at load
-- time). The row is written first (state 'failed') and becomes 'attached' only once the link is
-- pinned under the load's pin directory (pin_path), so a crash in between leaves a pin without
-- an attached row, which the next start removes. DELETE sets 'detached' before the kernel
-- detaches. An attached row whose pin is gone at start-up becomes 'lost'.
CREATE TABLE links (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    load_id     INTEGER NOT NULL REFERENCES loads (id) ON DELETE CASCADE,
    program     TEXT    NOT NULL CHECK (length(program) > 0),
    -- The hook kind (tracepoint, raw_tracepoint, tracing, lsm, iter, kprobe, uprobe, xdp, tcx,
    -- cgroup, ...) and a readable target ("syscalls/sys_enter_getpid", "veth0 (ifindex 7)").
    kind        TEXT    NOT NULL CHECK (length(kind) > 0),
    target      TEXT    NOT NULL,
    -- The attach request as the client gave it (JSON object), to show and to audit.
    request     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(request)),
    state       TEXT    NOT NULL CHECK (state IN ('attached', 'detached', 'lost', 'failed')),
    kernel_id   INTEGER CHECK (kernel_id IS NULL OR kernel_id > 0),
    pin_path    TEXT    CHECK (pin_path IS NULL OR length(pin_path) > 0),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

CREATE INDEX links_by_load ON links (load_id, id);
