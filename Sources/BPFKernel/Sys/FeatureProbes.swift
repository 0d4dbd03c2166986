import Glibc

/// One thing the running kernel can or cannot do, and why we think so.
public struct FeatureProbe: Sendable, Equatable {
    public enum Feature: String, Sendable, CaseIterable {
        /// `BPF_MAP_TYPE_ARENA` (6.9+, CONFIG_BPF_ARENA).
        case arenaMaps = "arena_maps"
        /// `BPF_F_SEGV_ON_FAULT` on an arena map (6.9+).
        case arenaSegvOnFault = "arena_segv_on_fault"
        /// ld_imm64 direct map-value offsets over the whole 32-bit range (6.9+).
        case ldimm64FullRangeOffset = "ldimm64_full_range_offset"
        /// kfunc calls from a program of a type every kernel with kfuncs allows them in.
        case kfuncs
        /// `BPF_PROG_BIND_MAP` (5.10+).
        case progBindMap = "prog_bind_map"
        /// vmlinux BTF at `/sys/kernel/btf/vmlinux` (CONFIG_DEBUG_INFO_BTF).
        case vmlinuxBTF = "vmlinux_btf"
        /// Kernel BTF objects of modules (CONFIG_DEBUG_INFO_BTF_MODULES, modules loaded).
        case moduleBTF = "module_btf"
    }

    public let feature: Feature
    public let available: Bool
    /// What the probe did and what the kernel answered, in a sentence (lowercase, no period).
    public let reason: String
    /// The errno the kernel answered with, where a refusal had one.
    public let errno: Int32?

    public init(_ feature: Feature, available: Bool, reason: String, errno: Int32? = nil) {
        self.feature = feature
        self.available = available
        self.reason = reason
        self.errno = errno
    }
}

/// What the running kernel supports, probed once per process the way libbpf probes it.
/// Each result is a `static let`: initialised once, thread-safely, on first use. A probe that
/// fails for any reason (including missing privileges) reports "unsupported", as libbpf does,
/// and says why. Probes leave nothing behind: every map, program and BTF fd they open is
/// closed before they return.
public enum FeatureProbes {
    /// Every probe, in `Feature.allCases` order (cached: one kernel per process).
    public static var all: [FeatureProbe] { cachedAll }

    public static func result(_ feature: FeatureProbe.Feature) -> FeatureProbe {
        switch feature {
        case .arenaMaps: arenaMapsResult
        case .arenaSegvOnFault: arenaSegvOnFaultResult
        case .ldimm64FullRangeOffset: ldimm64FullRangeOffResult
        case .kfuncs: kfuncsResult
        case .progBindMap: progBindMapResult
        case .vmlinuxBTF: vmlinuxBTFResult
        case .moduleBTF: moduleBTFResult
        }
    }

    /// Runs one probe now, without the cache (for tests that check probes leave nothing open).
    public static func probe(_ feature: FeatureProbe.Feature) -> FeatureProbe {
        switch feature {
        case .arenaMaps: probeArenaMaps()
        case .arenaSegvOnFault: probeArenaSegvOnFault(arena: probeArenaMaps())
        case .ldimm64FullRangeOffset: probeLdimm64FullRangeOff()
        case .kfuncs: probeKfuncs()
        case .progBindMap: probeProgBindMap()
        case .vmlinuxBTF: probeVmlinuxBTF()
        case .moduleBTF: probeModuleBTF()
        }
    }

    /// Whether ld_imm64 direct map-value offsets may reach the full 32-bit range. Older
    /// verifiers refuse offsets ≥ 512 MiB ("direct value offset of %u is not allowed"), which
    /// decides whether arena globals may be placed at the end of a large arena.
    public static func ldimm64FullRangeOff() -> Bool { ldimm64FullRangeOffResult.available }

    /// Whether BPF_PROG_BIND_MAP exists (5.10+).
    public static func progBindMap() -> Bool { progBindMapResult.available }

    /// Whether BPF_MAP_TYPE_ARENA maps can be created (6.9+, and CONFIG_BPF_ARENA).
    public static func arenaMaps() -> Bool { arenaMapsResult.available }

    private static let arenaMapsResult = probeArenaMaps()
    private static let arenaSegvOnFaultResult = probeArenaSegvOnFault(arena: arenaMapsResult)
    private static let ldimm64FullRangeOffResult = probeLdimm64FullRangeOff()
    private static let kfuncsResult = probeKfuncs()
    private static let progBindMapResult = probeProgBindMap()
    private static let vmlinuxBTFResult = probeVmlinuxBTF()
    private static let moduleBTFResult = probeModuleBTF()
    private static let cachedAll = FeatureProbe.Feature.allCases.map(result)

    // MARK: - Probes

    /// The smallest valid arena: one page, mmapable, kernel-chosen address. The errno tells a
    /// kernel that does not know the map type (EINVAL: before 6.9 or without CONFIG_BPF_ARENA)
    /// from one that knows it and refuses this process (EPERM: arenas need CAP_BPF, and a
    /// sandbox or LSM may refuse them to root as well).
    static func probeArenaMaps() -> FeatureProbe {
        do {
            let map = try BPFSys.mapCreate(
                type: BPFConstants.MapType.arena, keySize: 0, valueSize: 0, maxEntries: 1,
                flags: BPFConstants.MapFlag.mmapable, name: "arena_probe")
            map.close()
            return FeatureProbe(.arenaMaps, available: true, reason: "a one-page BPF arena map (type 33) was created")
        } catch {
            let errno = error.errno ?? 0
            let reason: String
            switch errno {
            case EINVAL:
                reason = "this kernel (\(KernelVersion.release)) has no BPF arena maps (map type 33 is unknown: EINVAL); "
                    + "they need Linux 6.9 or later built with CONFIG_BPF_ARENA"
            case EPERM:
                reason = "kernel refuses BPF arena maps: EPERM (creating one needs CAP_BPF; a sandbox or LSM policy "
                    + "may refuse them even to root)"
            default:
                reason = "creating a one-page BPF arena map failed: \(error)"
            }
            return FeatureProbe(.arenaMaps, available: false, reason: reason, errno: errno)
        }
    }

    /// An arena with BPF_F_SEGV_ON_FAULT: the flag is refused (EINVAL) where it is unknown.
    static func probeArenaSegvOnFault(arena: FeatureProbe) -> FeatureProbe {
        guard arena.available else {
            return FeatureProbe(.arenaSegvOnFault, available: false,
                                reason: "not probed: BPF arena maps are unavailable", errno: arena.errno)
        }
        do {
            let map = try BPFSys.mapCreate(
                type: BPFConstants.MapType.arena, keySize: 0, valueSize: 0, maxEntries: 1,
                flags: BPFConstants.MapFlag.mmapable | BPFConstants.MapFlag.segvOnFault, name: "segv_probe")
            map.close()
            return FeatureProbe(.arenaSegvOnFault, available: true, reason: "an arena map with BPF_F_SEGV_ON_FAULT was created")
        } catch {
            return FeatureProbe(.arenaSegvOnFault, available: false,
                                reason: "creating an arena map with BPF_F_SEGV_ON_FAULT failed: \(error)", errno: error.errno)
        }
    }

    /// A one-element ARRAY (key 4, value 1) and a socket filter loading the address 1 GiB into
    /// its value. Both outcomes are verifier rejections; the log says which rule fired: the old
    /// blanket offset limit, or the value-size bounds check that replaced it.
    static func probeLdimm64FullRangeOff() -> FeatureProbe {
        let map: BPFFD
        do {
            map = try BPFSys.mapCreate(
                type: BPFConstants.MapType.array, keySize: 4, valueSize: 1, maxEntries: 1, name: "ldimm64_probe")
        } catch {
            return FeatureProbe(.ldimm64FullRangeOffset, available: false,
                                reason: "creating the probe's array map failed: \(error)", errno: error.errno)
        }
        defer { map.close() }
        let instructions =
            SysInstruction.loadMapValue(dst: 1, mapFD: map.rawValue, offset: 1 << 30)
            + [SysInstruction.mov64(dst: 0, imm: 0), SysInstruction.exit()]
        let attempt = BPFSys.progLoadOnce(
            type: BPFConstants.ProgramType.socketFilter, instructions: instructions, license: "GPL",
            logLevel: 1, logSize: 1024)
        attempt.fd?.close()
        if attempt.log.contains("direct value offset of") {
            return FeatureProbe(.ldimm64FullRangeOffset, available: false,
                                reason: "the verifier refuses a map-value offset of 1 GiB (\"direct value offset of ... is not allowed\"): "
                                    + "arena globals must sit in the arena's first 512 MiB")
        }
        if attempt.log.contains("invalid access to map value pointer") {
            return FeatureProbe(.ldimm64FullRangeOffset, available: true,
                                reason: "the verifier checks a 1 GiB map-value offset against the value size, not a blanket limit")
        }
        return FeatureProbe(.ldimm64FullRangeOffset, available: false,
                            reason: "the probe program got neither known answer (\(ErrnoName.describe(attempt.errno)))",
                            errno: attempt.errno)
    }

    /// A socket filter calling `bpf_cast_to_kern_ctx` (6.3+; registered for every program type)
    /// by its vmlinux BTF id, as the loader emits kfunc calls.
    static func probeKfuncs() -> FeatureProbe {
        let name = "bpf_cast_to_kern_ctx"
        let btf: KernelBTF
        do { btf = try KernelBTF.vmlinux() } catch {
            return FeatureProbe(.kfuncs, available: false, reason: "no vmlinux BTF to resolve kfuncs in: \(error)")
        }
        guard let id = btf.find(name, kind: .function) else {
            return FeatureProbe(.kfuncs, available: false,
                                reason: "vmlinux BTF has no \(name) (6.3+), the kfunc every program type may call")
        }
        let instructions = [
            SysInstruction.encode(code: 0x85, src: BPFConstants.PseudoCall.kfuncCall, imm: Int32(bitPattern: id)),
            SysInstruction.mov64(dst: 0, imm: 0), SysInstruction.exit(),
        ]
        let attempt = BPFSys.progLoadOnce(
            type: BPFConstants.ProgramType.socketFilter, instructions: instructions, license: "GPL",
            logLevel: 1, logSize: 4096)
        if let fd = attempt.fd {
            fd.close()
            return FeatureProbe(.kfuncs, available: true,
                                reason: "the verifier accepts a call to the kfunc \(name) (vmlinux BTF id \(id))")
        }
        let last = VerifierError.lastLines(of: attempt.log, count: 1)
        return FeatureProbe(.kfuncs, available: false,
                            reason: "a call to the kfunc \(name) was refused with \(ErrnoName.describe(attempt.errno)): \(last)",
                            errno: attempt.errno)
    }

    /// Binding a map to a trivial program succeeds only where the command exists.
    static func probeProgBindMap() -> FeatureProbe {
        do {
            let map = try BPFSys.mapCreate(
                type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1, name: "bind_probe")
            defer { map.close() }
            let program = try BPFSys.progLoad(
                ProgramLoadRequest(
                    type: BPFConstants.ProgramType.socketFilter,
                    instructions: [SysInstruction.mov64(dst: 0, imm: 0), SysInstruction.exit()],
                    license: "GPL", name: "bind_probe"))
            defer { program.close() }
            try BPFSys.progBindMap(progFD: program, mapFD: map)
            return FeatureProbe(.progBindMap, available: true, reason: "the BPF_PROG_BIND_MAP command bound a map to a program")
        } catch {
            return FeatureProbe(.progBindMap, available: false, reason: "the BPF_PROG_BIND_MAP probe failed: \(error)",
                                errno: error.errno)
        }
    }

    static func probeVmlinuxBTF() -> FeatureProbe {
        let path = "/sys/kernel/btf/vmlinux"
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = Glibc.errno
            return FeatureProbe(.vmlinuxBTF, available: false,
                                reason: "no \(path) (\(ErrnoName.describe(e))): the kernel was built without CONFIG_DEBUG_INFO_BTF",
                                errno: e)
        }
        guard access(path, R_OK) == 0 else {
            let e = Glibc.errno
            return FeatureProbe(.vmlinuxBTF, available: false, reason: "\(path) is not readable (\(ErrnoName.describe(e)))", errno: e)
        }
        return FeatureProbe(.vmlinuxBTF, available: true, reason: "\(path) holds \(st.st_size) bytes of BTF")
    }

    /// Module BTF objects, found as the loader finds them (BPF_BTF_GET_NEXT_ID walk).
    static func probeModuleBTF() -> FeatureProbe {
        do {
            let entries = try KernelBTFObjects.list(keep: KernelBTFObjects.isModule)
            let names = entries.map(\.info.name)
            for entry in entries { entry.fd.close() }
            guard !names.isEmpty else {
                return FeatureProbe(.moduleBTF, available: false,
                                    reason: "no module BTF objects (no modules loaded, or CONFIG_MODULES / CONFIG_DEBUG_INFO_BTF_MODULES off)")
            }
            let shown = names.prefix(5).joined(separator: ", ") + (names.count > 5 ? ", ..." : "")
            return FeatureProbe(.moduleBTF, available: true, reason: "\(names.count) module BTF objects (\(shown))")
        } catch {
            return FeatureProbe(.moduleBTF, available: false, reason: "walking kernel BTF objects failed: \(error)")
        }
    }
}
