import BPFKernel
import BPFObject
import DepotStore
import Foundation

/// An object as clients see it: the stored record and what the ELF holds.
public struct ObjectView: Sendable {
    public let object: StoredObject
    public let spec: ObjectSpec

    public var json: JSONValue {
        let summary = spec.summaryJSON
        return .object([
            ("id", .string(object.id)),
            ("name", .string(object.name)),
            ("sha256", .string(object.id)),
            ("size", .int(Int64(object.size))),
            ("license", .string(spec.license)),
            ("currentRevision", .int(Int64(object.currentRevision))),
            ("created", .string(Timestamps.iso8601(object.created))),
            ("maps", summary["maps"] ?? .array([])),
            ("programs", summary["programs"] ?? .array([])),
            ("variables", summary["variables"] ?? .array([])),
        ])
    }
}

public struct VariableView: Sendable {
    public let spec: VariableSpec
    public let value: JSONValue

    public var json: JSONValue {
        .object([
            ("name", .string(spec.name)),
            ("section", .string(spec.section)),
            ("offset", .int(Int64(spec.offset))),
            ("size", .int(Int64(spec.size))),
            ("type", .string(spec.typeName)),
            ("value", value),
        ])
    }
}

public struct LoadView: Sendable {
    public let record: LoadRecord
    public let object: LoadedObject?

    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .int(record.id)),
            ("objectId", .string(record.objectID)),
            ("revision", .int(Int64(record.revision))),
            ("state", .string(record.state.rawValue)),
            ("created", .string(Timestamps.iso8601(record.created))),
        ]
        if let dir = record.pinDirectory { members.append(("pinDirectory", .string(dir))) }
        if let object {
            members.append(("maps", .array(object.maps.map { m in
                .object([("name", .string(m.spec.name)), ("type", .string(m.spec.type.name)), ("id", .uint(UInt64(m.id)))])
            })))
            members.append(("programs", .array(object.programs.map { p in
                .object([("name", .string(p.name)), ("id", .uint(UInt64(p.id)))])
            })))
            if let a = object.arenaAddress { members.append(("arenaAddress", .string("0x" + String(a, radix: 16)))) }
        }
        return .object(members)
    }
}

public enum Timestamps {
    public static func iso8601(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
