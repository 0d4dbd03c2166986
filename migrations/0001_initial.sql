-- Objects, their image revisions, and loads.
--
-- Shipped migrations are never edited (the store records each one's SHA-256 and refuses to open
-- a database whose recorded migration differs): a schema change is a new NNNN_name.sql file,
-- followed by migrations/embed.sh. A migration must not BEGIN/COMMIT: the store runs all
-- pending migrations in one BEGIN IMMEDIATE transaction with foreign keys checked at its end.
--
-- Times are UTC text 'YYYY-MM-DD HH:MM:SS.SSS' (sortable, readable in sqlite3).

-- One row per distinct ELF: the id is the SHA-256 of the bytes, so uploading the same bytes
-- again finds the same row.
CREATE TABLE objects (
    id               TEXT    NOT NULL PRIMARY KEY
                             CHECK (length(id) = 64 AND id NOT GLOB '*[^0-9a-f]*'),
    name             TEXT    NOT NULL,
    size             INTEGER NOT NULL CHECK (size > 0),
    elf              BLOB    NOT NULL CHECK (length(elf) = size),
    created_at       TEXT    NOT NULL,
    current_revision INTEGER NOT NULL CHECK (current_revision >= 1),
    -- Deferred because revision 1 is inserted after its object, in the same transaction.
    FOREIGN KEY (id, current_revision) REFERENCES revisions (object_id, revision)
        DEFERRABLE INITIALLY DEFERRED
);

-- The history of an object's initial images: revision 1 is the ELF's own, each later one a
-- complete set of tuned images. Rows are never updated; a change is a new revision.
CREATE TABLE revisions (
    object_id  TEXT    NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    created_at TEXT    NOT NULL,
    change     TEXT    NOT NULL,
    PRIMARY KEY (object_id, revision)
) WITHOUT ROWID;

-- Every section image of a revision (.data, .rodata, .bss, .addr_space.1, ...), in the order
-- the caller gave them (the ELF's section order for revision 1).
CREATE TABLE revision_images (
    object_id TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    section   TEXT    NOT NULL CHECK (length(section) > 0),
    position  INTEGER NOT NULL CHECK (position >= 0),
    image     BLOB    NOT NULL,
    PRIMARY KEY (object_id, revision, section),
    UNIQUE (object_id, revision, position),
    FOREIGN KEY (object_id, revision) REFERENCES revisions (object_id, revision)
        ON DELETE CASCADE
);

-- What was put into the kernel, and what became of it. kernel_ids is the caller's JSON (map and
-- program ids). AUTOINCREMENT: a deleted load's id is never handed out again, so a client
-- holding /loads/N never finds someone else's load there.
CREATE TABLE loads (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    object_id     TEXT    NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    revision      INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('loaded', 'unloaded', 'lost', 'failed')),
    pin_directory TEXT    CHECK (pin_directory IS NULL OR length(pin_directory) > 0),
    kernel_ids    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(kernel_ids)),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    FOREIGN KEY (object_id, revision) REFERENCES revisions (object_id, revision)
        ON DELETE CASCADE
);

CREATE INDEX loads_by_object ON loads (object_id, revision);

-- Two live loads pinned in one bpffs directory would overwrite each other's pins.
CREATE UNIQUE INDEX loads_live_pin_directory ON loads (pin_directory)
    WHERE state = 'loaded' AND pin_directory IS NOT NULL;

-- The store checks these rules first and reports them as typed errors; the triggers keep them
-- true for anyone else writing to the file (sqlite3, a future migration).
CREATE TRIGGER objects_kept_while_loaded BEFORE DELETE ON objects
WHEN EXISTS (SELECT 1 FROM loads WHERE object_id = OLD.id AND state = 'loaded')
BEGIN
    SELECT RAISE(ABORT, 'object has a load in state loaded: unload it first');
END;

CREATE TRIGGER loads_kept_while_loaded BEFORE DELETE ON loads
WHEN OLD.state = 'loaded'
BEGIN
    SELECT RAISE(ABORT, 'load is in state loaded: unload it first');
END;

CREATE TRIGGER objects_content_immutable BEFORE UPDATE OF id, elf, size ON objects
BEGIN
    SELECT RAISE(ABORT, 'object bytes are immutable: new bytes are a new object');
END;

CREATE TRIGGER objects_revision_forward BEFORE UPDATE OF current_revision ON objects
WHEN NEW.current_revision <= OLD.current_revision
BEGIN
    SELECT RAISE(ABORT, 'current revision only moves forward');
END;

CREATE TRIGGER revisions_immutable BEFORE UPDATE ON revisions
BEGIN
    SELECT RAISE(ABORT, 'revisions are immutable: add a new revision');
END;

CREATE TRIGGER revision_images_immutable BEFORE UPDATE ON revision_images
BEGIN
    SELECT RAISE(ABORT, 'revision images are immutable: add a new revision');
END;
