import BPFObject
import Glibc

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

/// libbpf's `bpf_object__resolve_externs`, in its order: kconfig values into the `.kconfig`
/// image; then, if there is a typeless ksym, /proc/kallsyms (`bpf_object__read_kallsyms_file`);
/// then kfuncs and typed ksyms against vmlinux BTF and module BTFs, with libbpf's compatibility
/// check (`bpf_object__resolve_ksyms_btf_id`); last, every strong extern still unresolved is an
/// error ("extern '%s' (strong): not resolved").
struct ExternResolver {
    let spec: ObjectSpec
    var kconfig: KernelConfig?
    /// Module BTFs, opened only if a kfunc or typed ksym is not in vmlinux.
    let modules: ModuleBTFSession
    /// /proc/kallsyms text to resolve against instead of the running kernel's (tests).
    var kallsymsText: [UInt8]?

    init(spec: ObjectSpec, modules: ModuleBTFSession = ModuleBTFSession(), kallsymsText: [UInt8]? = nil) {
        self.spec = spec
        self.modules = modules
        self.kallsymsText = kallsymsText
    }

    func resolve(kconfigImage: inout [UInt8]) throws(LoaderError) -> [ExternResolution] {
        var out = [ExternResolution?](repeating: nil, count: spec.externs.count)
        for (i, ext) in spec.externs.enumerated() {
            // A weak one left out stays zero in the image, and loads still read the image.
            if case .kconfig(let offset, let size) = ext.kind,
               try writeKconfig(ext, offset: Int(offset), size: Int(size), into: &kconfigImage) || ext.weak {
                out[i] = .kconfig
            }
        }
        let kallsyms = try readKallsyms()
        for (i, ext) in spec.externs.enumerated() {
            switch ext.kind {
            case .kconfig: continue
            case .kfunc: out[i] = try resolveKfunc(ext)
            case .ksym(typed: true): out[i] = try resolveTypedKsym(ext, inKallsyms: kallsyms?[ext.name])
            case .ksym(typed: false): out[i] = kallsyms?[ext.name].map { .address($0.address) }
            }
        }
        return try out.enumerated().map { (i, r) throws(LoaderError) -> ExternResolution in
            if let r { return r }
            let ext = spec.externs[i]
            guard ext.weak else {
                if case .kconfig = ext.kind {
                    throw .kconfig(name: ext.name, reason: "extern (strong) not resolved: not in the kernel configuration")
                }
                throw .extern(name: ext.name, reason: "(strong): not resolved: not in /proc/kallsyms")
            }
            return .unresolvedWeak
        }
    }

    /// libbpf's `kallsyms_cb` looks at every `__ksym` variable, typed ones too (they are VARs
    /// as well), under its full name (no `___flavor` stripping, unlike kfuncs); the file is
    /// read only when some ksym is typeless. Nil: not read.
    private func readKallsyms() throws(LoaderError) -> [String: KallsymsSymbol]? {
        let typeless = spec.externs.filter { $0.kind == .ksym(typed: false) }
        guard let first = typeless.first else { return nil }
        let names = Set(spec.externs.filter { if case .ksym = $0.kind { true } else { false } }.map(\.name))
        do {
            if let kallsymsText { return try Kallsyms.lookup(names, in: kallsymsText) }
            return try Kallsyms.running(names)
        } catch {
            if case .ambiguous(let name, _, _) = error { throw .extern(name: name, reason: "\(error)") }
            throw .extern(name: first.name, reason: "\(error)")
        }
    }

    /// libbpf's `find_ksym_btf_id`: vmlinux first; only a name vmlinux lacks is looked up in the
    /// modules' own types (the first module, in BTF id order, that has it).
    private func findKernelType(_ ext: ExternSpec, _ name: String, kind: BTFKindTag) throws(LoaderError)
        -> (kernel: any BTFTypeLookup, id: UInt32, module: OpenModuleBTF?)?
    {
        let vmlinux = try KernelBTF.vmlinux()
        if let id = vmlinux.find(name, kind: kind) { return (vmlinux, id, nil) }
        do {
            guard let (m, id) = try modules.find(name, kind: kind) else { return nil }
            return (m.module.btf, id, m)
        } catch {
            throw .extern(name: ext.name, reason: "not in vmlinux BTF, and the module BTFs could not be searched: \(error)")
        }
    }

    private func resolveKfunc(_ ext: ExternSpec) throws(LoaderError) -> ExternResolution {
        // A kfunc is looked up without its `___flavor` suffix.
        guard let (kernel, id, module) = try findKernelType(ext, ext.essentialName, kind: .function),
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

    /// libbpf's `bpf_object__resolve_ksym_var_btf_id`: the VAR under the extern's full name (no
    /// `___flavor` stripping for variables); an incompatible type fails even a weak extern.
    /// `inKallsyms`: what /proc/kallsyms said of the name, if it was read.
    private func resolveTypedKsym(_ ext: ExternSpec, inKallsyms: KallsymsSymbol?) throws(LoaderError) -> ExternResolution {
        guard let (kernel, id, module) = try findKernelType(ext, ext.name, kind: .variable),
              case .variable(let kt, _)? = kernel.type(id)?.kind else {
            guard ext.weak else {
                throw .extern(name: ext.name, reason: "kernel variable not found in kernel or module BTF")
            }
            if let inKallsyms {
                // libbpf's kallsyms pass has marked it resolved with that address, its BTF pass
                // leaves a weak miss alone, and the relocation then emits BPF_PSEUDO_BTF_ID with
                // btf_id 0, which every kernel refuses. Said here instead of by the verifier.
                throw .extern(name: ext.name, reason: "weak typed ksym is not in kernel or module BTF but /proc/kallsyms has it at \(inKallsyms); libbpf would load it as BTF id 0, which the kernel refuses: declare it typeless (const void) or drop __weak")
            }
            return .unresolvedWeak
        }
        guard let local = spec.btf, KernelBTF.isCompatible(local: local, ext.btfTypeID, kernel: kernel, kt) else {
            let place = module.map { " (module '\($0.module.name)')" } ?? ""
            throw .extern(name: ext.name, reason: "type is incompatible with the kernel's\(place)")
        }
        guard let module else { return .typedKsym(btfID: id) }
        modules.use(module)
        return .typedKsym(btfID: id, btfObjectFD: module.fd.rawValue)
    }

    /// False: not in the configuration (the image keeps zeros there).
    private func writeKconfig(_ ext: ExternSpec, offset: Int, size: Int, into image: inout [UInt8]) throws(LoaderError) -> Bool {
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
        guard let raw else { return false }
        var value = raw
        // A bool extern for an integer-valued LINUX_* virtual, or y/n for ints, as libbpf allows.
        if case .bool = type, raw != "y", raw != "n" { value = raw == "0" ? "n" : "y" }
        if case .int = type, raw == "y" { value = "1" }
        if case .int = type, raw == "n" { value = "0" }
        let bytes = try KernelConfig.encode(value, name: ext.name, as: type, size: size)
        image.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        return true
    }
}
