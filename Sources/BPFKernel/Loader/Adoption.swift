import BPFObject
import Glibc

/// What a later process needs, beyond the pins, to take over a pinned load: where its arena was
/// mapped (the kernel fixes an arena's user range at its first mmap and refuses any other
/// address afterwards) and where the arena image starts, plus the kernel ids it had, so a pin
/// that was replaced by someone else's object is not mistaken for ours.
public struct AdoptionRecord: Sendable, Equatable {
    public var arenaAddress: UInt64?
    public var arenaDataOffset: UInt64
    /// Kernel ids by map name / program name, as they were at load time (empty: not checked).
    public var mapIDs: [String: UInt32]
    public var programIDs: [String: UInt32]

    public init(arenaAddress: UInt64?, arenaDataOffset: UInt64, mapIDs: [String: UInt32] = [:], programIDs: [String: UInt32] = [:]) {
        self.arenaAddress = arenaAddress
        self.arenaDataOffset = arenaDataOffset
        self.mapIDs = mapIDs
        self.programIDs = programIDs
    }
}

extension LoadedObject {
    /// The facts `Loader.adopt` needs to take this load over in another process.
    public var adoptionRecord: AdoptionRecord {
        AdoptionRecord(
            arenaAddress: arenaAddress, arenaDataOffset: arenaDataOffset,
            mapIDs: Dictionary(maps.map { ($0.spec.name, $0.id) }, uniquingKeysWith: { a, _ in a }),
            programIDs: Dictionary(programs.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a }))
    }
}

extension Loader {
    /// Takes over a load that another process (or an earlier run of this one) pinned under
    /// `pinDirectory`: every map and program is re-opened from its pin and checked against the
    /// spec (type, sizes, entries, and the recorded kernel id), the arena is mapped again at its
    /// old address, and mmapable global-data maps are mapped again. Nothing is created, written
    /// or pinned: the kernel objects, their values and the arena pages are the ones already
    /// there. `spec` must be the spec the load was made from (its images give the sizes).
    public static func adopt(_ spec: ObjectSpec, pinDirectory dir: String,
                             record: AdoptionRecord) throws(LoaderError) -> LoadedObject {
        var maps: [LoadedMap] = []
        var programs: [LoadedProgram] = []
        // On any failure, what was opened so far is closed (the pins stay: the caller decides).
        var done = false
        defer {
            if !done {
                for m in maps { m.region?.unmap(); m.fd.close() }
                for p in programs { p.fd.close() }
            }
        }
        for (i, m) in spec.maps.enumerated() {
            let path = Pinning.mapPath(dir, m.name)
            let fd: BPFFD
            do { fd = try BPFSys.objGet(path: path) } catch { throw .pin(path: path, reason: "cannot open the pinned map: \(error)") }
            let info: MapInfo
            do { info = try BPFSys.objGetInfoByFD(mapFD: fd) } catch {
                fd.close()
                throw .map(name: m.name, error)
            }
            if info.type != m.type.rawValue || info.keySize != m.keySize || info.valueSize != m.valueSize
                || info.maxEntries != m.maxEntries {
                fd.close()
                throw .pin(path: path, reason: "pinned map does not match map '\(m.name)' (type \(info.type), key \(info.keySize), value \(info.valueSize), entries \(info.maxEntries))")
            }
            if let want = record.mapIDs[m.name], want != 0, want != info.id {
                fd.close()
                throw .pin(path: path, reason: "pinned map has id \(info.id), the load had id \(want): the pin was replaced")
            }
            var region: MappedRegion?
            do {
                region = try remap(i, m, fd: fd, spec: spec, record: record)
            } catch {
                fd.close()
                throw error
            }
            maps.append(LoadedMap(spec: m, fd: fd, id: info.id, region: region))
        }
        for p in spec.programs where !p.isSubprogram && p.autoload {
            let path = Pinning.programPath(dir, p.name)
            let fd: BPFFD
            do { fd = try BPFSys.objGet(path: path) } catch { throw .pin(path: path, reason: "cannot open the pinned program: \(error)") }
            let info: ProgramInfo
            do { info = try BPFSys.objGetInfoByFD(programFD: fd) } catch {
                fd.close()
                throw .program(name: p.name, error)
            }
            if info.type != p.type.rawValue {
                fd.close()
                throw .pin(path: path, reason: "pinned program has type \(info.type), program '\(p.name)' has \(p.type.rawValue)")
            }
            if let want = record.programIDs[p.name], want != 0, want != info.id {
                fd.close()
                throw .pin(path: path, reason: "pinned program has id \(info.id), the load had id \(want): the pin was replaced")
            }
            programs.append(LoadedProgram(name: p.name, fd: fd, id: info.id))
        }
        done = true
        return LoadedObject(spec: spec, maps: maps, programs: programs, arenaDataOffset: record.arenaDataOffset,
                            pinDirectory: dir, btfFD: nil)
    }

    /// The arena at its recorded address (the kernel refuses any other), data maps wherever.
    private static func remap(_ index: Int, _ m: MapSpec, fd: BPFFD, spec: ObjectSpec,
                              record: AdoptionRecord) throws(LoaderError) -> MappedRegion? {
        if m.type == .arena {
            guard let address = record.arenaAddress ?? (m.mapExtra != 0 ? m.mapExtra : nil) else {
                throw .arena(map: m.name, reason: "the arena's address was not recorded, and the kernel accepts no other")
            }
            do {
                return try MappedRegion.mmap(fd: fd, length: MappedRegion.pageSize * Int(m.maxEntries),
                                             protection: .readWrite, at: address, fixedNoReplace: true)
            } catch {
                if case .addressRangeInUse(let a, let l) = error { throw .arenaAddressInUse(map: m.name, address: a, length: l) }
                throw .map(name: m.name, error)
            }
        }
        guard let ds = spec.dataSections.first(where: { $0.mapIndex == index }),
              m.flags & BPFConstants.MapFlag.mmapable != 0 else { return nil }
        let readOnly = m.flags & BPFConstants.MapFlag.rdonlyProg != 0
        do {
            return try MappedRegion.mmap(fd: fd, length: max((ds.image.count + 7) / 8 * 8, 1),
                                         protection: readOnly ? .read : .readWrite)
        } catch {
            throw .map(name: m.name, error)
        }
    }
}
