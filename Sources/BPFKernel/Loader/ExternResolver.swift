import BPFObject
import Glibc
import Synchronization

/// What an extern turned into on this kernel.
enum ExternResolution: Sendable, Equatable {
    /// A kfunc's FUNC id in vmlinux BTF (`fdArrayIndex` 0, `btfObjectFD` 0) or in a module's BTF
    /// (`fdArrayIndex` = the module's `fd_array` slot for call `off`, `btfObjectFD` = its BTF fd
    /// for an `ld_imm64` of the kfunc).
    case kfunc(btfID: UInt32, fdArrayIndex: Int16 = 0, btfObjectFD: Int32 = 0)
    /// A typed ksym's VAR id in vmlinux BTF (`btfObjectFD` 0) or a module's (its BTF fd).
    case typedKsym(btfID: UInt32, btfObjectFD: Int32 = 0)
    /// A typeless ksym's address from /proc/kallsyms.
    case address(UInt64)
    /// Written into the `.kconfig` image.
    case kconfig
    /// A weak extern the kernel does not have: calls are poisoned, loads read 0.
    case unresolvedWeak
}

/// libbpf's `bpf_object__resolve_externs`: kconfig values into the `.kconfig` image, kfuncs and
/// typed ksyms against vmlinux BTF and then module BTFs (with libbpf's compatibility check),
/// typeless ksyms from kallsyms.
struct ExternResolver {
    let spec: ObjectSpec
    var kconfig: KernelConfig?
    /// Module BTFs, opened only if a kfunc or typed ksym is not in vmlinux.
    let modules: ModuleBTFSession

    init(spec: ObjectSpec, modules: ModuleBTFSession = ModuleBTFSession()) {
        self.spec = spec
        self.modules = modules
    }

    func resolve(kconfigImage: inout [UInt8]) throws(LoaderError) -> [ExternResolution] {
        var out: [ExternResolution] = []
        var kallsyms: [String: UInt64]?
        for ext in spec.externs {
            switch ext.kind {
            case .kconfig(let offset, let size):
                try writeKconfig(ext, offset: Int(offset), size: Int(size), into: &kconfigImage)
                out.append(.kconfig)
            case .kfunc:
                out.append(try resolveKfunc(ext))
            case .ksym(let typed):
                if typed {
                    out.append(try resolveTypedKsym(ext))
                } else {
                    if kallsyms == nil {
                        let typeless = spec.externs.compactMap { e -> String? in
                            if case .ksym(false) = e.kind { return e.essentialName } else { return nil }
                        }
                        kallsyms = Self.kallsyms(names: Set(typeless))
                    }
                    if let addr = kallsyms?[ext.essentialName], addr != 0 {
                        out.append(.address(addr))
                    } else if ext.weak {
                        out.append(.unresolvedWeak)
                    } else {
                        throw .extern(name: ext.name, reason: "symbol not in /proc/kallsyms")
                    }
                }
            }
        }
        return out
    }

    /// libbpf's `find_ksym_btf_id`: vmlinux first; only a name vmlinux lacks is looked up in the
    /// modules' own types (the first module, in BTF id order, that has it).
    private func findKernelType(_ ext: ExternSpec, kind: BTFKindTag) throws(LoaderError)
        -> (kernel: any BTFTypeLookup, id: UInt32, module: OpenModuleBTF?)?
    {
        let vmlinux = try KernelBTF.vmlinux()
        if let id = vmlinux.find(ext.essentialName, kind: kind) { return (vmlinux, id, nil) }
        do {
            guard let (m, id) = try modules.find(ext.essentialName, kind: kind) else { return nil }
            return (m.module.btf, id, m)
        } catch {
            throw .extern(name: ext.name, reason: "not in vmlinux BTF, and the module BTFs could not be searched: \(error)")
        }
    }

    private func resolveKfunc(_ ext: ExternSpec) throws(LoaderError) -> ExternResolution {
        guard let (kernel, id, module) = try findKernelType(ext, kind: .function),
              case .function(let proto, _)? = kernel.type(id)?.kind else {
            if ext.weak { return .unresolvedWeak }
            throw .extern(name: ext.name, reason: "kfunc not found in kernel or module BTF")
        }
        guard let local = spec.btf, KernelBTF.isCompatible(local: local, ext.btfTypeID, kernel: kernel, proto) else {
            if ext.weak { return .unresolvedWeak }
            let place = module.map { " (module '\($0.module.name)')" } ?? ""
            throw .extern(name: ext.name, reason: "kfunc prototype is incompatible with the kernel's\(place)")
        }
        guard let module else { return .kfunc(btfID: id) }
        do {
            let index = try modules.fdArrayIndex(for: module)
            return .kfunc(btfID: id, fdArrayIndex: index, btfObjectFD: module.fd.rawValue)
        } catch {
            throw .extern(name: ext.name, reason: "module BTF index too big for a call's offset: kfuncs of more than \(Int16.max - 1) modules")
        }
    }

    private func resolveTypedKsym(_ ext: ExternSpec) throws(LoaderError) -> ExternResolution {
        guard let (kernel, id, module) = try findKernelType(ext, kind: .variable),
              case .variable(let kt, _)? = kernel.type(id)?.kind else {
            if ext.weak { return .unresolvedWeak }
            throw .extern(name: ext.name, reason: "kernel variable not found in kernel or module BTF")
        }
        guard let local = spec.btf, KernelBTF.isCompatible(local: local, ext.btfTypeID, kernel: kernel, kt) else {
            let place = module.map { " (module '\($0.module.name)')" } ?? ""
            throw .extern(name: ext.name, reason: "type is incompatible with the kernel's\(place)")
        }
        guard let module else { return .typedKsym(btfID: id) }
        modules.use(module)
        return .typedKsym(btfID: id, btfObjectFD: module.fd.rawValue)
    }

    private func writeKconfig(_ ext: ExternSpec, offset: Int, size: Int, into image: inout [UInt8]) throws(LoaderError) {
        guard let btf = spec.btf, let type = KconfigType(btf: btf, typeID: ext.btfTypeID) else {
            throw .kconfig(name: ext.name, reason: "unsupported type")
        }
        guard offset >= 0, offset + size <= image.count else {
            throw .kconfig(name: ext.name, reason: "outside the .kconfig area")
        }
        var raw: String?
        if ext.name.hasPrefix("LINUX_") {
            switch ext.name {
            case "LINUX_KERNEL_VERSION": raw = String(KernelVersion.code)
            // Every kernel new enough for arenas has BPF cookies and x86-64 syscall wrappers.
            case "LINUX_HAS_BPF_COOKIE": raw = "y"
            case "LINUX_HAS_SYSCALL_WRAPPER": raw = "y"
            default:
                guard ext.weak else { throw .kconfig(name: ext.name, reason: "unrecognized virtual extern") }
            }
        } else {
            raw = kconfig?.values[ext.name]
        }
        guard let raw else {
            if ext.weak { return }  // stays zero
            throw .kconfig(name: ext.name, reason: "extern (strong) not resolved: not in the kernel configuration")
        }
        var value = raw
        // A bool extern for an integer-valued LINUX_* virtual, or y/n for ints, as libbpf allows.
        if case .bool = type, raw != "y", raw != "n" { value = raw == "0" ? "n" : "y" }
        if case .int = type, raw == "y" { value = "1" }
        if case .int = type, raw == "n" { value = "0" }
        let bytes = try KernelConfig.encode(value, name: ext.name, as: type, size: size)
        image.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }

    /// Addresses of `names` from /proc/kallsyms (first match wins; a `.llvm.<hash>` suffix on
    /// a local symbol is tolerated). Only the wanted names are decoded: the file has ~200k lines.
    /// Resolved addresses, kept for the process: vmlinux symbols do not move once booted. Names
    /// not found are looked up again once the last read is a minute old (a module may have
    /// been loaded since); /proc/kallsyms takes the kernel tens of milliseconds to produce.
    private static let kallsymsCache = Mutex<(found: [String: UInt64], missing: Set<String>, readAt: UInt64)>(([:], [], 0))

    static func kallsyms(names: Set<String>) -> [String: UInt64] {
        let now = monotonicSeconds()
        let (known, missing, readAt) = kallsymsCache.withLock { ($0.found, $0.missing, $0.readAt) }
        let unknown = names.filter { known[$0] == nil && !(missing.contains($0) && now - readAt < 60) }
        guard !unknown.isEmpty else { return known }
        let found = readKallsyms(names: unknown)
        return kallsymsCache.withLock { c in
            c.found.merge(found) { a, _ in a }
            c.missing.formUnion(unknown.filter { found[$0] == nil })
            c.readAt = now
            return c.found
        }
    }

    static func monotonicSeconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec)
    }

    static func readKallsyms(names: Set<String>) -> [String: UInt64] {
        guard !names.isEmpty, let bytes = readWholeFile("/proc/kallsyms") else { return [:] }
        let wanted = names.map { Array($0.utf8) }
        let llvm = Array(".llvm.".utf8)
        var out: [String: UInt64] = [:]
        bytes.withUnsafeBufferPointer { b in
            // Does b[p..<q] (or its part before ".llvm.") equal a wanted name? Byte compares only:
            // hashing every one of ~200k names costs more than the kernel takes to list them.
            func match(_ p: Int, _ q: Int) -> [UInt8]? {
                for w in wanted where q - p >= w.count && b[p] == w.first {
                    var same = true
                    for k in 0..<w.count where b[p + k] != w[k] { same = false; break }
                    guard same else { continue }
                    if q - p == w.count { return w }
                    let rest = q - p - w.count
                    if rest >= llvm.count && (0..<llvm.count).allSatisfy({ b[p + w.count + $0] == llvm[$0] }) { return w }
                }
                return nil
            }
            var i = 0
            let n = b.count
            while i < n {
                let lineStart = i
                while i < n && b[i] != 0x0a { i += 1 }
                let lineEnd = i
                i += 1
                // "ADDR T name[\t[module]]"
                var p = lineStart
                while p < lineEnd && b[p] != 0x20 { p += 1 }
                let addrEnd = p
                p += 3
                guard p < lineEnd else { continue }
                var q = p
                while q < lineEnd && b[q] != 0x09 { q += 1 }
                guard let name = match(p, q) else { continue }
                let key = String(decoding: name, as: UTF8.self)
                guard out[key] == nil,
                      let addr = UInt64(String(decoding: b[lineStart..<addrEnd], as: UTF8.self), radix: 16) else { continue }
                out[key] = addr
            }
        }
        return out
    }
}
