import BPFKernel
import BPFObject
import DepotStore

/// A loaded program as the kernel describes it now: identity, verifier and JIT figures, and the
/// run statistics the kernel keeps while statistics are enabled (BPF_ENABLE_STATS).
public struct ProgramView: Sendable {
    public let name: String
    public let section: String
    public let type: String
    public let info: ProgramInfo

    public var json: JSONValue {
        .object([
            ("name", .string(name)),
            ("section", .string(section)),
            ("type", .string(type)),
            ("kernelId", .uint(UInt64(info.id))),
            ("tag", .string(info.tag.map(hex2).joined())),
            ("verifiedInstructions", .uint(UInt64(info.verifiedInstructions))),
            ("jitedBytes", .uint(UInt64(info.jitedProgramLength))),
            ("xlatedBytes", .uint(UInt64(info.xlatedProgramLength))),
            ("runCount", .uint(info.runCount)),
            ("runTimeNs", .uint(info.runTimeNs)),
            ("recursionMisses", .uint(info.recursionMisses)),
        ])
    }
}

/// One program's run statistics, for `GET /metrics`.
public struct ProgramSample: Sendable, Equatable {
    public let loadID: Int64
    public let program: String
    public let runCount: UInt64
    public let runTimeNs: UInt64
    public let recursionMisses: UInt64
}

extension Depot {
    /// The programs of a live load, each asked of the kernel now (BPF_OBJ_GET_INFO_BY_FD).
    public func programs(loadID: Int64) throws(DepotError) -> [ProgramView] {
        let obj = try loaded(loadID)
        var out: [ProgramView] = []
        for p in obj.programs {
            let info: ProgramInfo
            do { info = try BPFSys.objGetInfoByFD(programFD: p.fd) } catch {
                throw .load(.program(name: p.name, error))
            }
            let spec = obj.spec.programs.first { $0.name == p.name }
            out.append(ProgramView(name: p.name, section: spec?.sectionName ?? "", type: spec?.type.name ?? "", info: info))
        }
        return out
    }

    /// Run statistics of every program of every live load (a program the kernel cannot describe
    /// at this moment is left out).
    func programSamples() -> [ProgramSample] {
        let objects = live.withLock { $0 }
        var out: [ProgramSample] = []
        for (id, obj) in objects.sorted(by: { $0.key < $1.key }) {
            for p in obj.programs {
                guard let info = try? BPFSys.objGetInfoByFD(programFD: p.fd) else { continue }
                out.append(ProgramSample(loadID: id, program: p.name, runCount: info.runCount, runTimeNs: info.runTimeNs,
                                         recursionMisses: info.recursionMisses))
            }
        }
        return out
    }
}
