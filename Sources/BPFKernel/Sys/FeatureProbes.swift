import Glibc

/// What the running kernel supports, probed once per process the way libbpf probes it.
/// Each result is a `static let`: initialised once, thread-safely, on first use. A probe that
/// fails for any reason (including missing privileges) reports "unsupported", as libbpf does.
public enum FeatureProbes {
    /// Whether ld_imm64 direct map-value offsets may reach the full 32-bit range. Older
    /// verifiers refuse offsets ≥ 512 MiB ("direct value offset of %u is not allowed"), which
    /// decides whether arena globals may be placed at the end of a large arena.
    public static func ldimm64FullRangeOff() -> Bool {
        ldimm64FullRangeOffResult
    }

    /// Whether BPF_PROG_BIND_MAP exists (5.10+).
    public static func progBindMap() -> Bool {
        progBindMapResult
    }

    /// Whether BPF_MAP_TYPE_ARENA maps can be created (6.9+, and CONFIG_BPF_ARENA).
    public static func arenaMaps() -> Bool {
        arenaMapsResult
    }

    private static let ldimm64FullRangeOffResult = probeLdimm64FullRangeOff()
    private static let progBindMapResult = probeProgBindMap()
    private static let arenaMapsResult = probeArenaMaps()

    /// A one-element ARRAY (key 4, value 1) and a socket filter loading the address 1 GiB into
    /// its value. Both outcomes are verifier rejections; the log says which rule fired: the old
    /// blanket offset limit, or the value-size bounds check that replaced it.
    static func probeLdimm64FullRangeOff() -> Bool {
        guard
            let map = try? BPFSys.mapCreate(
                type: BPFConstants.MapType.array, keySize: 4, valueSize: 1, maxEntries: 1,
                name: "ldimm64_probe")
        else { return false }
        let instructions =
            SysInstruction.loadMapValue(dst: 1, mapFD: map.rawValue, offset: 1 << 30)
            + [SysInstruction.mov64(dst: 0, imm: 0), SysInstruction.exit()]
        let attempt = BPFSys.progLoadOnce(
            type: BPFConstants.ProgramType.socketFilter, instructions: instructions, license: "GPL",
            logLevel: 1, logSize: 1024)
        withExtendedLifetime(map) {}
        attempt.fd?.close()
        if attempt.log.contains("direct value offset of") {
            return false
        }
        return attempt.log.contains("invalid access to map value pointer")
    }

    /// Binding a map to a trivial program succeeds only where the command exists.
    static func probeProgBindMap() -> Bool {
        guard
            let map = try? BPFSys.mapCreate(
                type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1,
                name: "bind_probe"),
            let program = try? BPFSys.progLoad(
                ProgramLoadRequest(
                    type: BPFConstants.ProgramType.socketFilter,
                    instructions: [SysInstruction.mov64(dst: 0, imm: 0), SysInstruction.exit()],
                    license: "GPL", name: "bind_probe"))
        else { return false }
        return (try? BPFSys.progBindMap(progFD: program, mapFD: map)) != nil
    }

    /// The smallest valid arena: one page, mmapable, kernel-chosen address.
    static func probeArenaMaps() -> Bool {
        let map = try? BPFSys.mapCreate(
            type: BPFConstants.MapType.arena, keySize: 0, valueSize: 0, maxEntries: 1,
            flags: BPFConstants.MapFlag.mmapable, name: "arena_probe")
        return map != nil
    }
}
