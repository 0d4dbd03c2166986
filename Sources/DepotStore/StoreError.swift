import GRDB

/// Everything the store can refuse or fail at, with the context a client needs. The HTTP layer
/// maps each case once (not found → 404, conflict → 412/409, invalid → 400, busy → 503).
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    // Opening and migrating.
    case cannotOpen(path: String, reason: String)
    /// The database records a migration this binary does not know: it was written by a newer
    /// bpfdepot. Opening it could corrupt what that version relies on.
    case unknownMigrations(names: [String])
    /// A shipped migration's text changed after it was applied somewhere.
    case migrationEdited(name: String, appliedSHA256: String, embeddedSHA256: String)
    /// Applied migrations are not a prefix of the known ones (a file was inserted mid-history).
    case migrationOutOfOrder(name: String, expectedAfter: String?)
    /// The migration list itself is malformed (names not increasing, a migration that COMMITs).
    case invalidMigration(name: String, reason: String)

    // Not found.
    case objectNotFound(id: String)
    case revisionNotFound(objectID: String, revision: Int)
    case loadNotFound(id: Int64)
    case linkNotFound(id: Int64)

    // Conflicts.
    /// `expectedCurrent` was stale: someone else added a revision first (HTTP If-Match → 412).
    case revisionConflict(objectID: String, expected: Int, current: Int)
    /// The object still has loads in state `loaded`.
    case objectLoaded(id: String, loadIDs: [Int64])
    /// A load in state `loaded` cannot be deleted: its kernel objects would be forgotten.
    case loadStillLoaded(id: Int64)
    /// Another live load is pinned in the same bpffs directory.
    case pinDirectoryInUse(path: String, loadID: Int64)

    // Invalid input.
    case emptyObject
    case emptySectionName
    case duplicateSection(name: String)
    /// A revision must hold exactly the sections of revision 1 (the ELF's), each the same size.
    case missingSection(objectID: String, name: String)
    case unexpectedSection(objectID: String, name: String)
    case sectionSizeMismatch(objectID: String, name: String, expected: Int, found: Int)
    case invalidKernelIDs(reason: String)
    case emptyPinDirectory
    case invalidLimit(Int)

    // SQLite.
    /// Another writer held the database past the busy timeout; retrying may succeed.
    case busy(operation: String)
    case database(operation: String, code: Int32, message: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open database \(path): \(reason)"
        case .unknownMigrations(let names):
            return "database has migrations this bpfdepot does not know (\(names.joined(separator: ", "))): "
                + "expected only embedded ones; it was written by a newer version"
        case .migrationEdited(let name, let applied, let embedded):
            return "migration \(name) was edited after it was applied: expected sha-256 \(applied), "
                + "found \(embedded) (shipped migrations are append-only)"
        case .migrationOutOfOrder(let name, let after):
            return "migration \(name) is applied but an earlier one is not: expected applied migrations to be "
                + "a prefix of the embedded list, found a gap after \(after ?? "the start")"
        case .invalidMigration(let name, let reason):
            return "invalid migration \(name): \(reason)"
        case .objectNotFound(let id):
            return "object \(id) not found"
        case .revisionNotFound(let objectID, let revision):
            return "revision \(revision) of object \(objectID) not found"
        case .linkNotFound(let id):
            return "no link \(id)"
        case .loadNotFound(let id):
            return "load \(id) not found"
        case .revisionConflict(let objectID, let expected, let current):
            return "revision conflict on object \(objectID): expected current revision \(expected), found \(current)"
        case .objectLoaded(let id, let loadIDs):
            let ids = loadIDs.map(String.init).joined(separator: ", ")
            return "object \(id) is still loaded (loads \(ids)): expected no load in state loaded"
        case .loadStillLoaded(let id):
            return "load \(id) is in state loaded: expected unloaded, lost or failed before deleting"
        case .pinDirectoryInUse(let path, let loadID):
            return "pin directory \(path) is in use by loaded load \(loadID)"
        case .emptyObject:
            return "expected elf bytes, found an empty object"
        case .emptySectionName:
            return "expected a section name, found an empty one"
        case .duplicateSection(let name):
            return "expected each section once, found \(name) twice"
        case .missingSection(let objectID, let name):
            return "expected an image for section \(name) of object \(objectID), found none"
        case .unexpectedSection(let objectID, let name):
            return "expected only sections of object \(objectID), found \(name)"
        case .sectionSizeMismatch(let objectID, let name, let expected, let found):
            return "section \(name) of object \(objectID): expected \(expected) bytes, found \(found)"
        case .invalidKernelIDs(let reason):
            return "expected kernel ids as json, found \(reason)"
        case .emptyPinDirectory:
            return "expected a pin directory path or none, found an empty string"
        case .invalidLimit(let limit):
            return "expected a limit from 1 to \(DepotStore.maximumPageSize), found \(limit)"
        case .busy(let operation):
            return "database busy during \(operation): another writer held it past the timeout"
        case .database(let operation, let code, let message):
            return "database error during \(operation): sqlite code \(code): \(message)"
        }
    }
}

extension StoreError {
    /// Maps whatever a GRDB call threw. Errors the store threw inside a transaction come back out
    /// unchanged (the transaction was rolled back on the way).
    init(operation: String, _ error: any Error) {
        switch error {
        case let error as StoreError:
            self = error
        case let error as DatabaseError:
            switch error.resultCode {
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                self = .busy(operation: operation)
            default:
                self = .database(operation: operation, code: error.extendedResultCode.rawValue,
                                 message: error.message ?? "\(error)")
            }
        default:
            self = .database(operation: operation, code: -1, message: "\(error)")
        }
    }
}
