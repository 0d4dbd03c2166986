import BPFObject
import Glibc
import Synchronization

/// The running kernel's BTF (`/sys/kernel/btf/vmlinux`), read lazily (`BTFIndex`: a type is
/// decoded when a lookup or compatibility check reaches it), with name lookups for the kinds the
/// loader needs: FUNC (kfuncs, attach targets), VAR (typed ksyms), TYPEDEF (raw tracepoints).
public final class KernelBTF: Sendable, BTFTypeLookup {
    public let index: BTFIndex
    private let columns: BTFNameColumns
    /// Every type decoded, built on first need: module BTF is split BTF over it.
    private let decoded = Mutex<BTF?>(nil)
    /// Lookups already answered (a daemon resolves the same kfuncs for many loads).
    private let found = Mutex<[FindKey: UInt32?]>([:])

    private struct FindKey: Hashable {
        let name: String
        let kind: UInt8
    }

    public init(index: BTFIndex) {
        self.index = index
        columns = BTFNameColumns(nameOffsets: index.nameOffsets, kinds: index.kindTags)
    }

    public func type(_ id: UInt32) -> BTFType? { index.type(id) }

    /// vmlinux BTF with every type decoded (the base a module's split BTF is parsed over).
    public func btf() throws(BTFError) -> BTF {
        if let done = decoded.withLock({ $0 }) { return done }
        let full = try index.decodedAll()
        decoded.withLock { $0 = full }
        return full
    }

    public func find(_ name: String, kind: BTFKindTag) -> UInt32? {
        let key = FindKey(name: name, kind: kind.rawValue)
        if let hit = found.withLock({ $0[key] }) { return hit }
        let target = Array(name.utf8)
        // Index 0 is the void type; every name match is a real type id.
        let result = columns.firstIndex(of: kind) { index.stringEquals($0, target) }.map(UInt32.init)
        found.withLock { $0[key] = .some(result) }
        return result
    }

    private static let cached = Mutex<Result<KernelBTF, LoaderError>?>(nil)

    /// vmlinux BTF, read once per process.
    public static func vmlinux() throws(LoaderError) -> KernelBTF {
        let r = cached.withLock { c -> Result<KernelBTF, LoaderError> in
            if let c { return c }
            let r = load(path: "/sys/kernel/btf/vmlinux")
            c = r
            return r
        }
        return try r.get()
    }

    private static func load(path: String) -> Result<KernelBTF, LoaderError> {
        guard let bytes = readWholeFile(path) else {
            return .failure(.extern(name: "vmlinux", reason: "cannot read \(path): the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)"))
        }
        do {
            return .success(KernelBTF(index: try BTFIndex(parsing: bytes)))
        } catch {
            return .failure(.extern(name: "vmlinux", reason: "cannot parse \(path): \(error)"))
        }
    }

    /// libbpf's `bpf_core_types_are_compat` against vmlinux BTF.
    public func isCompatible(local: BTF, _ localID: UInt32, kernel kernelID: UInt32) -> Bool {
        KernelBTF.isCompatible(local: local, localID, kernel: self, kernelID)
    }

    /// libbpf's `bpf_core_types_are_compat`: the local and kernel types have the same shape after
    /// modifiers and typedefs (ints are compatible with ints, pointers recurse, prototypes match
    /// in arity and in every parameter and the return type). `kernel` is vmlinux BTF or a
    /// module's split BTF over it.
    public static func isCompatible(local: BTF, _ localID: UInt32, kernel: some BTFTypeLookup, _ kernelID: UInt32,
                                    depth: Int = 0) -> Bool {
        guard depth < 32,
              let l = try? local.skipModifiersAndTypedefs(localID),
              let k = try? kernel.skipModifiersAndTypedefs(kernelID) else { return false }
        if l == 0 || k == 0 { return l == k }
        guard let lt = local.type(l), let kt = kernel.type(k) else { return false }
        let lTag = lt.kind.tag, kTag = kt.kind.tag
        let enums: Set<BTFKindTag> = [.enumeration, .enum64]
        if enums.contains(lTag) && enums.contains(kTag) { return true }
        guard lTag == kTag else { return false }
        switch (lt.kind, kt.kind) {
        case (.int(_, _, let lo, _), .int(_, _, let ko, _)):
            return lo == 0 && ko == 0
        case (.pointer(let lp), .pointer(let kp)):
            return isCompatible(local: local, lp, kernel: kernel, kp, depth: depth + 1)
        case (.array(let le, _, _), .array(let ke, _, _)):
            return isCompatible(local: local, le, kernel: kernel, ke, depth: depth + 1)
        case (.functionProto(let lr, let lps), .functionProto(let kr, let kps)):
            guard lps.count == kps.count, isCompatible(local: local, lr, kernel: kernel, kr, depth: depth + 1) else { return false }
            return zip(lps, kps).allSatisfy { isCompatible(local: local, $0.type, kernel: kernel, $1.type, depth: depth + 1) }
        default:
            return true
        }
    }
}

/// Reads a whole file (procfs/sysfs files report size 0, so read until EOF).
func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var st = stat()
    // sysfs reports the real size of the BTF blob; procfs files say 0 and grow as read.
    if fstat(fd, &st) == 0, st.st_size > 0 { out.reserveCapacity(Int(st.st_size) + 1) }
    var buf = [UInt8](repeating: 0, count: 1 << 18)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; return nil }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}

/// Name offset and kind of every type of a BTF, side by side: a lookup scans these compact arrays
/// and compares name bytes in place (as libbpf's `btf__find_by_name_kind` does), instead of
/// hashing a String for each of vmlinux's ~100k names up front.
struct BTFNameColumns: Sendable {
    private let nameOffsets: [UInt32]
    private let kinds: [UInt8]

    init(nameOffsets: [UInt32], kinds: [UInt8]) {
        self.nameOffsets = nameOffsets
        self.kinds = kinds
    }

    init(_ types: [BTFType]) {
        var offsets = [UInt32](repeating: 0, count: types.count)
        var tags = [UInt8](repeating: 0, count: types.count)
        types.withUnsafeBufferPointer { types in
            for i in types.indices {
                offsets[i] = types[i].nameOffset
                tags[i] = types[i].kind.tag.rawValue
            }
        }
        nameOffsets = offsets
        kinds = tags
    }

    /// The first index of a type of `kind` whose name offset `matches`.
    func firstIndex(of kind: BTFKindTag, where matches: (UInt32) -> Bool) -> Int? {
        let tag = kind.rawValue
        return kinds.withUnsafeBufferPointer { ks in
            nameOffsets.withUnsafeBufferPointer { offs in
                for i in 0..<ks.count where ks[i] == tag && matches(offs[i]) { return i }
                return nil
            }
        }
    }
}
