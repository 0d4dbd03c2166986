import BPFKernel
import BPFObject

/// What a real load of a revision would have made, from a load that was released at once.
public struct DryRunView: Sendable {
    public let objectID: String
    public let revision: Int
    public let programs: [(program: LoadedProgram, view: ProgramView)]
    public let maps: [LoadedMap]

    public var json: JSONValue {
        .object([
            ("dryRun", .bool(true)),
            ("object", .string(objectID)),
            ("revision", .int(Int64(revision))),
            ("programs", .array(programs.map { p in
                var m: [(String, JSONValue)] = []
                if case .object(let members) = p.view.json {
                    m = members.filter { !["runCount", "runTimeNs", "recursionMisses"].contains($0.0) }
                }
                m.append(("verifierTimeNs", .uint(p.program.loadNanoseconds)))
                return .object(m)
            })),
            ("maps", .array(maps.map { .object([("name", .string($0.spec.libbpfName)), ("type", .string($0.spec.type.name)),
                                                ("kernelId", .uint(UInt64($0.id)))]) })),
        ])
    }
}

extension Depot {
    /// The whole load of a revision (maps, BTF, relocations, the verifier) released at once:
    /// nothing is recorded and nothing stays in the kernel. Verifier rejections and every other
    /// load failure are thrown as a real load's would be. Counts against the concurrent-load
    /// limit and the arena budget while it runs.
    public func dryRunLoad(objectID: String, revision: Int?) throws(DepotError) -> DryRunView {
        let (spec, rev) = try spec(objectID, revision: revision)
        let arenaBytes = Self.arenaBytes(of: spec)
        try reserve(arenaBytes: arenaBytes)
        defer {
            budget.withLock {
                $0.loadsInProgress -= 1
                $0.arenaBytes -= arenaBytes
            }
        }
        let obj: LoadedObject
        do { obj = try Loader.load(spec) } catch { throw .load(error) }
        defer { obj.unload() }
        var programs: [(LoadedProgram, ProgramView)] = []
        for p in obj.programs {
            let info: ProgramInfo
            do { info = try BPFSys.objGetInfoByFD(programFD: p.fd) } catch { throw .load(.program(name: p.name, error)) }
            let ps = obj.spec.programs.first { $0.name == p.name }
            programs.append((p, ProgramView(name: p.name, section: ps?.sectionName ?? "", type: ps?.type.name ?? "", info: info)))
        }
        return DryRunView(objectID: objectID, revision: rev, programs: programs, maps: obj.maps)
    }
}
