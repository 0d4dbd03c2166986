import BPFObject
import Glibc

public struct LoadOptions: Sendable {
    /// Root for `PIN_BY_NAME` maps (libbpf's default `/sys/fs/bpf`).
    public var pinRoot: String = "/sys/fs/bpf"
    /// Pin every map and program of this load under this bpffs directory.
    public var pinDirectory: String?
    /// Kernel configuration for `__kconfig` externs; nil reads the running kernel's.
    public var kernelConfig: KernelConfig?
    public init() {}
}

/// Turns an `ObjectSpec` plus its (possibly patched) images into kernel objects, in libbpf's
/// order: externs, BTF, maps (arena mmap'ed and filled, data maps filled/frozen/mmap'ed), map
/// slots, programs (subprograms appended, relocations applied), prog-array slots, pins.
public enum Loader {
    public static func load(_ spec: ObjectSpec, images: [String: [UInt8]] = [:],
                            options: LoadOptions = LoadOptions()) throws(LoaderError) -> LoadedObject {
        try load(spec, images: images, options: options, modules: ModuleBTFSession())
    }

    /// `modules`: where kfuncs, typed ksyms and attach targets missing from vmlinux are looked
    /// up (the running kernel's module BTFs, unless a test gives others).
    static func load(_ spec: ObjectSpec, images: [String: [UInt8]], options: LoadOptions,
                     modules: ModuleBTFSession) throws(LoaderError) -> LoadedObject {
        var spec = spec
        try applyImages(images, to: &spec)
        try requireKernelFeatures(spec)

        // Externs: .kconfig values go into its image before the map is created.
        var kconfigImage = spec.dataSections.first { $0.kind == .kconfig }?.image ?? []
        // Module BTFs: opened only for names vmlinux lacks; the ones used stay open for the load.
        var resolver = ExternResolver(spec: spec, modules: modules)
        if spec.externs.contains(where: { if case .kconfig = $0.kind { return !$0.name.hasPrefix("LINUX_") } else { return false } }) {
            if let given = options.kernelConfig { resolver.kconfig = given } else { resolver.kconfig = try KernelConfig.running() }
        }
        let externs = try resolver.resolve(kconfigImage: &kconfigImage)
        if let k = spec.dataSections.firstIndex(where: { $0.kind == .kconfig }) { spec.dataSections[k].image = kconfigImage }

        // BTF: a failed upload only costs func/line info and typed map values, as in libbpf.
        var btfFD: BPFFD?
        if let btf = spec.btf { btfFD = try? BPFSys.btfLoad(data: btf.encoded()) }

        let page = UInt64(MappedRegion.pageSize)
        var arenaDataOffset: UInt64 = 0
        if let a = spec.arenaMapIndex, let image = spec.dataSections.first(where: { $0.kind == .arena })?.image,
           FeatureProbes.ldimm64FullRangeOff() {
            // libbpf puts the globals in the last pages so the first ones can guard NULL; only
            // where the verifier accepts large ld_imm64 offsets.
            arenaDataOffset = page * UInt64(spec.maps[a].maxEntries) - (UInt64(image.count) + page - 1) / page * page
        }

        var loadedMaps: [LoadedMap] = []
        for (i, m) in spec.maps.enumerated() {
            loadedMaps.append(try createMap(i, m, spec: spec, btfFD: btfFD, arenaDataOffset: arenaDataOffset, options: options))
        }
        try fillMapSlots(spec: spec, maps: loadedMaps)

        let context = LinkContext(
            mapFDs: loadedMaps.map(\.fd.rawValue), externs: externs,
            kconfigMapFD: spec.maps.firstIndex { $0.role == .kconfig }.map { loadedMaps[$0].fd.rawValue },
            arenaDataOffset: arenaDataOffset)
        var programs: [LoadedProgram] = []
        for (i, p) in spec.programs.enumerated() where !p.isSubprogram && p.autoload {
            let started = ContinuousClock.now
            let fd = try loadProgram(i, spec: spec, context: context, btfFD: btfFD, modules: modules)
            let took = started.duration(to: .now).components
            let id = (try? BPFSys.objGetInfoByFD(programFD: fd).id) ?? 0
            programs.append(LoadedProgram(name: p.name, fd: fd, id: id,
                                          loadNanoseconds: UInt64(max(0, took.seconds)) * 1_000_000_000 + UInt64(max(0, took.attoseconds / 1_000_000_000))))
            if FeatureProbes.progBindMap() {
                for (mi, m) in spec.maps.enumerated() {
                    if case .globalData(_, .rodata) = m.role { try? BPFSys.progBindMap(progFD: fd, mapFD: loadedMaps[mi].fd) }
                }
            }
        }
        try fillProgramSlots(spec: spec, maps: loadedMaps, programs: programs)
        withExtendedLifetime(loadedMaps) {}

        if let dir = options.pinDirectory {
            do {
                try Pinning.pinLoad(directory: dir, maps: loadedMaps, programs: programs)
            } catch {
                // No half-pinned loads: take back what was pinned before the failure.
                Pinning.removeLoadPins(directory: dir, maps: loadedMaps, programs: programs)
                throw error
            }
        }
        return LoadedObject(spec: spec, maps: loadedMaps, programs: programs, arenaDataOffset: arenaDataOffset,
                            pinDirectory: options.pinDirectory, btfFD: btfFD, moduleBTFFDs: modules.finish())
    }

    /// Replaces section images (patched revisions); each must keep its section's size.
    static func applyImages(_ images: [String: [UInt8]], to spec: inout ObjectSpec) throws(LoaderError) {
        for (name, bytes) in images {
            guard let i = spec.dataSections.firstIndex(where: { $0.name == name }) else {
                throw .image(section: name, reason: "the object has no such data section")
            }
            guard bytes.count == spec.dataSections[i].image.count else {
                throw .image(section: name, reason: "expected \(spec.dataSections[i].image.count) bytes, got \(bytes.count)")
            }
            spec.dataSections[i].image = bytes
        }
    }

    /// Map kinds for which libbpf passes no BTF key/value ids.
    static let btfLessMapTypes: Set<UInt32> = [4, 7, 8, 12, 13, 14, 15, 16, 17, 18, 22, 23, 25, 33]

    private static func create(_ m: MapSpec, btfFD: BPFFD?, innerMapFD: BPFFD? = nil) throws(LoaderError) -> BPFFD {
        let withBTF = btfFD != nil && !btfLessMapTypes.contains(m.type.rawValue) && (m.btfKeyTypeID != 0 || m.btfValueTypeID != 0)
        func attempt(_ useBTF: Bool) throws(BPFError) -> BPFFD {
            try BPFSys.mapCreate(
                type: m.type.rawValue, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries,
                flags: m.flags, name: m.name, mapExtra: m.mapExtra, btfFD: useBTF ? btfFD : nil,
                btfKeyTypeID: useBTF ? m.btfKeyTypeID : 0, btfValueTypeID: useBTF ? m.btfValueTypeID : 0,
                innerMapFD: innerMapFD, numaNode: m.numaNode)
        }
        do {
            return try attempt(withBTF)
        } catch {
            // libbpf retries once without BTF when the kernel dislikes the types.
            guard withBTF else { throw .map(name: m.name, error) }
            do { return try attempt(false) } catch { throw .map(name: m.name, error) }
        }
    }

    /// What the object needs that a probe can tell up front: refused here, before any map,
    /// BTF or program exists, with the probe's reason rather than a later command's errno.
    static func requireKernelFeatures(_ spec: ObjectSpec) throws(LoaderError) {
        guard let arena = spec.maps.first(where: { $0.type == .arena }) else { return }
        let maps = FeatureProbes.result(.arenaMaps)
        guard maps.available else { throw .kernelLacks(maps, needed: "an object with the BPF arena map '\(arena.name)'") }
        if arena.flags & BPFConstants.MapFlag.segvOnFault != 0 {
            let segv = FeatureProbes.result(.arenaSegvOnFault)
            guard segv.available else {
                throw .kernelLacks(segv, needed: "the arena map '\(arena.name)' with BPF_F_SEGV_ON_FAULT")
            }
        }
    }

    private static func createMap(_ index: Int, _ m: MapSpec, spec: ObjectSpec, btfFD: BPFFD?, arenaDataOffset: UInt64,
                                  options: LoadOptions) throws(LoaderError) -> LoadedMap {
        // PIN_BY_NAME: reuse a compatible pinned map, as libbpf's reuse_map does.
        if m.pinning == .byName {
            let path = "\(options.pinRoot)/\(Pinning.fileName(m.name))"
            if let fd = try? BPFSys.objGet(path: path) {
                guard let info = try? BPFSys.objGetInfoByFD(mapFD: fd),
                      info.type == m.type.rawValue, info.keySize == m.keySize, info.valueSize == m.valueSize,
                      info.maxEntries == m.maxEntries, info.flags == m.flags, info.mapExtra == m.mapExtra else {
                    throw .pin(path: path, reason: "pinned map is not compatible with map '\(m.name)' (type, sizes, entries, flags or map_extra differ)")
                }
                return LoadedMap(spec: m, fd: fd, id: info.id, region: nil)
            }
        }
        var inner: BPFFD?
        if let innerSpec = m.innerMap { inner = try create(innerSpec, btfFD: btfFD) }
        let fd = try create(m, btfFD: btfFD, innerMapFD: inner)
        inner?.close()  // the kernel keeps what it needs of the inner map's shape
        var region: MappedRegion?
        if m.type == .arena {
            region = try mapArena(m, fd: fd, spec: spec, offset: arenaDataOffset)
        } else if let ds = spec.dataSections.first(where: { $0.mapIndex == index }) {
            region = try populateDataMap(m, fd: fd, image: ds.image)
        }
        if m.pinning == .byName {
            let path = "\(options.pinRoot)/\(Pinning.fileName(m.name))"
            try Pinning.prepareDirectory(options.pinRoot)
            do { try BPFSys.objPin(fd: fd, path: path) } catch { throw .pin(path: path, reason: "\(error)") }
        }
        let id = (try? BPFSys.objGetInfoByFD(mapFD: fd).id) ?? 0
        return LoadedMap(spec: m, fd: fd, id: id, region: region)
    }

    /// The arena is mapped before programs load (the kernel fixes its user range at the first
    /// mmap), at `map_extra` without clobbering anything already there, then the image is copied.
    private static func mapArena(_ m: MapSpec, fd: BPFFD, spec: ObjectSpec, offset: UInt64) throws(LoaderError) -> MappedRegion {
        let length = MappedRegion.pageSize * Int(m.maxEntries)
        let region: MappedRegion
        do {
            region = try MappedRegion.mmap(fd: fd, length: length, protection: .readWrite,
                                           at: m.mapExtra != 0 ? m.mapExtra : nil, fixedNoReplace: true)
        } catch {
            if case .addressRangeInUse(let a, let l) = error { throw .arenaAddressInUse(map: m.name, address: a, length: l) }
            throw .map(name: m.name, error)
        }
        guard let image = spec.dataSections.first(where: { $0.kind == .arena })?.image, !image.isEmpty else { return region }
        // With BPF_F_SEGV_ON_FAULT the kernel does not fault pages in for user space: copying the
        // image would kill the process (libbpf does not guard this).
        if m.flags & BPFConstants.MapFlag.segvOnFault != 0 {
            throw .arena(map: m.name, reason: "arena has BPF_F_SEGV_ON_FAULT, so its __arena globals cannot be initialised from user space")
        }
        do { try region.write(image, at: Int(offset)) } catch { throw .map(name: m.name, error) }
        return region
    }

    /// libbpf's populate_internal_map: value written, rodata/kconfig frozen, mmap'ed when
    /// mmapable (read-only for frozen maps).
    private static func populateDataMap(_ m: MapSpec, fd: BPFFD, image: [UInt8]) throws(LoaderError) -> MappedRegion? {
        do {
            try BPFSys.mapUpdate(fd: fd, key: [0, 0, 0, 0], value: image)
            let readOnly = m.flags & BPFConstants.MapFlag.rdonlyProg != 0
            if readOnly { try BPFSys.mapFreeze(fd: fd) }
            guard m.flags & BPFConstants.MapFlag.mmapable != 0 else { return nil }
            let length = max((image.count + 7) / 8 * 8, 1)
            return try MappedRegion.mmap(fd: fd, length: length, protection: readOnly ? .read : .readWrite)
        } catch {
            throw .map(name: m.name, error)
        }
    }

    private static func fillMapSlots(spec: ObjectSpec, maps: [LoadedMap]) throws(LoaderError) {
        for (i, m) in spec.maps.enumerated() {
            for (slot, target) in m.initialSlots.sorted(by: { $0.key < $1.key }) {
                guard case .map(let t) = target else { continue }
                do {
                    try BPFSys.mapUpdate(fd: maps[i].fd, key: withUnsafeBytes(of: slot.littleEndian, Array.init),
                                         value: withUnsafeBytes(of: maps[t].fd.rawValue.littleEndian, Array.init))
                } catch {
                    throw .map(name: m.name, error)
                }
            }
        }
    }

    private static func fillProgramSlots(spec: ObjectSpec, maps: [LoadedMap], programs: [LoadedProgram]) throws(LoaderError) {
        for (i, m) in spec.maps.enumerated() {
            for (slot, target) in m.initialSlots.sorted(by: { $0.key < $1.key }) {
                guard case .program(let name) = target else { continue }
                guard let p = programs.first(where: { $0.name == name }) else { continue }  // not autoloaded
                do {
                    try BPFSys.mapUpdate(fd: maps[i].fd, key: withUnsafeBytes(of: slot.littleEndian, Array.init),
                                         value: withUnsafeBytes(of: p.fd.rawValue.littleEndian, Array.init))
                } catch {
                    throw .map(name: m.name, error)
                }
            }
        }
    }

    private static func loadProgram(_ index: Int, spec: ObjectSpec, context: LinkContext, btfFD: BPFFD?,
                                    modules: ModuleBTFSession) throws(LoaderError) -> BPFFD {
        let p = spec.programs[index]
        guard p.hasKnownSection else { throw .unknownProgramSection(program: p.name, section: p.sectionName) }
        let linked = try ProgramLinker.link(index, spec: spec, context: context)
        var request = ProgramLoadRequest(type: p.type.rawValue, instructions: linked.instructionBytes,
                                         license: spec.license, name: p.name)
        request.expectedAttachType = p.expectedAttachType.rawValue
        request.kernelVersion = spec.kernelVersion ?? KernelVersion.code
        request.flags = p.flags
        if p.needsAttachBTF {
            let (id, module) = try attachTarget(p, modules: modules)
            request.attachBTFID = id
            request.attachBTFObjectFD = module?.fd
        }
        // libbpf passes the object's fd_array (module kfunc BTFs) to every program.
        request.fdArray = modules.fdArray
        if let btfFD {
            request.btfFD = btfFD
            if !linked.funcInfo.isEmpty {
                var fi: [UInt8] = []
                for (off, id) in linked.funcInfo { fi.appendLE(off); fi.appendLE(id) }
                request.funcInfo = fi
                request.funcInfoRecordSize = 8
                var li: [UInt8] = []
                for l in linked.lineInfo {
                    li.appendLE(l.instructionOffset); li.appendLE(l.fileNameOffset); li.appendLE(l.lineOffset); li.appendLE(l.lineColumn)
                }
                request.lineInfo = li
                request.lineInfoRecordSize = li.isEmpty ? 0 : 16
            }
            if !linked.coreRelocations.isEmpty {
                // CO-RE is resolved by the kernel from these records (BPF_PROG_LOAD core_relos).
                var cr: [UInt8] = []
                for c in linked.coreRelocations {
                    cr.appendLE(c.instructionOffset); cr.appendLE(c.typeID); cr.appendLE(c.accessStringOffset); cr.appendLE(c.kind)
                }
                request.coreRelocations = cr
                request.coreRelocationRecordSize = 16
            }
        } else if !linked.coreRelocations.isEmpty {
            throw .relocation(program: p.name, reason: "CO-RE relocations need the object's BTF, which the kernel refused")
        }
        do {
            return try BPFSys.progLoad(request)
        } catch {
            if case .verifier(let v) = error { throw .verifier(v) }
            throw .program(name: p.name, error)
        }
    }

    /// libbpf's attach-target lookup (`find_kernel_btf_id`), by attach type: `func` is looked up
    /// in vmlinux BTF and then in the modules' own types; `module:func` only in that module
    /// (its BTF searched as libbpf does, vmlinux part first). Returns the BTF id and, for a
    /// module, its BTF (for `attach_btf_obj_fd`).
    static func attachTarget(_ p: ProgramSpec, modules: ModuleBTFSession) throws(LoaderError) -> (UInt32, OpenModuleBTF?) {
        guard let target = p.attachTarget, !target.isEmpty else {
            throw .attachTarget(program: p.name, reason: "section '\(p.sectionName)' names no BTF attach target")
        }
        let (moduleName, function) = splitAttachTarget(target)
        guard !function.isEmpty, moduleName.map({ !$0.isEmpty }) ?? true else {
            throw .attachTarget(program: p.name, reason: "'\(target)' is not 'function' or 'module:function'")
        }
        let kernel = try KernelBTF.vmlinux()
        let (name, kind) = attachTypeName(function, expectedAttachType: p.expectedAttachType.rawValue)
        if moduleName == nil, let id = kernel.find(name, kind: kind) { return (id, nil) }
        let list: [OpenModuleBTF]
        do { list = try modules.modules() } catch {
            throw .attachTarget(program: p.name, reason: "'\(name)' is not in vmlinux BTF, and the module BTFs could not be searched: \(error)")
        }
        for m in list {
            if let moduleName {
                guard m.module.name == moduleName else { continue }
                // libbpf searches the whole split BTF here: its vmlinux part, then the module's.
                guard let id = kernel.find(name, kind: kind) ?? m.module.find(name, kind: kind) else { continue }
                modules.use(m)
                return (id, m)
            }
            if let id = m.module.find(name, kind: kind) {
                modules.use(m)
                return (id, m)
            }
        }
        if let moduleName, !list.contains(where: { $0.module.name == moduleName }) {
            throw .attachTarget(program: p.name, reason: "no module named '\(moduleName)' with BTF is loaded")
        }
        throw .attachTarget(program: p.name, reason: "'\(name)' not found in kernel BTF" + (moduleName.map { " of module '\($0)'" } ?? " or module BTFs"))
    }

    /// `"mod:func"` → ("mod", "func"); `"func"` → (nil, "func"). The first ':' splits.
    static func splitAttachTarget(_ target: String) -> (module: String?, function: String) {
        guard let colon = target.firstIndex(of: ":") else { return (nil, target) }
        return (String(target[..<colon]), String(target[target.index(after: colon)...]))
    }

    /// The BTF name and kind an attach target is looked up as.
    static func attachTypeName(_ function: String, expectedAttachType: UInt32) -> (String, BPFObject.BTFKindTag) {
        switch expectedAttachType {
        case 23: return ("btf_trace_\(function)", .typedef)   // BPF_TRACE_RAW_TP
        case 27, 43: return ("bpf_lsm_\(function)", .function) // BPF_LSM_MAC, BPF_LSM_CGROUP
        case 28: return ("bpf_iter_\(function)", .function)   // BPF_TRACE_ITER
        default: return (function, .function)
        }
    }
}
