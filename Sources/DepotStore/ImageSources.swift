import Foundation
import GRDB
import GRDBSQLite

/// Where a stored section image's bytes are kept (migration 0003).
enum ImageSource: Equatable {
    /// `size` zero bytes; nothing stored.
    case zeros
    /// The object's ELF bytes from `offset` (revision 1's images of PROGBITS sections).
    case elf(offset: Int)
    /// A row of `image_blobs`, shared by the revisions that left the section unchanged.
    case blob(Int64)
}

/// A `section_images` row.
struct StoredImage {
    var name: String
    var size: Int
    var source: ImageSource
}

/// Reads ranges of one object's ELF with SQLite's incremental blob I/O, so a section of a few
/// bytes does not load a 16 MiB ELF into memory.
struct ELFBlobReader {
    private let db: Database
    private let rowID: Int64
    private let objectID: String

    init(_ db: Database, objectID: String) throws {
        guard let rowID = try Int64.fetchOne(db, sql: "SELECT rowid FROM object_elves WHERE object_id = ?",
                                             arguments: [objectID])
        else { throw StoreError.objectNotFound(id: objectID) }
        self.db = db
        self.rowID = rowID
        self.objectID = objectID
    }

    func read(offset: Int, count: Int, section: String) throws -> [UInt8] {
        guard count > 0 else { return [] }
        guard let connection = db.sqliteConnection else {
            throw StoreError.database(operation: "read image", code: -1, message: "the database connection is closed")
        }
        var handle: OpaquePointer?
        var rc = sqlite3_blob_open(connection, "main", "object_elves", "elf", rowID, 0, &handle)
        defer { if let handle { sqlite3_blob_close(handle) } }
        guard rc == SQLITE_OK, let handle else {
            throw StoreError.database(operation: "read image", code: rc,
                                      message: "cannot open the elf of object \(objectID): \(String(cString: sqlite3_errmsg(connection)))")
        }
        let length = Int(sqlite3_blob_bytes(handle))
        guard offset >= 0, offset <= length, count <= length - offset,
              let start = Int32(exactly: offset), let size = Int32(exactly: count)
        else {
            throw StoreError.database(operation: "read image", code: -1,
                                      message: "section '\(section)' [\(offset), +\(count)) lies outside the \(length)-byte elf of object \(objectID)")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        rc = bytes.withUnsafeMutableBytes { sqlite3_blob_read(handle, $0.baseAddress, size, start) }
        guard rc == SQLITE_OK else {
            throw StoreError.database(operation: "read image", code: rc,
                                      message: "cannot read section '\(section)' of object \(objectID): \(String(cString: sqlite3_errmsg(connection)))")
        }
        return bytes
    }
}

extension Array where Element == UInt8 {
    /// Whether `bytes` lie in this array at `offset` (false when they would not fit).
    func holds(_ bytes: [UInt8], at offset: Int) -> Bool {
        guard offset >= 0, offset <= count, bytes.count <= count - offset else { return false }
        return withUnsafeBytes { whole in
            bytes.withUnsafeBytes { part in
                guard let base = whole.baseAddress, let start = part.baseAddress else { return part.isEmpty }
                return memcmp(base + offset, start, part.count) == 0
            }
        }
    }

    var allZero: Bool {
        withUnsafeBytes { raw in
            // Word at a time: a 16 MiB image is checked in about a millisecond.
            var index = 0
            let words = raw.count / 8
            while index < words {
                if raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) != 0 { return false }
                index += 1
            }
            for i in (words * 8)..<raw.count where raw[i] != 0 { return false }
            return true
        }
    }
}

/// One value bound to a raw statement.
enum RawBinding {
    case text(String)
    case int(Int64)
    /// Bound in place (SQLITE_STATIC): SQLite reads the caller's bytes during the step instead
    /// of copying them first, and no `Data` copy is made either — for a 16 MiB ELF, two copies
    /// and their page faults fewer per upload.
    case blob([UInt8])
}

extension DepotStore {
    /// Runs one INSERT/UPDATE on the connection GRDB holds (inside the caller's transaction) with
    /// SQLite's own API, for the statements that bind large blobs.
    static func rawExecute(_ db: Database, _ sql: String, _ bindings: [RawBinding]) throws {
        guard let connection = db.sqliteConnection else {
            throw StoreError.database(operation: "raw statement", code: -1, message: "the database connection is closed")
        }
        var statement: OpaquePointer?
        var rc = sqlite3_prepare_v2(connection, sql, -1, &statement, nil)
        defer { sqlite3_finalize(statement) }
        guard rc == SQLITE_OK, let statement else {
            throw StoreError.database(operation: "raw statement", code: rc, message: String(cString: sqlite3_errmsg(connection)))
        }
        // Each blob's storage must stay put until the step: keep the arrays in one place and bind
        // from inside their withUnsafeBytes closures.
        func bind(_ index: Int, _ rest: ArraySlice<RawBinding>) -> Int32 {
            guard let first = rest.first else { return sqlite3_step(statement) }
            let position = Int32(index + 1)
            switch first {
            case .text(let text):
                let r = sqlite3_bind_text(statement, position, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
                return r == SQLITE_OK ? bind(index + 1, rest.dropFirst()) : r
            case .int(let value):
                let r = sqlite3_bind_int64(statement, position, value)
                return r == SQLITE_OK ? bind(index + 1, rest.dropFirst()) : r
            case .blob(let bytes):
                return bytes.withUnsafeBytes { raw -> Int32 in
                    // A zero-length blob needs a non-null pointer to be a blob rather than NULL.
                    let pointer = raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)
                    let r = sqlite3_bind_blob64(statement, position, pointer, sqlite3_uint64(raw.count), nil)
                    return r == SQLITE_OK ? bind(index + 1, rest.dropFirst()) : r
                }
            }
        }
        rc = bind(0, bindings[...])
        guard rc == SQLITE_DONE else {
            throw StoreError.database(operation: "raw statement", code: rc, message: String(cString: sqlite3_errmsg(connection)))
        }
    }
}
