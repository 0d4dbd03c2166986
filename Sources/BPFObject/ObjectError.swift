/// Why an object was refused. One case per libbpf open-time failure class, each with the context a
/// user needs to find the problem (section, symbol, map or program name, the offending value).
public enum ObjectError: Error, Equatable, Sendable, CustomStringConvertible {
    // ELF container
    case notELF(reason: String)
    case unsupportedELF(reason: String)
    case malformedELF(reason: String)
    case noSymbolTable
    case multipleSymbolTables
    case sectionTooLarge(section: String, size: UInt64, limit: UInt64)
    case badLicense(reason: String)
    case badVersion(size: Int)
    case legacyMapsSection
    // BTF
    case btf(BTFError)
    case btfRequired(reason: String)
    case datasecFixup(datasec: String, reason: String)
    // Maps
    case mapDefinition(map: String, reason: String)
    case duplicateArena(first: String, second: String)
    case arenaDataWithoutArenaMap
    case arenaImageTooLarge(imageSize: Int, arenaSize: UInt64)
    case mapSlot(map: String, reason: String)
    // Programs
    case program(section: String, reason: String)
    // Relocations
    case relocation(section: String, offset: UInt64, reason: String)
    // Externs
    case externSymbol(name: String, reason: String)

    public var description: String {
        switch self {
        case .notELF(let r): return "not an ELF object: \(r)"
        case .unsupportedELF(let r): return "unsupported ELF object: \(r)"
        case .malformedELF(let r): return "malformed ELF: \(r)"
        case .noSymbolTable: return "no symbol table (stripped object file?)"
        case .multipleSymbolTables: return "more than one symbol table"
        case .sectionTooLarge(let s, let size, let limit):
            return "section '\(s)' claims \(size) bytes, more than the \(limit) bytes allowed"
        case .badLicense(let r): return "bad license section: \(r)"
        case .badVersion(let size): return "version section must be 4 bytes, found \(size)"
        case .legacyMapsSection: return "legacy 'maps' section is not supported; use BTF-defined maps in SEC(\".maps\")"
        case .btf(let e): return "bad BTF: \(e)"
        case .btfRequired(let r): return "BTF is required, but is missing or corrupted: \(r)"
        case .datasecFixup(let d, let r): return "BTF DATASEC '\(d)': \(r)"
        case .mapDefinition(let m, let r): return "map '\(m)': \(r)"
        case .duplicateArena(let a, let b):
            return "only a single ARENA map is supported, found '\(a)' and '\(b)'"
        case .arenaDataWithoutArenaMap:
            return "__arena globals found but no ARENA map: declare one explicitly in SEC(\".maps\")"
        case .arenaImageTooLarge(let image, let arena):
            return "arena globals need \(image) bytes (page-rounded), more than the arena's \(arena) bytes"
        case .mapSlot(let m, let r): return "map '\(m)' initial slots: \(r)"
        case .program(let s, let r): return "program section '\(s)': \(r)"
        case .relocation(let s, let off, let r): return "relocation in '\(s)' at offset \(off): \(r)"
        case .externSymbol(let n, let r): return "extern '\(n)': \(r)"
        }
    }
}
