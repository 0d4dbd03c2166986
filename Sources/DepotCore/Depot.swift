import BPFKernel
import BPFObject
import Crypto
import DepotStore
import Foundation
import Synchronization

/// The service's operations: objects in the store, typed patches as new image revisions, loads
/// into the kernel, live variables of loads. No HTTP and no SQL here: the store and the loader
/// do the work; this type keeps the loaded objects and the parsed specs.
public final class Depot: Sendable {
    public let store: DepotStore
    let pinRoot: String?
    public let limits: DepotLimits
    private let specs = Mutex(SpecCache())
    let live = Mutex<[Int64: LoadedObject]>([:])
    /// Attached links by link row id, with the load each belongs to.
    let liveLinks = Mutex<[Int64: (loadID: Int64, link: AttachedLink)]>([:])
    public let metrics: DepotMetrics
    /// Loads in progress and arena bytes held by live loads, against `limits`.
    let budget = Mutex(LoadBudget())
    /// Audit rows written by this process (every 1,000th prunes old ones).
    let auditRows = Atomic<Int>(0)

    /// The pin root the service was asked for (`serve --pin-root`), whether or not it could be
    /// prepared: `systemReport()` shows it beside whether loads are pinned.
    let requestedPinRoot: String?

    /// `pinRoot`: when set, every load is pinned under `<pinRoot>/<load id>`, and `recover()`
    /// takes pinned loads over after a restart. `requestedPinRoot`: the pin root asked for when
    /// it could not be prepared (so `pinRoot` is nil); by default `pinRoot`.
    /// With keys, every upload must carry a signature by one of them (`upload(elf:name:signature:)`).
    public let trustedKeys: TrustedKeys?

    public init(store: DepotStore, pinRoot: String? = nil, limits: DepotLimits = DepotLimits(),
                metrics: DepotMetrics = DepotMetrics(), requestedPinRoot: String? = nil, trustedKeys: TrustedKeys? = nil) {
        self.store = store
        self.trustedKeys = trustedKeys
        self.pinRoot = pinRoot
        self.requestedPinRoot = requestedPinRoot ?? pinRoot
        self.limits = limits
        self.metrics = metrics
    }

    // MARK: objects

    /// Parses and stores an object; the same bytes again return the existing one. With trusted
    /// keys, `signature` (Ed25519 over the SHA-256 of `elf`) must be by one of them, checked
    /// before anything is parsed or stored; its key's name is kept with a new object.
    public func upload(elf: [UInt8], name: String?, signature: [UInt8]? = nil) throws(DepotError) -> (ObjectView, created: Bool) {
        var signer: String?
        if let trustedKeys {
            guard let signature else { throw .signatureRequired }
            let digest = Array(SHA256.hash(data: elf))
            guard let name = trustedKeys.signer(of: digest, signature: signature) else {
                throw .badSignature("the signature is not over this object's SHA-256 by any trusted key")
            }
            signer = name
        }
        let objectName = name.flatMap { $0.isEmpty ? nil : $0 } ?? "object"
        let spec: ObjectSpec
        do { spec = try ObjectSpec(elf: elf, name: ObjectSpec.objectName(forPath: objectName)) } catch {
            throw .invalidObject(error)
        }
        let (stored, created) = try storeCall { () throws(StoreError) in
            try store.putObject(elf: elf, name: objectName, spec: spec, signer: signer)
        }
        if created {
            specs.withLock { $0.put(stored.id, Self.withoutImages(spec)) }
            metrics.objectsChanged()
        }
        return (ObjectView(object: stored, spec: try self.spec(stored.id)), created)
    }

    public func objects(limit: Int, after: String?) throws(DepotError) -> [ObjectView] {
        let list = try storeCall { () throws(StoreError) in try store.objects(limit: limit, afterID: after) }
        var out: [ObjectView] = []
        for o in list { out.append(ObjectView(object: o, spec: try spec(o.id))) }
        return out
    }

    public func object(id: String) throws(DepotError) -> ObjectView {
        let o = try storeCall { () throws(StoreError) in try store.object(id: id) }
        return ObjectView(object: o, spec: try spec(id))
    }

    public func elf(id: String) throws(DepotError) -> [UInt8] {
        try storeCall { () throws(StoreError) in try store.elf(objectID: id) }
    }

    public func deleteObject(id: String) throws(DepotError) {
        try storeCall { () throws(StoreError) in try store.deleteObject(id: id) }
        specs.withLock { $0.remove(id) }
        metrics.objectsChanged()
    }

    /// The parsed spec of a stored object (parsed once per process), without section images.
    func spec(_ id: String) throws(DepotError) -> ObjectSpec {
        if let s = specs.withLock({ $0.get(id) }) { return s }
        let elf = try storeCall { () throws(StoreError) in try store.elf(objectID: id) }
        let o = try storeCall { () throws(StoreError) in try store.object(id: id) }
        let spec: ObjectSpec
        do { spec = try ObjectSpec(elf: elf, name: ObjectSpec.objectName(forPath: o.name)) } catch { throw .invalidObject(error) }
        let kept = Self.withoutImages(spec)
        specs.withLock { $0.put(id, kept) }
        return kept
    }

    /// What the spec cache keeps: the spec without its section images. Every use of images goes
    /// through `spec(_:revision:)`, which puts the revision's images (every revision has all of
    /// revision 1's sections) in place; holding the ELF's own images as well
    /// cost each object's image size for the life of the process (bench/FINDINGS.md: 235 MiB of
    /// anonymous memory after eight 16 MiB uploads).
    static func withoutImages(_ spec: ObjectSpec) -> ObjectSpec {
        var s = spec
        for i in s.dataSections.indices { s.dataSections[i].image = [] }
        return s
    }

    /// The spec with a revision's images in place (with `sections`, only those sections'; the
    /// others stay empty).
    func spec(_ id: String, revision: Int?, sections: Set<String>? = nil) throws(DepotError) -> (ObjectSpec, revision: Int) {
        var spec = try self.spec(id)
        let rev: Int
        if let revision { rev = revision } else {
            rev = try storeCall { () throws(StoreError) in try store.object(id: id) }.currentRevision
        }
        let images = try storeCall { () throws(StoreError) in
            try store.images(objectID: id, revision: rev, sections: sections)
        }
        for image in images {
            if let i = spec.dataSections.firstIndex(where: { $0.name == image.name }) { spec.dataSections[i].image = image.bytes }
        }
        return (spec, rev)
    }

    // MARK: variables and images

    public func variables(objectID: String, revision: Int?, names: [String]? = nil) throws(DepotError) -> (values: [VariableView], revision: Int) {
        var sections: Set<String>?
        if let names {
            let layout = try spec(objectID)
            var index: [String: String] = [:]
            for v in layout.variables where index[v.name] == nil { index[v.name] = v.section }
            sections = Set(names.compactMap { index[$0] })
        }
        let (spec, rev) = try spec(objectID, revision: revision, sections: sections)
        var wanted = spec.variables
        if let names {
            // By name through one index: a linear search per name is O(n²) for many names.
            var index: [String: Int] = [:]
            index.reserveCapacity(spec.variables.count)
            for (i, v) in spec.variables.enumerated() where index[v.name] == nil { index[v.name] = i }
            wanted = []
            for n in names {
                guard let i = index[n] else { throw .unknownVariable(name: n, objectID: objectID) }
                wanted.append(spec.variables[i])
            }
        }
        return (wanted.map { VariableView(spec: $0, value: (try? spec.initialValue(of: $0)) ?? .null) }, rev)
    }

    /// Encodes every named value through BTF into one new revision; all or nothing.
    public func patch(objectID: String, values: [(String, JSONValue)], expectedRevision: Int?) throws(DepotError) -> (ObjectView, revision: Int) {
        guard !values.isEmpty else { throw .emptyPatch }
        // Only the sections holding the named variables are read (a 4-byte .data variable of an
        // object with a 16 MiB .rodata reads 12 bytes, not 16 MiB); the store keeps the rest.
        let layout = try spec(objectID)
        var touched = Set<String>()
        for (name, _) in values {
            guard let variable = layout.variable(named: name) else { throw .unknownVariable(name: name, objectID: objectID) }
            touched.insert(variable.section)
        }
        var (spec, rev) = try spec(objectID, revision: nil, sections: touched)
        if let expectedRevision, expectedRevision != rev {
            throw .store(.revisionConflict(objectID: objectID, expected: expectedRevision, current: rev))
        }
        let before = spec.dataSections
        for (name, value) in values {
            do { try spec.patch(variable: name, with: value) } catch { throw .badValue(error) }
        }
        let changed = zip(before, spec.dataSections).filter { $0.image != $1.image }.map(\.0.name)
        let change = JSONValue.object([
            ("variables", .object(values)),
            ("sections", .array(changed.map { .string($0) })),
        ]).text
        let newRev = try storeCall { () throws(StoreError) in
            try store.addRevision(objectID: objectID,
                                  changing: spec.dataSections.filter { changed.contains($0.name) }.map(SectionImage.init),
                                  change: change, expectedCurrent: rev)
        }
        return (try object(id: objectID), newRev)
    }

    public func image(objectID: String, section: String, revision: Int?) throws(DepotError) -> (bytes: [UInt8], revision: Int) {
        let (spec, rev) = try spec(objectID, revision: revision, sections: [section])
        guard let ds = spec.dataSection(named: section) else { throw .unknownSection(name: section, objectID: objectID) }
        return (ds.image, rev)
    }

    /// Raw bytes at an offset of one section image → a new revision.
    public func writeImage(objectID: String, section: String, offset: Int, bytes: [UInt8], expectedRevision: Int?) throws(DepotError) -> Int {
        let (spec, rev) = try spec(objectID, revision: nil, sections: [section])
        if let expectedRevision, expectedRevision != rev {
            throw .store(.revisionConflict(objectID: objectID, expected: expectedRevision, current: rev))
        }
        guard let i = spec.dataSections.firstIndex(where: { $0.name == section }) else {
            throw .unknownSection(name: section, objectID: objectID)
        }
        var sections = spec.dataSections
        let size = sections[i].image.count
        guard offset >= 0, bytes.count <= size, offset <= size - bytes.count else {
            throw .imageWriteOutOfBounds(section: section, offset: offset, length: bytes.count, size: size)
        }
        sections[i].image.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        let change = JSONValue.object([("section", .string(section)), ("offset", .int(Int64(offset))), ("length", .int(Int64(bytes.count)))]).text
        return try storeCall { () throws(StoreError) in
            try store.addRevision(objectID: objectID, changing: [SectionImage(sections[i])], change: change,
                                  expectedCurrent: rev)
        }
    }

    public func revisions(objectID: String) throws(DepotError) -> [ImageRevision] {
        try storeCall { () throws(StoreError) in try store.revisions(objectID: objectID) }
    }

    // MARK: loads

    /// `links`: attached before the load is `loaded`, all or nothing: if one fails, the others
    /// are detached, the object unloaded and the load left `failed`, and the error is the
    /// failed attach's. `attachAll`: every program whose section names a complete hook.
    public func load(objectID: String, revision: Int?, links: [LinkRequest] = [], attachAll: Bool = false) throws(DepotError) -> LoadView {
        let (spec, rev) = try spec(objectID, revision: revision)
        let arenaBytes = Self.arenaBytes(of: spec)
        try reserve(arenaBytes: arenaBytes)
        var keepArenaReservation = false
        defer {
            budget.withLock {
                $0.loadsInProgress -= 1
                if !keepArenaReservation { $0.arenaBytes -= arenaBytes }
            }
        }
        // The row comes first (state failed) so the pin directory can carry its id; it becomes
        // `loaded` only after the pins exist. A crash in between leaves pins under a row that is
        // not `loaded`, which `recover()` removes at the next start.
        let record = try storeCall { () throws(StoreError) in try store.createLoad(objectID: objectID, revision: rev, state: .failed) }
        var options = LoadOptions()
        let pinDirectory = pinRoot.map { "\($0)/\(record.id)" }
        options.pinDirectory = pinDirectory
        let obj: LoadedObject
        let started = ContinuousClock.now
        do { obj = try Loader.load(spec, options: options) } catch {
            metrics.loadFailed(error, since: started)
            throw .load(error)
        }
        metrics.loadSucceeded(since: started)
        var attached: [LinkView] = []
        if !links.isEmpty || attachAll {
            do {
                attached = try self.attachAll(obj, loadID: record.id, pinDirectory: pinDirectory, requests: links, all: attachAll)
            } catch {
                if let pinDirectory { PinRoot.removeLinks(directory: pinDirectory) }
                obj.unload()
                throw error
            }
        }
        let updated: LoadRecord
        do {
            updated = try store.updateLoad(id: record.id, state: .loaded, kernelIDs: Self.kernelIDs(of: obj), pinDirectory: pinDirectory)
        } catch {
            for view in attached { try? detach(linkID: view.record.id) }
            if let pinDirectory { PinRoot.removeLinks(directory: pinDirectory) }
            obj.unload()
            throw .store(error)
        }
        live.withLock { $0[record.id] = obj }
        keepArenaReservation = true
        return LoadView(record: updated, object: obj, links: attached)
    }

    /// The row's kernel ids: what the API shows and what `recover()` checks pins against.
    static func kernelIDs(of obj: LoadedObject) -> String {
        var members: [(String, JSONValue)] = [
            ("maps", .object(obj.maps.map { ($0.spec.name, .uint(UInt64($0.id))) })),
            ("programs", .object(obj.programs.map { ($0.name, .uint(UInt64($0.id))) })),
        ]
        if let address = obj.arenaAddress {
            members.append(("arena", .object([("address", .uint(address)), ("dataOffset", .uint(obj.arenaDataOffset))])))
        }
        return JSONValue.object(members).text
    }

    /// Arena memory an object asks for (its arena's pages, mapped whether used or not).
    static func arenaBytes(of spec: ObjectSpec) -> UInt64 {
        spec.maps.filter { $0.type == .arena }.reduce(0) { $0 + UInt64($1.maxEntries) * UInt64(MappedRegion.pageSize) }
    }

    /// Counts one more load in progress and `arenaBytes` more arena memory, or refuses.
    func reserve(arenaBytes: UInt64) throws(DepotError) {
        let refusal: DepotError? = budget.withLock { b in
            if b.loadsInProgress >= limits.maxConcurrentLoads { return .busy(what: "loads in progress", limit: limits.maxConcurrentLoads) }
            if arenaBytes > limits.maxArenaBytes {
                return .arenaTooLarge(requested: arenaBytes, limit: limits.maxArenaBytes)
            }
            if b.arenaBytes + arenaBytes > limits.maxArenaBytes {
                return .arenaBudgetExhausted(requested: arenaBytes, inUse: b.arenaBytes, limit: limits.maxArenaBytes)
            }
            b.loadsInProgress += 1
            b.arenaBytes += arenaBytes
            return nil
        }
        if let refusal { throw refusal }
    }

    public func loads(limit: Int, after: Int64?) throws(DepotError) -> [LoadView] {
        let records = try storeCall { () throws(StoreError) in try store.loads(limit: limit, afterID: after) }
        let objects = live.withLock { $0 }
        return records.map { LoadView(record: $0, object: objects[$0.id]) }
    }

    public func loadInfo(id: Int64) throws(DepotError) -> LoadView {
        let record = try storeCall { () throws(StoreError) in try store.load(id: id) }
        return LoadView(record: record, object: live.withLock { $0[id] })
    }

    /// The row says `unloaded` before the kernel objects go: a crash in between leaves pins
    /// under a row that is not `loaded`, which `recover()` removes at the next start.
    /// Its links are detached first (rows, then the kernel).
    public func unload(id: Int64) throws(DepotError) {
        let record = try storeCall { () throws(StoreError) in try store.load(id: id) }
        try detachLinks(loadID: id, pinDirectory: record.pinDirectory)
        try storeCall { () throws(StoreError) in _ = try store.updateLoad(id: id, state: .unloaded) }
        let obj = live.withLock { $0.removeValue(forKey: id) }
        // A link attached while this unload ran (its attach saw the load still live) goes too.
        if liveLinks.withLock({ $0.values.contains { $0.loadID == id } }) {
            try? detachLinks(loadID: id, pinDirectory: record.pinDirectory)
        }
        if let obj {
            obj.unload()
            let bytes = Self.arenaBytes(of: obj.spec)
            budget.withLock { $0.arenaBytes -= min(bytes, $0.arenaBytes) }
        }
    }

    /// The live object of a load: cheap, no store access (for pollers).
    public func loaded(_ id: Int64) throws(DepotError) -> LoadedObject {
        guard let obj = live.withLock({ $0[id] }) else {
            // Only on a miss: a load that never existed is 404, not "not loaded" (409).
            _ = try storeCall { () throws(StoreError) in try store.load(id: id) }
            throw .loadNotActive(id: id)
        }
        return obj
    }

    /// Live typed values of a load's variables, read straight from mapped memory.
    public func liveVariables(loadID: Int64, names: [String]?) throws(DepotError) -> [VariableView] {
        try readLive(loadID: loadID, names: names).views()
    }

    /// The current bytes of a load's variables (all, or `names` in that order), read once: a
    /// poller's tag (`contentHash`) and the body (`views()`) both come from this one read, and
    /// an unchanged poll needs no decoding at all.
    public func readLive(loadID: Int64, names: [String]?) throws(DepotError) -> LiveRead {
        let (obj, indices) = try liveIndices(loadID: loadID, names: names)
        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(indices.count)
        do { try obj.withBytes(variablesAt: indices) { _, b in bytes.append(Array(b)) } } catch { throw .load(error) }
        return LiveRead(object: obj, indices: indices, bytes: bytes)
    }

    /// The load's object and the indices of the variables `names` (all when nil); none
    /// without BTF, where variables come from (a name was refused before that).
    private func liveIndices(loadID: Int64, names: [String]?) throws(DepotError) -> (LoadedObject, [Int]) {
        let obj = try loaded(loadID)
        var indices: [Int] = []
        if let names {
            indices.reserveCapacity(names.count)
            for n in names {
                guard let i = obj.variableIndex(named: n) else { throw .unknownVariable(name: n, objectID: obj.spec.name) }
                indices.append(i)
            }
        } else {
            indices = Array(obj.spec.variables.indices)
        }
        return (obj, obj.spec.btf != nil ? indices : [])
    }

    /// `readLive(loadID:names:)`'s `contentHash` and object, hashed in place in mapped memory
    /// (nothing copied): a poller's unchanged read is recognised without reading.
    public func liveContentHash(loadID: Int64, names: [String]?) throws(DepotError) -> (LoadedObject, UInt64) {
        let (obj, indices) = try liveIndices(loadID: loadID, names: names)
        var h = ContentHasher()
        do { try obj.withBytes(variablesAt: indices) { h.add(index: $0, $1) } } catch { throw .load(error) }
        return (obj, h.value)
    }

    /// Runs `body` with a live load's object, the index of its variable `name` and that
    /// variable's current bytes, read in place (see `LoadedObject.withBytes(variableAt:_:)`):
    /// a poller's read that finds the bytes it already rendered copies nothing.
    public func withLiveBytes<R>(loadID: Int64, name: String,
                                 _ body: (LoadedObject, Int, UnsafeRawBufferPointer) -> R) throws(DepotError) -> R {
        let obj = try loaded(loadID)
        guard let i = obj.variableIndex(named: name) else { throw .unknownVariable(name: name, objectID: obj.spec.name) }
        guard obj.spec.btf != nil else { throw .unknownVariable(name: name, objectID: obj.spec.name) }
        do { return try obj.withBytes(variableAt: i) { body(obj, i, $0) } } catch { throw .load(error) }
    }

    /// Writes typed values into a live load (all are encoded before any is written).
    public func writeLive(loadID: Int64, values: [(String, JSONValue)]) throws(DepotError) -> [VariableView] {
        guard !values.isEmpty else { throw .emptyPatch }
        let obj = try loaded(loadID)
        guard let btf = obj.spec.btf else { throw .liveValue(name: values[0].0, reason: "object has no BTF") }
        var writes: [(String, [UInt8])] = []
        for (name, value) in values {
            guard let v = obj.variable(named: name) else { throw .unknownVariable(name: name, objectID: obj.spec.name) }
            if v.sectionKind == .rodata || v.sectionKind == .kconfig { throw .readOnlyVariable(name: name, section: v.section) }
            var bytes: [UInt8]
            do { bytes = try obj.read(variable: name) } catch { throw .load(error) }
            do {
                try BTFValueEncoder(btf: btf).encode(value, as: v.btfTypeID, into: &bytes, at: 0, path: name)
            } catch {
                throw .badValue(.encode(error))
            }
            writes.append((name, bytes))
        }
        for (name, bytes) in writes {
            do { try obj.write(variable: name, bytes: bytes) } catch { throw .load(error) }
        }
        return try liveVariables(loadID: loadID, names: values.map(\.0))
    }

    public func run(loadID: Int64, program: String, data: [UInt8], context: [UInt8], repeat repetitions: UInt32) throws(DepotError) -> ProgramTestRunResult {
        let obj = try loaded(loadID)
        guard obj.program(named: program) != nil else { throw .unknownProgram(name: program, loadID: loadID) }
        // The kernel cannot repeat syscall programs itself: each repeat is a bpf() call here.
        if obj.spec.program(named: program)?.type == .syscall, repetitions > Depot.maxSyscallRepeat {
            throw .liveValue(name: program, reason: "syscall programs run at most \(Depot.maxSyscallRepeat) times per request, \(repetitions) asked")
        }
        do {
            return try obj.run(program: program, data: data, context: context, contextOutSize: context.count, repeat: repetitions)
        } catch {
            throw .load(error)
        }
    }

    public static let maxSyscallRepeat: UInt32 = 10_000

    func storeCall<R>(_ body: () throws(StoreError) -> R) throws(DepotError) -> R {
        do { return try body() } catch { throw .store(error) }
    }
}
