import BPFObject
import Glibc
import Synchronization

/// A map as the kernel holds it, with its mmap'ed memory when it has any.
public struct LoadedMap: Sendable {
    public let spec: MapSpec
    public let fd: BPFFD
    public let id: UInt32
    /// The arena, or a mmapable global-data map's value.
    public let region: MappedRegion?
}

public struct LoadedProgram: Sendable {
    public let name: String
    public let fd: BPFFD
    public let id: UInt32
    /// How long linking and BPF_PROG_LOAD took (the verifier, mostly); 0 for an adopted program.
    public var loadNanoseconds: UInt64 = 0

    public init(name: String, fd: BPFFD, id: UInt32, loadNanoseconds: UInt64 = 0) {
        self.name = name
        self.fd = fd
        self.id = id
        self.loadNanoseconds = loadNanoseconds
    }
}

/// What a loaded object owns: every map and program fd and every mapping. Live variable views
/// read and write the mapped memory directly. `unload()` releases everything; so does deinit.
public final class LoadedObject: Sendable {
    public let spec: ObjectSpec
    public let maps: [LoadedMap]
    public let programs: [LoadedProgram]
    /// Where the arena image starts inside the arena (libbpf's `arena_data_off`).
    public let arenaDataOffset: UInt64
    /// The bpffs directory this load is pinned under, if any.
    public let pinDirectory: String?
    let btfFD: BPFFD?
    /// BTF of the kernel modules whose kfuncs, variables or functions the programs refer to.
    let moduleBTFFDs: [BPFFD]
    private let state = LiveState()
    /// `spec.variables` by name (the first of a name, as `ObjectSpec.variable(named:)`): a live
    /// read of all 1,000 variables of an object was O(n²) in linear lookups.
    private let variableIndex: [String: Int]
    /// For each of `spec.variables`: its map's index in `maps` and its offset in that map's
    /// memory (nil when its section has no map), worked out once instead of on every read.
    private let variableLocations: [(map: Int, offset: Int)?]

    init(spec: ObjectSpec, maps: [LoadedMap], programs: [LoadedProgram], arenaDataOffset: UInt64,
         pinDirectory: String?, btfFD: BPFFD?, moduleBTFFDs: [BPFFD] = []) {
        self.spec = spec
        self.maps = maps
        self.programs = programs
        self.arenaDataOffset = arenaDataOffset
        self.pinDirectory = pinDirectory
        self.btfFD = btfFD
        self.moduleBTFFDs = moduleBTFFDs
        var index: [String: Int] = [:]
        index.reserveCapacity(spec.variables.count)
        for (i, v) in spec.variables.enumerated() where index[v.name] == nil { index[v.name] = i }
        variableIndex = index
        variableLocations = spec.variables.map { v in
            guard let ds = spec.dataSection(named: v.section), ds.mapIndex >= 0, ds.mapIndex < maps.count else { return nil }
            return (ds.mapIndex, (ds.kind == .arena ? Int(arenaDataOffset) : 0) + Int(v.offset))
        }
    }

    public var isLoaded: Bool { state.isLoaded }

    /// The arena's user-space start address, if the object has an arena.
    public var arenaAddress: UInt64? {
        spec.arenaMapIndex.flatMap { maps[$0].region?.address }
    }

    public func map(named name: String) -> LoadedMap? {
        maps.first { $0.spec.name == name || $0.spec.realName == name }
    }

    public func program(named name: String) -> LoadedProgram? {
        programs.first { $0.name == name }
    }

    // MARK: live variables

    /// The index in `spec.variables` of the variable called `name` (the first, if several are).
    public func variableIndex(named name: String) -> Int? { variableIndex[name] }

    /// `spec.variable(named:)` without the linear search.
    public func variable(named name: String) -> VariableSpec? {
        variableIndex[name].map { spec.variables[$0] }
    }

    /// Where a variable lives once loaded.
    private func location(of name: String) throws(LoaderError) -> (VariableSpec, LoadedMap, offset: Int) {
        guard let i = variableIndex[name] else { throw .unknownVariable(name) }
        return try location(ofVariableAt: i)
    }

    private func location(ofVariableAt i: Int) throws(LoaderError) -> (VariableSpec, LoadedMap, offset: Int) {
        let v = spec.variables[i]
        guard let (m, offset) = variableLocations[i] else { throw .unknownVariable(v.name) }
        return (v, maps[m], offset)
    }

    /// The variable's current bytes.
    public func read(variable name: String) throws(LoaderError) -> [UInt8] {
        guard let i = variableIndex[name] else { throw .unknownVariable(name) }
        return try read(variableAt: i)
    }

    /// The current bytes of `spec.variables[index]`. (Reads `maps[i]` fields in place: copying
    /// the `LoadedMap` and `VariableSpec` was a fifth of reading a variable.)
    public func read(variableAt index: Int) throws(LoaderError) -> [UInt8] {
        guard spec.variables.indices.contains(index) else { throw .unknownVariable("#\(index)") }
        guard let (mi, offset) = variableLocations[index] else { throw .unknownVariable(spec.variables[index].name) }
        let size = Int(spec.variables[index].size)
        return try withLive { () throws(LoaderError) in
            if let region = maps[mi].region {
                do throws(BPFError) { return try region.read(at: offset, count: size) } catch { throw .map(name: maps[mi].spec.name, error) }
            }
            let value = try lookupValue(maps[mi])
            return Array(value[offset..<(offset + size)])
        }
    }

    /// Runs `body` over the variable's current bytes: in place in the mapped section (no copy),
    /// or a copy of the map value where the section is not mapped. The buffer must not escape
    /// `body`, which runs while the object cannot be unloaded.
    public func withBytes<R>(variableAt index: Int, _ body: (UnsafeRawBufferPointer) -> R) throws(LoaderError) -> R {
        guard spec.variables.indices.contains(index) else { throw .unknownVariable("#\(index)") }
        guard let (mi, offset) = variableLocations[index] else { throw .unknownVariable(spec.variables[index].name) }
        let size = Int(spec.variables[index].size)
        return try withLive { () throws(LoaderError) in
            if let region = maps[mi].region {
                do throws(BPFError) { return try region.withBytes(at: offset, count: size, body) } catch { throw .map(name: maps[mi].spec.name, error) }
            }
            let value = try lookupValue(maps[mi])
            guard offset >= 0, size >= 0, offset + size <= value.count else {
                throw .outOfRange(variable: spec.variables[index].name, reason: "expected \(offset + size) bytes of map value, got \(value.count)")
            }
            return value[offset..<(offset + size)].withUnsafeBytes(body)
        }
    }

    /// `withBytes(variableAt:_:)` for several variables under one hold of the object: `body`
    /// gets each index of `indices` in order with that variable's current bytes. A run of
    /// variables in one mapped section takes the section's lock once.
    public func withBytes(variablesAt indices: [Int], _ body: (Int, UnsafeRawBufferPointer) -> Void) throws(LoaderError) {
        try withLive { () throws(LoaderError) in
            var k = 0
            while k < indices.count {
                let index = indices[k]
                guard spec.variables.indices.contains(index) else { throw .unknownVariable("#\(index)") }
                guard let (mi, _) = variableLocations[index] else { throw .unknownVariable(spec.variables[index].name) }
                // The run of variables in map `mi` from here.
                var end = k + 1
                while end < indices.count, spec.variables.indices.contains(indices[end]),
                      let (m, _) = variableLocations[indices[end]], m == mi { end += 1 }
                let run = indices[k..<end]
                k = end
                if let region = maps[mi].region {
                    var failed: LoaderError?
                    do throws(BPFError) {
                        try region.withBytes(at: 0, count: region.length) { whole in
                            for i in run {
                                guard let (_, offset) = variableLocations[i] else { continue }
                                let size = Int(spec.variables[i].size)
                                guard offset >= 0, size >= 0, offset <= whole.count, size <= whole.count - offset else {
                                    failed = .map(name: maps[mi].spec.name, .outOfBounds(offset: offset, count: size, regionLength: whole.count))
                                    return
                                }
                                body(i, UnsafeRawBufferPointer(rebasing: whole[offset..<(offset + size)]))
                            }
                        }
                    } catch { throw .map(name: maps[mi].spec.name, error) }
                    if let failed { throw failed }
                    continue
                }
                let value = try lookupValue(maps[mi])
                for i in run {
                    guard let (_, offset) = variableLocations[i] else { continue }
                    let size = Int(spec.variables[i].size)
                    guard offset >= 0, size >= 0, offset + size <= value.count else {
                        throw .outOfRange(variable: spec.variables[i].name, reason: "expected \(offset + size) bytes of map value, got \(value.count)")
                    }
                    value[offset..<(offset + size)].withUnsafeBytes { body(i, $0) }
                }
            }
        }
    }

    /// Overwrites the variable's bytes in the live object. Rodata and kconfig are frozen.
    public func write(variable name: String, bytes: [UInt8]) throws(LoaderError) {
        let (v, m, offset) = try location(of: name)
        guard v.sectionKind != .rodata, v.sectionKind != .kconfig else {
            throw .readOnly(variable: name, section: v.section)
        }
        guard bytes.count == Int(v.size) else {
            throw .outOfRange(variable: name, reason: "expected \(v.size) bytes, got \(bytes.count)")
        }
        try withLive { () throws(LoaderError) in
            if let region = m.region {
                try mapOp(m) { () throws(BPFError) in try region.write(bytes, at: offset) }
                return
            }
            // A data map without mmap (only static variables): read-modify-write the value.
            var value = try lookupValue(m)
            value.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            try mapOp(m) { () throws(BPFError) in try BPFSys.mapUpdate(fd: m.fd, key: [0, 0, 0, 0], value: value) }
        }
    }

    /// The whole current image of a data or arena section.
    public func read(section name: String) throws(LoaderError) -> [UInt8] {
        guard let ds = spec.dataSection(named: name), ds.mapIndex >= 0, ds.mapIndex < maps.count else {
            throw .image(section: name, reason: "no such data section")
        }
        let m = maps[ds.mapIndex]
        return try withLive { () throws(LoaderError) in
            if let region = m.region {
                let base = ds.kind == .arena ? Int(arenaDataOffset) : 0
                return try mapOp(m) { () throws(BPFError) in try region.read(at: base, count: ds.image.count) }
            }
            return try lookupValue(m)
        }
    }

    private func lookupValue(_ m: LoadedMap) throws(LoaderError) -> [UInt8] {
        let value = try mapOp(m) { () throws(BPFError) in
            try BPFSys.mapLookup(fd: m.fd, key: [0, 0, 0, 0], valueSize: Int(m.spec.valueSize))
        }
        guard let value else { throw .map(name: m.spec.name, .invalidArgument("element 0 is missing")) }
        return value
    }

    private func mapOp<R>(_ m: LoadedMap, _ body: () throws(BPFError) -> R) throws(LoaderError) -> R {
        do { return try body() } catch { throw .map(name: m.spec.name, error) }
    }

    // MARK: running programs

    /// `BPF_PROG_TEST_RUN`.
    public func run(program name: String, data: [UInt8] = [], dataOutSize: Int? = nil, context: [UInt8] = [],
                    contextOutSize: Int = 0, repeat repetitions: UInt32 = 1) throws(LoaderError) -> ProgramTestRunResult {
        guard let p = program(named: name) else { throw .unknownProgram(name) }
        // Syscall and raw tracepoint programs take only a context: the kernel refuses data, an
        // output buffer and a repeat count for them, so each repeat is a run of its own (libbpf
        // passes repeat 0, which the kernel reads as once).
        let type = spec.program(named: name)?.type
        let runsOnce = type == .syscall || type == .rawTracepoint || type == .rawTracepointWritable
        return try withLive { () throws(LoaderError) in
            do throws(BPFError) {
                guard runsOnce else {
                    return try BPFSys.progTestRun(fd: p.fd, dataIn: data, dataOutSize: dataOutSize ?? (data.isEmpty ? 0 : data.count + 256),
                                                  ctxIn: context, ctxOutSize: contextOutSize, repeat: repetitions <= 1 ? 0 : repetitions)
                }
                guard data.isEmpty else { throw BPFError.invalidArgument("\(type?.name ?? "these") programs take a context, not packet data") }
                var result = try BPFSys.progTestRun(fd: p.fd, ctxIn: context, repeat: 0)
                var total = UInt64(result.duration)
                for _ in 1..<max(repetitions, 1) {
                    result = try BPFSys.progTestRun(fd: p.fd, ctxIn: context, repeat: 0)
                    total += UInt64(result.duration)
                }
                result.duration = UInt32(clamping: total / UInt64(max(repetitions, 1)))
                return result
            } catch {
                throw .program(name: name, error)
            }
        }
    }

    /// Reads, writes and runs share the object; only `unload` excludes them, so a long test run
    /// never stalls a poller's read.
    func withLiveState<R>(_ body: () throws(LoaderError) -> R) throws(LoaderError) -> R { try withLive(body) }

    private func withLive<R>(_ body: () throws(LoaderError) -> R) throws(LoaderError) -> R {
        try state.shared { () throws(LoaderError) -> R in
            guard state.isLoadedUnlocked else { throw .unloaded }
            return try body()
        }
    }

    /// Releases every fd and mapping, and removes this load's pins. Idempotent.
    public func unload() { release(removingPins: true) }

    private func release(removingPins: Bool) {
        state.exclusive {
            guard state.isLoadedUnlocked else { return }
            state.isLoadedUnlocked = false
            if removingPins, let dir = pinDirectory { Pinning.removeLoadPins(directory: dir, maps: maps, programs: programs) }
            for p in programs { p.fd.close() }
            for m in maps {
                m.region?.unmap()
                m.fd.close()
            }
            btfFD?.close()
            for fd in moduleBTFFDs { fd.close() }
        }
    }

    /// Dropping the last reference closes what this process holds; a pinned load stays in the
    /// kernel for another process to adopt (only `unload()` removes pins).
    deinit { release(removingPins: false) }
}

/// A reader-writer lock around "still loaded": live accesses are readers, unload the writer.
final class LiveState: @unchecked Sendable {
    // @unchecked: `isLoadedUnlocked` is only touched under `lock` (read under shared, written
    // under exclusive); pthread_rwlock_t must not move, so it lives in its own allocation.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    var isLoadedUnlocked = true

    init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    var isLoaded: Bool { shared { isLoadedUnlocked } }

    func shared<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func exclusive<R>(_ body: () -> R) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body()
    }
}
