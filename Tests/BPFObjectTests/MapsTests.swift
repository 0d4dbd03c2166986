import BPFObject
import BPFTestSupport
import Testing

@Suite struct MapsTests {
    let spec: ObjectSpec

    init() throws {
        spec = try ObjectSpec(elf: Fixtures.bytes("maps"), name: "maps")
    }

    @Test func btfDefinedMapsOfManyKinds() {
        let rows = spec.maps.map { "\($0.name) \($0.type.name) k\($0.keySize) v\($0.valueSize) n\($0.maxEntries) f\($0.flags)" }
        #expect(rows == [
            "inner_one array k4 v4 n1 f0",
            "inner_two array k4 v4 n1 f0",
            "outer_arr array_of_maps k4 v4 n4 f0",
            "outer_hash hash_of_maps k4 v4 n8 f0",
            "jmp_table prog_array k4 v4 n4 f0",
            "stats_hash hash k4 v24 n128 f0",
            "sized_array array k4 v8 n16 f0",
            "lru_cache lru_hash k8 v4 n64 f2",
            "pcpu_counts percpu_array k4 v8 n4 f0",
            "pinned_hash hash k4 v8 n8 f0",
            "numa_array array k4 v4 n2 f4",
            "events ringbuf k0 v0 n16384 f0",
            "maps.bss array k4 v24 n1 f1024",
        ])
        #expect(spec.map(named: "pinned_hash")?.pinning == .byName)
        #expect(spec.map(named: "stats_hash")?.pinning == MapPinning.none)
    }

    @Test func keyAndValueTypesComeFromBTF() throws {
        let btf = try #require(spec.btf)
        let stats = try #require(spec.map(named: "stats_hash"))
        #expect(btf.typeName(stats.btfKeyTypeID) == "__u32")
        #expect(try btf.resolveSize(stats.btfValueTypeID) == 24)
        // Sizes given as numbers: no BTF types.
        let sized = try #require(spec.map(named: "sized_array"))
        #expect(sized.btfKeyTypeID == 0 && sized.btfValueTypeID == 0)
    }

    @Test func mapInMapAndProgArraySlots() throws {
        let outer = try #require(spec.map(named: "outer_arr"))
        let inner = try #require(outer.innerMap)
        #expect(inner.name == "outer_arr.inner")
        #expect(inner.type == .array && inner.keySize == 4 && inner.valueSize == 4 && inner.maxEntries == 1)
        let one = try #require(spec.maps.firstIndex { $0.name == "inner_one" })
        let two = try #require(spec.maps.firstIndex { $0.name == "inner_two" })
        #expect(outer.initialSlots == [0: .map(index: one), 3: .map(index: two)])
        #expect(spec.map(named: "outer_hash")?.initialSlots == [1: .map(index: two)])
        #expect(spec.map(named: "jmp_table")?.initialSlots == [0: .program(name: "tail_a"), 2: .program(name: "tail_b")])
    }

    @Test func programsWithAttachTypesAndCORE() throws {
        let rows = spec.entryPrograms.map { "\($0.name) \($0.type.name) \($0.shownAttachType?.name ?? "-") \($0.attachTarget ?? "-") \($0.instructions.count)" }
        #expect(rows == [
            "tail_a socket_filter - - 7",
            "tail_b socket_filter - - 7",
            "dispatch socket_filter - - 149",
            "on_switch tracing trace_raw_tp sched_switch 19",
            "dump_task tracing trace_iter task 18",
        ])
        let onSwitch = try #require(spec.program(named: "on_switch"))
        #expect(onSwitch.coreRelocations.count == 3)
        #expect(onSwitch.needsAttachBTF)
        #expect(try #require(spec.program(named: "dump_task")).coreRelocations.count == 4)
        // CO-RE records name instructions inside their program, with an access string in BTF.
        let btf = try #require(spec.btf)
        for r in onSwitch.coreRelocations {
            #expect(Int(r.instructionOffset / 8) < onSwitch.instructions.count)
            #expect(btf.string(at: r.accessStringOffset).hasPrefix("0:"))
        }
        // dispatch reads several maps through map-fd relocations.
        let dispatch = try #require(spec.program(named: "dispatch"))
        let jmp = try #require(spec.maps.firstIndex { $0.name == "jmp_table" })
        #expect(dispatch.relocations.map(\.kind).contains(.mapFD(map: jmp)))
    }

    @Test func summaryJSONHasExactlyTheDocumentedShape() throws {
        let json = spec.summaryJSON
        guard case .object(let top) = json else { Issue.record("not an object"); return }
        #expect(top.map(\.0) == ["name", "license", "maps", "programs", "variables", "externs"])
        guard case .object(let map)? = json["maps"]?[0] else { Issue.record("no map"); return }
        #expect(map.map(\.0) == ["name", "kernelName", "type", "keySize", "valueSize", "maxEntries", "flags", "mapExtra", "section", "initialValueSize"])
        guard case .object(let prog)? = json["programs"]?[3] else { Issue.record("no program"); return }
        #expect(prog.map(\.0) == ["name", "section", "type", "attachType", "instructions", "autoload"])
        #expect(json["programs"]?[3]?["attachType"] == .string("trace_raw_tp"))
        #expect(json["programs"]?[0]?["attachType"] == JSONValue.null)
    }
}
