/// Why a load (or a live access) failed, with the object part it concerns.
public enum LoaderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The verifier refused a program; the whole log is in the error.
    case verifier(VerifierError)
    case map(name: String, BPFError)
    case program(name: String, BPFError)
    /// The arena's `map_extra` range is already mapped in this process (by another load?).
    case arenaAddressInUse(map: String, address: UInt64, length: Int)
    case arena(map: String, reason: String)
    /// The object needs something this kernel does not offer (found by a feature probe before
    /// anything was created, not by reading a failed command's errno).
    case kernelLacks(FeatureProbe, needed: String)
    case extern(name: String, reason: String)
    case kconfig(name: String, reason: String)
    case relocation(program: String, reason: String)
    case attachTarget(program: String, reason: String)
    case image(section: String, reason: String)
    case unknownProgramSection(program: String, section: String)
    case pin(path: String, reason: String)
    case unknownVariable(String)
    case unknownProgram(String)
    case readOnly(variable: String, section: String)
    case outOfRange(variable: String, reason: String)
    case unloaded

    public var description: String {
        switch self {
        case .verifier(let v): return "verifier rejected program '\(v.programName)': \(v.summary)"
        case .map(let n, let e): return "map '\(n)': \(e)"
        case .program(let n, let e): return "program '\(n)': \(e)"
        case .arenaAddressInUse(let m, let a, let l):
            return "arena '\(m)': address range 0x\(String(a, radix: 16))+\(l) is already mapped in this process (another loaded object uses it?)"
        case .arena(let m, let r): return "arena '\(m)': \(r)"
        case .kernelLacks(let probe, let needed): return "\(needed) cannot be loaded here: \(probe.reason)"
        case .extern(let n, let r): return "extern '\(n)': \(r)"
        case .kconfig(let n, let r): return "kconfig '\(n)': \(r)"
        case .relocation(let p, let r): return "program '\(p)': relocation: \(r)"
        case .attachTarget(let p, let r): return "program '\(p)': attach target: \(r)"
        case .image(let s, let r): return "image of '\(s)': \(r)"
        case .unknownProgramSection(let p, let s):
            return "program '\(p)': missing BPF prog type, check ELF section name '\(s)'"
        case .pin(let p, let r): return "pin '\(p)': \(r)"
        case .unknownVariable(let n): return "no variable named '\(n)'"
        case .unknownProgram(let n): return "no program named '\(n)'"
        case .readOnly(let v, let s): return "variable '\(v)' is in \(s), which is frozen (read-only) once loaded"
        case .outOfRange(let v, let r): return "variable '\(v)': \(r)"
        case .unloaded: return "the object has been unloaded"
        }
    }
}
