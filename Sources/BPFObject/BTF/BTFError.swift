/// Why a `.BTF` or `.BTF.ext` blob was refused.
public enum BTFError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(what: String, offset: Int, needed: Int, available: Int)
    case badHeader(reason: String)
    case badType(id: UInt32, reason: String)
    case badString(offset: UInt32)
    case unknownKind(id: UInt32, kind: UInt8)
    case typeLoop(id: UInt32)
    case badExt(reason: String)

    public var description: String {
        switch self {
        case .truncated(let what, let off, let need, let avail):
            return "\(what) truncated: needed \(need) bytes at offset \(off), \(avail) available"
        case .badHeader(let r): return "bad header: \(r)"
        case .badType(let id, let r): return "type [\(id)]: \(r)"
        case .badString(let off): return "string offset \(off) is outside the string table"
        case .unknownKind(let id, let k): return "type [\(id)]: unknown kind \(k)"
        case .typeLoop(let id): return "type [\(id)]: reference chain too deep (a loop?)"
        case .badExt(let r): return "bad .BTF.ext: \(r)"
        }
    }
}
