import BPFObject
import BPFTestSupport
import Testing

@Suite struct ArenaTests {
    @Test func arenaMapBindsTheAddrSpaceImage() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("arena"), name: "arena")
        let arenaIndex = try #require(spec.arenaMapIndex)
        let arena = spec.maps[arenaIndex]
        #expect(arena.name == "arena")
        #expect(arena.type == .arena)
        #expect(arena.type.rawValue == 33)
        #expect(arena.maxEntries == 100)
        #expect(arena.flags == BPFMapFlags.mmapable.rawValue)
        #expect(arena.mapExtra == 1 << 44)
        #expect(arena.keySize == 0 && arena.valueSize == 0)
        #expect(arena.initialValueSize == 68)
        let section = try #require(spec.dataSection(named: ".addr_space.1"))
        #expect(section.kind == .arena)
        #expect(section.mapIndex == arenaIndex)
        #expect(section.image.count == 68)
        #expect(Array(section.image[0..<4]) == [7, 0, 0, 0])
        #expect(Array(section.image[32..<43]) == Array("hello arena".utf8))
        // Zero and non-zero __arena globals side by side.
        let vars = spec.variables.filter { $0.sectionKind == .arena }.map { "\($0.name)@\($0.offset):\($0.size)" }
        #expect(vars == ["arena_counter@0:4", "arena_rec@8:24", "arena_msg@32:32", "arena_zero@64:4"])
        #expect(try spec.initialValue(of: #require(spec.variable(named: "arena_rec"))).text
                == #"{"id":3,"flags":16,"stamp":73588229205,"tag":"rec"}"#)
    }

    @Test func arenaRelocationsAndExterns() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("arena"), name: "arena")
        let prog = try #require(spec.program(named: "arena_run"))
        #expect(prog.type == .syscall)
        let arenaIndex = try #require(spec.arenaMapIndex)
        let kinds = prog.relocations.map(\.kind)
        // &arena (passed to bpf_arena_alloc_pages) is a map fd; __arena globals are arena values.
        #expect(kinds.contains(.mapFD(map: arenaIndex)))
        #expect(kinds.contains(.arenaValue(map: arenaIndex, offset: 0)))
        let ext = spec.externs.map { "\($0.name) \($0.kindName) \($0.weak)" }
        #expect(ext == [
            "CONFIG_NR_CPUS kconfig false",
            "LINUX_KERNEL_VERSION kconfig true",
            "bpf_arena_alloc_pages kfunc true",
            "bpf_arena_free_pages kfunc true",
            "bpf_prog_fops ksym_typeless true",
            "bpfdepot_no_such_kfunc kfunc true",
        ])
        let allocIndex = try #require(spec.externs.firstIndex { $0.name == "bpf_arena_alloc_pages" })
        #expect(kinds.contains(.externCall(extern: allocIndex)))
        let nrCPUs = try #require(spec.externs.firstIndex { $0.name == "CONFIG_NR_CPUS" })
        #expect(kinds.contains(.externLoad(extern: nrCPUs)))
        #expect(spec.externs[nrCPUs].kind == .kconfig(offset: 0, size: 4))
        // The .kconfig map: read-only for programs, mmapable, sized by the laid-out externs.
        let kconfig = try #require(spec.map(named: ".kconfig"))
        #expect(kconfig.name == "arena.kconfig")
        #expect(kconfig.flags == 0x480)
        #expect(kconfig.valueSize == 8)
        // .ksyms is laid out as libbpf shows it to the kernel: 4-byte slots, one dummy_ksym VAR.
        let btf = try #require(spec.btf)
        let ksyms = try #require(btf.find(named: ".ksyms", kind: .dataSection))
        guard case .dataSection(let size, let entries)? = btf.type(ksyms)?.kind else {
            Issue.record("no .ksyms DATASEC"); return
        }
        #expect(size == UInt32(entries.count * 4))
        #expect(entries.map(\.offset) == entries.indices.map { UInt32($0 * 4) })
        #expect(btf.find(named: "dummy_ksym", kind: .variable) != nil)
    }

    @Test func legacyArenaSectionNameIsAccepted() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("arena_legacy"), name: "arena_legacy")
        let arena = try #require(spec.arenaMapIndex.map { spec.maps[$0] })
        #expect(arena.name == "legacy_arena")
        #expect(arena.mapExtra == 1 << 45)
        #expect(arena.initialValueSize == 8)
        #expect(spec.dataSection(named: ".arena.1")?.image == [3, 0, 0, 0, 0, 0, 0, 0])
        #expect(spec.variables.filter { $0.section == ".arena.1" }.map(\.name) == ["arena_x", "arena_y"])
        #expect(spec.maps.map(\.name).contains("arena_le.bss"))
    }

    @Test(arguments: [
        ("bad_two_arenas", ObjectError.duplicateArena(first: "arena_one", second: "arena_two")),
        ("bad_arena_no_map", ObjectError.arenaDataWithoutArenaMap),
        ("bad_arena_too_small", ObjectError.arenaImageTooLarge(imageSize: 8192, arenaSize: 4096)),
        ("bad_unknown_map_field", ObjectError.mapDefinition(map: "odd_map", reason: "unknown field 'bogus_field'")),
    ])
    func libbpfOpenErrorsAreReported(fixture: String, expected: ObjectError) throws {
        let bytes = try Fixtures.bytes(fixture)
        #expect(throws: expected) { try ObjectSpec(elf: bytes, name: fixture) }
    }

    @Test func relaxedMapsIgnoreUnknownFields() throws {
        var options = ParseOptions()
        options.strictMaps = false
        let spec = try ObjectSpec(elf: Fixtures.bytes("bad_unknown_map_field"), name: "x", options: options)
        #expect(spec.map(named: "odd_map") != nil)
    }
}
