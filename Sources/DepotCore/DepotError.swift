import BPFKernel
import BPFObject
import DepotStore

/// Why a service operation failed. DepotHTTP maps each case to one status once.
public enum DepotError: Error, Sendable, CustomStringConvertible {
    /// The uploaded bytes are not an object we accept (not ELF, bad BTF, libbpf open errors).
    case invalidObject(ObjectError)
    case store(StoreError)
    case unknownVariable(name: String, objectID: String)
    case unknownSection(name: String, objectID: String)
    /// A typed value that does not fit its variable (wrong type, out of range…).
    case badValue(PatchError)
    case imageWriteOutOfBounds(section: String, offset: Int, length: Int, size: Int)
    case emptyPatch
    case load(LoaderError)
    case loadNotActive(id: Int64)
    case unknownProgram(name: String, loadID: Int64)
    case readOnlyVariable(name: String, section: String)
    case liveValue(name: String, reason: String)

    public var description: String {
        switch self {
        case .invalidObject(let e): return "not a loadable BPF object: \(e)"
        case .store(let e): return e.description
        case .unknownVariable(let n, let o): return "object \(o) has no variable named '\(n)'"
        case .unknownSection(let n, let o): return "object \(o) has no data section named '\(n)'"
        case .badValue(let e): return e.description
        case .imageWriteOutOfBounds(let s, let off, let len, let size):
            return "writing \(len) bytes at offset \(off) of '\(s)' goes past its end (\(size) bytes)"
        case .emptyPatch: return "expected an object of variable names to values, found an empty one"
        case .load(let e): return e.description
        case .loadNotActive(let id): return "load \(id) is not loaded"
        case .unknownProgram(let n, let id): return "load \(id) has no program named '\(n)'"
        case .readOnlyVariable(let n, let s): return "variable '\(n)' is in \(s), which is read-only once loaded"
        case .liveValue(let n, let r): return "variable '\(n)': \(r)"
        }
    }
}
