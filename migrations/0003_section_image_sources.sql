-- Section images without copies: a revision's image of a section is one of
--   * the ELF's own bytes of that section, by range (elf_offset, size) in objects.elf;
--   * zeros of `size` (.bss, .kconfig, an untouched arena);
--   * a blob in image_blobs, shared by every later revision that leaves the section unchanged.
-- revision_images stored every section in full in every revision: a 16 MiB .rodata was kept
-- twice at upload (ELF + revision 1) and written again by each patch of a 4-byte .data variable.
--
-- Existing rows are carried over as blobs, one per old row (their bytes as they were).
--
-- The ELF moves out of objects into object_elves: SQLite reads a row's columns in order and
-- rewrites the whole row on UPDATE, so with the ELF in the row every read of current_revision
-- (placed after it) and every new revision (UPDATE of current_revision) walked the whole chain
-- of a 16 MiB ELF's overflow pages: 4,096 page reads each.

CREATE TABLE image_blobs (
    id    INTEGER PRIMARY KEY,
    bytes BLOB    NOT NULL
);

CREATE TABLE section_images (
    object_id  TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    section    TEXT    NOT NULL CHECK (length(section) > 0),
    position   INTEGER NOT NULL CHECK (position >= 0),
    size       INTEGER NOT NULL CHECK (size >= 0),
    -- Exactly one source, or neither for zeros.
    elf_offset INTEGER CHECK (elf_offset IS NULL OR elf_offset >= 0),
    blob_id    INTEGER REFERENCES image_blobs (id),
    CHECK (elf_offset IS NULL OR blob_id IS NULL),
    PRIMARY KEY (object_id, revision, section),
    UNIQUE (object_id, revision, position),
    FOREIGN KEY (object_id, revision) REFERENCES revisions (object_id, revision)
        ON DELETE CASCADE
);

CREATE INDEX section_images_by_blob ON section_images (blob_id) WHERE blob_id IS NOT NULL;

INSERT INTO image_blobs (id, bytes)
SELECT rowid, image FROM revision_images;

INSERT INTO section_images (object_id, revision, section, position, size, elf_offset, blob_id)
SELECT object_id, revision, section, position, length(image), NULL, rowid FROM revision_images;

DROP TRIGGER revision_images_immutable;
DROP TABLE revision_images;

CREATE TRIGGER section_images_immutable BEFORE UPDATE ON section_images
BEGIN
    SELECT RAISE(ABORT, 'revision images are immutable: add a new revision');
END;

CREATE TRIGGER image_blobs_immutable BEFORE UPDATE ON image_blobs
BEGIN
    SELECT RAISE(ABORT, 'image blobs are immutable: add a new revision');
END;

-- A blob goes with the last image that uses it (an object's deletion cascades to its images).
CREATE TRIGGER section_images_release_blob AFTER DELETE ON section_images
WHEN OLD.blob_id IS NOT NULL
 AND NOT EXISTS (SELECT 1 FROM section_images WHERE blob_id = OLD.blob_id)
BEGIN
    DELETE FROM image_blobs WHERE id = OLD.blob_id;
END;

CREATE TABLE objects_rebuilt (
    id               TEXT    NOT NULL PRIMARY KEY
                             CHECK (length(id) = 64 AND id NOT GLOB '*[^0-9a-f]*'),
    name             TEXT    NOT NULL,
    size             INTEGER NOT NULL CHECK (size > 0),
    created_at       TEXT    NOT NULL,
    current_revision INTEGER NOT NULL CHECK (current_revision >= 1),
    FOREIGN KEY (id, current_revision) REFERENCES revisions (object_id, revision)
        DEFERRABLE INITIALLY DEFERRED
);

-- The bytes as uploaded, one row per object (a rowid table: the store reads sections of it
-- with incremental blob I/O).
CREATE TABLE object_elves (
    object_id TEXT NOT NULL UNIQUE REFERENCES objects (id) ON DELETE CASCADE,
    elf       BLOB NOT NULL
);

INSERT INTO objects_rebuilt (id, name, size, created_at, current_revision)
SELECT id, name, size, created_at, current_revision FROM objects;

INSERT INTO object_elves (object_id, elf) SELECT id, elf FROM objects;

-- Its triggers go with it and are made again below.
DROP TABLE objects;
ALTER TABLE objects_rebuilt RENAME TO objects;

CREATE TRIGGER objects_kept_while_loaded BEFORE DELETE ON objects
WHEN EXISTS (SELECT 1 FROM loads WHERE object_id = OLD.id AND state = 'loaded')
BEGIN
    SELECT RAISE(ABORT, 'object has a load in state loaded: unload it first');
END;

CREATE TRIGGER objects_content_immutable BEFORE UPDATE OF id, size ON objects
BEGIN
    SELECT RAISE(ABORT, 'object bytes are immutable: new bytes are a new object');
END;

CREATE TRIGGER object_elves_immutable BEFORE UPDATE ON object_elves
BEGIN
    SELECT RAISE(ABORT, 'object bytes are immutable: new bytes are a new object');
END;

-- What objects.elf's CHECK (length(elf) = size) said.
CREATE TRIGGER object_elves_size BEFORE INSERT ON object_elves
WHEN length(NEW.elf) IS NOT (SELECT size FROM objects WHERE id = NEW.object_id)
BEGIN
    SELECT RAISE(ABORT, 'an object''s elf must be as long as its size says');
END;

CREATE TRIGGER objects_revision_forward BEFORE UPDATE OF current_revision ON objects
WHEN NEW.current_revision <= OLD.current_revision
BEGIN
    SELECT RAISE(ABORT, 'current revision only moves forward');
END;

-- A source must hold `size` bytes: a blob of that length, a range inside the object's ELF.
-- (Made after the rename: it reads objects.)
CREATE TRIGGER section_images_source_fits BEFORE INSERT ON section_images
WHEN (NEW.blob_id IS NOT NULL
      AND (SELECT length(bytes) FROM image_blobs WHERE id = NEW.blob_id) IS NOT NEW.size)
  OR (NEW.elf_offset IS NOT NULL
      AND NEW.elf_offset + NEW.size > (SELECT size FROM objects WHERE id = NEW.object_id))
BEGIN
    SELECT RAISE(ABORT, 'section image source does not hold the image''s size');
END;
