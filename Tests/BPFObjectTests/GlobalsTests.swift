import BPFObject
import BPFTestSupport
import Testing

/// Facts about `Tests/Fixtures/globals.bpf.c`: every data-section kind, several programs in one
/// section, static/global subprograms, a callback.
@Suite struct GlobalsTests {
    let spec: ObjectSpec

    init() throws {
        spec = try ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals")
    }

    @Test func internalMapsHaveLibbpfNamesFlagsAndSizes() throws {
        let rows = spec.maps.map { "\($0.name) \($0.type.name) \($0.keySize) \($0.valueSize) \($0.maxEntries) 0x\(String($0.flags, radix: 16)) \($0.initialValueSize)" }
        #expect(rows == [
            "globals.data array 4 72 1 0x400 72",
            "globals.rodata array 4 25 1 0x480 25",
            ".data.custom array 4 4 1 0x400 4",
            ".rodata.cfg array 4 4 1 0x480 4",
            "globals.bss array 4 40 1 0x400 40",
            ".bss.extra array 4 4 1 0x400 4",
        ])
        // The DATASEC is the value type, no key type (the kernel allows that only for such maps).
        let data = try #require(spec.map(named: ".data"))
        #expect(data.btfKeyTypeID == 0)
        #expect(spec.btf?.name(of: data.btfValueTypeID) == ".data")
    }

    @Test func variablesHaveOffsetsSizesAndTypes() {
        let rows = spec.variables.map { "\($0.section)@\($0.offset) \($0.name) \($0.size) \($0.typeName)\($0.isStatic ? " static" : "")" }
        #expect(rows == [
            ".data@0 data_int 4 int",
            ".data@4 data_str 16 char[16]",
            ".data@20 data_point 20 struct gl_point",
            ".data@40 data_flag 1 _Bool",
            ".data@44 data_color 4 enum gl_color",
            ".data@48 data_bits 4 struct gl_bits",
            ".data@56 data_word 8 union gl_word",
            ".data@64 hidden_global 4 int static",
            ".data@68 hidden_counter 4 int static",
            ".rodata@0 ro_u32 4 const volatile __u32",
            ".rodata@8 ro_s64 8 const volatile __s64",
            ".rodata@16 ro_flag 1 const volatile _Bool",
            ".rodata@17 ro_name 8 const volatile char[8]",
            ".data.custom@0 custom_val 4 int",
            ".rodata.cfg@0 cfg_limit 4 const volatile int",
            ".bss@0 bss_int 4 int",
            ".bss@8 bss_arr 32 __u64[4]",
            ".bss.extra@0 extra_zero 4 int",
        ])
    }

    @Test func imagesHoldTheCInitialisers() throws {
        let data = try #require(spec.dataSection(named: ".data")).image
        #expect(Array(data[0..<4]) == [0xd2, 0x04, 0, 0])                      // data_int = 1234
        #expect(Array(data[4..<17]) == Array("bpfdepot-data".utf8))
        #expect(Array(data[48..<52]) == [0x9d, 0xef, 0xcd, 0xab])              // bitfields a=5 b=19 c=0xABCDEF
        #expect(Array(data[56..<64]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        let bss = try #require(spec.dataSection(named: ".bss"))
        #expect(bss.image == [UInt8](repeating: 0, count: 40))
        #expect(bss.kind == .bss)
        let rodata = try #require(spec.dataSection(named: ".rodata")).image
        #expect(Array(rodata[0..<4]) == [0xef, 0xbe, 0xad, 0xde])
    }

    @Test func initialValuesDecodeThroughBTF() throws {
        func value(_ name: String) throws -> String {
            try spec.initialValue(of: #require(spec.variable(named: name))).text
        }
        #expect(try value("data_int") == "1234")
        #expect(try value("data_str") == "\"bpfdepot-data\"")
        #expect(try value("data_point") == #"{"x":-5,"y":17,"grid":[[1,2,3],[4,5,6]]}"#)
        #expect(try value("data_flag") == "true")
        #expect(try value("data_color") == "\"GL_BLUE\"")
        #expect(try value("data_bits") == #"{"a":5,"b":19,"c":11259375}"#)
        #expect(try value("ro_s64") == "-42")
        #expect(try value("ro_u32") == "3735928559")
        #expect(try value("ro_name") == "\"ro-name\"")
        #expect(try value("bss_arr") == "[0,0,0,0]")
    }

    @Test func programsAreOrderedWithTypesAndAutoload() {
        let rows = spec.programs.map { p in
            "\(p.name) \(p.sectionName) \(p.isSubprogram ? "sub" : p.type.name) \(p.instructions.count) \(p.autoload)"
        }
        #expect(rows == [
            "global_sub .text sub 10 true",
            "loop_cb .text sub 16 true",
            "static_sub .text sub 7 true",
            "sys_first syscall syscall 46 true",
            "sys_second syscall syscall 33 true",
            "xdp_prog xdp xdp 15 true",
            "tc_prog tc sched_cls 20 true",
            "tp_getpid tp/syscalls/sys_enter_getpid tracepoint 12 false",
        ])
        #expect(spec.program(named: "sys_first")?.flags == BPFProgramFlags.sleepable.rawValue)
        #expect(spec.program(named: "global_sub")?.isGlobalFunction == true)
        #expect(spec.program(named: "static_sub")?.isGlobalFunction == false)
        #expect(spec.license == "GPL")
    }

    @Test func relocationsPointAtTheirTargets() throws {
        let first = try #require(spec.program(named: "sys_first"))
        let byInsn = Dictionary(first.relocations.map { ($0.instruction, $0.kind) }, uniquingKeysWith: { a, _ in a })
        // bpf_loop callback: ld_imm64 of .text+80 → loop_cb (instruction 10 of .text).
        #expect(byInsn[6] == .subprogramAddress(target: 10))
        // static_sub via the .text section symbol, global_sub via its own symbol.
        #expect(byInsn[14] == .call(target: 26))
        #expect(byInsn[17] == .call(target: 0))
        let second = try #require(spec.program(named: "sys_second"))
        #expect(second.relocations.contains { $0.instruction == 71 - 46 && $0.kind == .call(target: 26) })
        // A static variable is relocated against the section symbol, offset in the instruction.
        let staticSub = try #require(spec.program(named: "static_sub"))
        let dataMap = try #require(spec.maps.firstIndex { $0.realName == ".data" })
        #expect(staticSub.relocations.map(\.kind).contains(.mapValue(map: dataMap, offset: 68)))
        // Every data section is referenced by some program.
        var referenced = Set<Int>()
        for p in spec.programs {
            for r in p.relocations { if case .mapValue(let m, _) = r.kind { referenced.insert(m) } }
        }
        #expect(referenced == Set(spec.maps.indices))
    }
}
