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
    /// Attaching (or detaching, or reading a link) failed.
    case link(LinkError)
    /// The link is not attached (detached, lost or never attached): nothing to detach or read.
    case linkNotAttached(id: Int64, state: String)
    case loadNotActive(id: Int64)
    case unknownProgram(name: String, loadID: Int64)
    case readOnlyVariable(name: String, section: String)
    case liveValue(name: String, reason: String)
    /// A limit on concurrent work is reached; try again shortly.
    case busy(what: String, limit: Int)
    /// The object's arena alone is larger than the service's whole arena budget.
    case arenaTooLarge(requested: UInt64, limit: UInt64)
    /// Live loads already hold so much arena memory that this one does not fit.
    case arenaBudgetExhausted(requested: UInt64, inUse: UInt64, limit: UInt64)
    case unknownMap(name: String, loadID: Int64)
    /// Uploads need a signature by a trusted key (`serve --trusted-keys`) and none came.
    case signatureRequired
    case badSignature(String)
    /// The map's type has no entries to look up by key (ring buffers, arenas, program arrays…).
    case mapNotReadable(map: String, type: String)
    case badMapKey(map: String, reason: String)
    case badMapValue(map: String, reason: String)
    case mapEntryNotFound(map: String, key: String)
    /// A conditional write (create only, replace only) found the entry the other way.
    case mapWriteRefused(map: String, key: String, reason: String)
    /// The kernel refused a map read or write.
    case mapOperation(map: String, BPFError)

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
        case .link(let e): return e.description
        case .linkNotAttached(let id, let state): return "link \(id) is not attached (it is \(state))"
        case .loadNotActive(let id): return "load \(id) is not loaded"
        case .unknownProgram(let n, let id): return "load \(id) has no program named '\(n)'"
        case .readOnlyVariable(let n, let s): return "variable '\(n)' is in \(s), which is read-only once loaded"
        case .liveValue(let n, let r): return "variable '\(n)': \(r)"
        case .busy(let what, let limit): return "expected fewer than \(limit) \(what), found the limit reached; retry shortly"
        case .arenaTooLarge(let r, let l):
            return "the object's arena needs \(r) bytes, more than the service's whole arena budget of \(l) bytes (serve --max-arena-bytes)"
        case .arenaBudgetExhausted(let r, let used, let l):
            return "the object's arena needs \(r) bytes; live loads hold \(used) of the \(l)-byte arena budget: unload one or retry later"
        case .unknownMap(let n, let id): return "load \(id) has no map named '\(n)'"
        case .signatureRequired:
            return "expected an X-Object-Signature header (base64 Ed25519 signature of the object's SHA-256 by a trusted key), found none"
        case .badSignature(let why): return "bad object signature: \(why)"
        case .mapNotReadable(let n, let type):
            return "map '\(n)' is a \(type) map: its entries cannot be read or written by key (hash, array, lru_hash, percpu_hash, percpu_array, lru_percpu_hash and lpm_trie maps can)"
        case .badMapKey(let n, let r): return "map '\(n)': bad key: \(r)"
        case .badMapValue(let n, let r): return "map '\(n)': bad value: \(r)"
        case .mapEntryNotFound(let n, let k): return "map '\(n)' has no entry with key \(k)"
        case .mapWriteRefused(let n, let k, let r): return "map '\(n)', key \(k): \(r)"
        case .mapOperation(let n, let e): return "map '\(n)': \(e)"
        }
    }
}
