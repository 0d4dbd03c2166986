import BPFKernel
import BPFObject
import DepotStore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
            ("signer", object.signer.map { .string($0) } ?? .null),
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

    /// The text of `json`, written straight into `out`: the live routes send thousands of these
    /// per request, and building the tree first cost more than reading the values.
    public func appendJSON(to out: inout [UInt8]) {
        JSONValue.appendRaw(#"{"name":"#, to: &out)
        JSONValue.appendString(spec.name, to: &out)
        JSONValue.appendRaw(#","section":"#, to: &out)
        JSONValue.appendString(spec.section, to: &out)
        JSONValue.appendRaw(#","offset":"#, to: &out)
        JSONValue.int(Int64(spec.offset)).append(to: &out)
        JSONValue.appendRaw(#","size":"#, to: &out)
        JSONValue.int(Int64(spec.size)).append(to: &out)
        JSONValue.appendRaw(#","type":"#, to: &out)
        JSONValue.appendString(spec.typeName, to: &out)
        JSONValue.appendRaw(#","value":"#, to: &out)
        value.append(to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

/// The content hash of variables' indices and bytes: `LiveRead.contentHash`, also computed in
/// place (`Depot.liveContentHash`). Eight bytes at a time: each step (xor a word, multiply by an
/// odd constant, xor-shift) is a bijection of the running value for a given word, so values that
/// differ in any one word never hash alike.
public struct ContentHasher {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    private mutating func mix(_ word: UInt64) {
        var h = (value ^ word) &* 0x9e37_79b9_7f4a_7c15
        h ^= h >> 29
        value = h
    }

    public mutating func add(index: Int, _ bytes: UnsafeRawBufferPointer) {
        // The index and length first: the same bytes under another variable hash apart.
        mix(UInt64(truncatingIfNeeded: index) << 32 | UInt64(truncatingIfNeeded: bytes.count))
        var at = 0
        while at + 8 <= bytes.count {
            mix(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
            at += 8
        }
        if at < bytes.count {
            var tail: UInt64 = 0
            for i in at..<bytes.count { tail |= UInt64(bytes[i]) << (8 * UInt64(i - at)) }
            mix(tail)
        }
    }
}

/// One read of a load's live variables: `bytes[k]` is the memory of `spec.variables[indices[k]]`.
public struct LiveRead: Sendable {
    public let object: LoadedObject
    public let indices: [Int]
    public let bytes: [[UInt8]]

    /// `bytes[k]`: the bytes of `object.spec.variables[indices[k]]`.
    public init(object: LoadedObject, indices: [Int], bytes: [[UInt8]]) {
        self.object = object
        self.indices = indices
        self.bytes = bytes
    }

    /// `ContentHasher` over each variable's index and bytes. The values a read renders are a function of
    /// exactly these (the spec and its BTF are fixed for a load), so this tags the body for
    /// pollers without decoding anything.
    public var contentHash: UInt64 {
        var h = ContentHasher()
        for (i, b) in zip(indices, bytes) { b.withUnsafeBytes { h.add(index: i, $0) } }
        return h.value
    }

    /// The typed values, decoded through the object's BTF (null where a value cannot be rendered).
    public func views() -> [VariableView] {
        guard let btf = object.spec.btf else { return [] }
        let decoder = BTFValueDecoder(btf: btf)
        var out: [VariableView] = []
        out.reserveCapacity(indices.count)
        for (i, b) in zip(indices, bytes) {
            let v = object.spec.variables[i]
            out.append(VariableView(spec: v, value: (try? decoder.decode(v.btfTypeID, b[...])) ?? .null))
        }
        return out
    }
}

public struct LoadView: Sendable {
    public let record: LoadRecord
    public let object: LoadedObject?
    /// Links made with the load (POST .../loads with `links` or `attach`).
    public var links: [LinkView] = []

    public init(record: LoadRecord, object: LoadedObject?, links: [LinkView] = []) {
        self.record = record
        self.object = object
        self.links = links
    }

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
        if !links.isEmpty { members.append(("links", .array(links.map(\.json)))) }
        return .object(members)
    }
}

public enum Timestamps {
    /// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds). Formatted by hand: `Date.formatted(.iso8601)`
    /// goes through Foundation's ICU time zone and calendar, which brought megabytes of ICU into
    /// the service's resident memory for a timestamp.
    public static func iso8601(_ date: Date) -> String {
        var seconds = time_t((date.timeIntervalSince1970).rounded(.down))
        var t = tm()
        gmtime_r(&seconds, &t)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var year = String(t.tm_year + 1900)
        while year.utf8.count < 4 { year = "0" + year }
        return year + "-" + two(t.tm_mon + 1) + "-" + two(t.tm_mday) + "T" + two(t.tm_hour) + ":" + two(t.tm_min)
            + ":" + two(t.tm_sec) + "Z"
    }
}

/// A link's row, with the live link while it is attached.
public struct LinkView: Sendable {
    public let record: LinkRecord
    public let link: AttachedLink?
    /// Whether `json` asks the kernel about the link (BPF_OBJ_GET_INFO_BY_FD): one link's view
    /// does, a list does not.
    public let withKernelInfo: Bool

    public init(record: LinkRecord, link: AttachedLink?, withKernelInfo: Bool = false) {
        self.record = record
        self.link = link
        self.withKernelInfo = withKernelInfo
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .int(record.id)),
            ("load", .int(record.loadID)),
            ("program", .string(record.program)),
            ("type", .string(record.kind)),
            ("target", .string(record.target)),
            ("state", .string(record.state.rawValue)),
        ]
        if let id = record.kernelID { members.append(("kernelId", .uint(UInt64(id)))) }
        if let pin = record.pinPath { members.append(("pinPath", .string(pin))) }
        members.append(("request", (try? JSONValue(parsing: record.request)) ?? .object([])))
        members.append(("created", .string(Timestamps.iso8601(record.created))))
        members.append(("updated", .string(Timestamps.iso8601(record.updated))))
        if let link, !link.notes.isEmpty { members.append(("notes", .array(link.notes.map { .string($0) }))) }
        if withKernelInfo, let link, let info = try? link.info() {
            members.append(("kernel", .object([
                ("id", .uint(UInt64(info.id))),
                ("type", .uint(UInt64(info.type))),
                ("typeName", .string(info.typeName)),
                ("programId", .uint(UInt64(info.programID))),
                ("details", .object(info.details.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ])))
        }
        return .object(members)
    }
}
