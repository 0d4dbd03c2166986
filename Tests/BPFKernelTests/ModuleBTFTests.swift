import BPFObject
import BPFTestSupport
import Foundation
import Glibc
import Testing

@testable import BPFKernel

/// libbpf's `fd_array` slots for module kfuncs, and attach-target names: pure.
@Suite("module BTF: fd_array slots and attach-target names")
struct FDArrayLayoutTests {
    @Test("slot 0 stays unused, each module gets one slot, the same one every time")
    func slots() throws {
        var layout = FDArrayLayout<UInt32>()
        #expect(layout.slots.isEmpty)  // no module kfunc: no fd_array at all
        #expect(try layout.index(for: 70) == 1)
        #expect(try layout.index(for: 90) == 2)
        #expect(try layout.index(for: 70) == 1)
        #expect(try layout.index(for: 90) == 2)
        #expect(try layout.index(for: 5) == 3)
        #expect(layout.slots == [nil, 70, 90, 5])
    }

    @Test("a call's s16 offset bounds the slots: the 32,767th module is refused")
    func overflow() throws {
        var layout = FDArrayLayout<Int>()
        var given: [Int16] = []
        for k in 1..<Int(Int16.max) { given.append(try layout.index(for: k)) }
        #expect(given == Array(1..<Int16.max))
        #expect(throws: FDArrayLayout<Int>.Overflow.full(count: Int(Int16.max) - 1)) { try layout.index(for: -1) }
        #expect(try layout.index(for: 12) == 12)  // known modules keep their slot
    }

    @Test("attach targets: 'module:function' and 'function'")
    func attachNames() {
        #expect(Loader.splitAttachTarget("nf_tables:nft_trace") == ("nf_tables", "nft_trace"))
        #expect(Loader.splitAttachTarget("do_unlinkat") == (nil, "do_unlinkat"))
        #expect(Loader.splitAttachTarget("a:b:c") == ("a", "b:c"))
        #expect(Loader.attachTypeName("sched_switch", expectedAttachType: 23) == ("btf_trace_sched_switch", .typedef))
        #expect(Loader.attachTypeName("file_open", expectedAttachType: 27) == ("bpf_lsm_file_open", .function))
        #expect(Loader.attachTypeName("task", expectedAttachType: 28) == ("bpf_iter_task", .function))
        #expect(Loader.attachTypeName("do_unlinkat", expectedAttachType: 24) == ("do_unlinkat", .function))
    }

    @Test("a module's own types are found by name and kind, names in vmlinux strings included; base types are not the module's")
    func moduleFind() throws {
        var b = BTFBlobBuilder()
        let int = b.int("int", size: 4)
        _ = b.structure("pair", size: 8, members: [("a", int, bitOffset: 0), ("b", int, bitOffset: 32)])
        let base = try BTF(parsing: b.blob())
        var s = BTFBlobBuilder(baseTypeCount: UInt32(base.types.count), baseStringLength: UInt32(base.strings.count), leadingNUL: false)
        let proto = s.functionProto(returns: int, params: [("x", int)])  // [3]
        _ = s.function("mod_kfunc", proto: proto)                         // [4]
        _ = s.variable("mod_kfunc_count", type: int)                      // [5]
        _ = s.raw([1, 12 << 24 | 1, proto])                               // [6] FUNC named by base "int"
        _ = s.variable("mod_kfunc", type: int)                            // [7] same name, another kind
        let m = ModuleBTF(objectID: 1, name: "m", btf: try SplitBTF(parsing: s.blob(), base: base))
        #expect(m.find("mod_kfunc", kind: .function) == 4)
        #expect(m.find("mod_kfunc", kind: .variable) == 7)
        #expect(m.find("mod_kfunc_count", kind: .variable) == 5)
        #expect(m.find("int", kind: .function) == 6)
        #expect(m.find("int", kind: .int) == nil)        // vmlinux's, not the module's
        #expect(m.find("pair", kind: .structure) == nil)
        #expect(m.find("mod_kfun", kind: .function) == nil)
        #expect(m.find("mod_kfunc_", kind: .function) == nil)
        #expect(m.find("", kind: .function) == nil)
    }

    @Test("only kernel BTF other than vmlinux is a module")
    func moduleFilter() {
        #expect(KernelBTFObjects.isModule(BTFInfo(id: 7, name: "nf_tables", isKernelBTF: true, size: 100)))
        #expect(!KernelBTFObjects.isModule(BTFInfo(id: 1, name: "vmlinux", isKernelBTF: true, size: 100)))
        #expect(!KernelBTFObjects.isModule(BTFInfo(id: 9, name: "", isKernelBTF: false, size: 100)))
        #expect(!KernelBTFObjects.isModule(BTFInfo(id: 9, name: "nf_tables", isKernelBTF: false, size: 100)))
    }
}

/// The kernel's BTF objects as the loader walks them, and module kfuncs / typed ksyms / attach
/// targets resolved against module BTF. This kernel (6.18 without CONFIG_MODULES) has no
/// module BTF, so the module is synthesized: real split BTF over the running vmlinux BTF, with
/// user-loaded BTF fds standing in for module BTF fds.
@Suite("module BTF: kernel objects and resolution", .serialized, .enabled(if: SysTestSupport.bpfPermitted, SysTestSupport.skipMessage))
struct ModuleBTFTests {
    /// Module names as sysfs lists them (every file of /sys/kernel/btf but vmlinux).
    static func sysfsModules() throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/btf")).subtracting(["vmlinux"])
    }

    @Test("walking BTF objects: vmlinux found by name, user BTF skipped, modules as /sys/kernel/btf lists them")
    func enumeration() throws {
        let userBlob = SysTestSupport.intBTF(bits: 32)
        let user = try BPFSys.btfLoad(data: userBlob)
        let userID = try BPFSys.objGetInfoByFD(btfFD: user).id

        let all = try KernelBTFObjects.list()
        let vmlinux = try #require(all.first { $0.info.name == "vmlinux" })
        #expect(vmlinux.info.isKernelBTF)
        #expect(all.filter { $0.info.name == "vmlinux" }.count == 1)
        let listedUser = try #require(all.first { $0.info.id == userID })
        #expect(!listedUser.info.isKernelBTF)
        #expect(!KernelBTFObjects.isModule(listedUser.info))
        #expect(all.map(\.info.id) == all.map(\.info.id).sorted())

        // vmlinux's blob through the fd is the sysfs file; a user blob comes back as loaded.
        let sysfs = try Data(contentsOf: URL(fileURLWithPath: "/sys/kernel/btf/vmlinux"))
        #expect(try BPFSys.btfData(fd: vmlinux.fd) == [UInt8](sysfs))
        #expect(try BPFSys.btfData(fd: user) == userBlob)

        // Only module BTFs stay open; on this kernel (no CONFIG_MODULES) there are none.
        let kept = try KernelBTFObjects.list(keep: KernelBTFObjects.isModule)
        #expect(Set(kept.map(\.info.name)) == (try Self.sysfsModules()))
        #expect(kept.allSatisfy { $0.info.isKernelBTF && $0.info.name != "vmlinux" })
        let opened = try KernelBTFObjects.openModules(vmlinux: KernelBTF.vmlinux())
        #expect(Set(opened.map(\.module.name)) == (try Self.sysfsModules()))
        for m in opened {
            // A real module's split BTF continues vmlinux's ids.
            #expect(m.module.btf.firstID == UInt32(try KernelBTF.vmlinux().index.typeCount))
            m.fd.close()
        }
        withExtendedLifetime(user) {}
    }

    /// A module named `name` over the running vmlinux BTF, holding the module_kfuncs fixture's
    /// externs (`kfuncB` params as given) and `bpfdepot_mod_attach`; `fd` stands in for its BTF fd.
    static func module(_ name: String, objectID: UInt32, fd: BPFFD, kfuncA: Bool = true,
                       kfuncBParams: Int? = 1, counter: Bool = true) throws -> (OpenModuleBTF, ids: [String: UInt32]) {
        let vmlinux = try KernelBTF.vmlinux()
        let int = try #require(vmlinux.find("int", kind: .int))
        var b = BTFBlobBuilder(baseTypeCount: UInt32(vmlinux.index.typeCount), baseStringLength: UInt32(vmlinux.index.stringLength))
        var ids: [String: UInt32] = [:]
        let voidProto = b.functionProto(returns: 0, params: [])
        if kfuncA { ids["bpfdepot_mod_kfunc_a"] = b.function("bpfdepot_mod_kfunc_a", proto: voidProto) }
        if let n = kfuncBParams {
            let proto = b.functionProto(returns: int, params: (0..<n).map { ("x\($0)", int) })
            ids["bpfdepot_mod_kfunc_b"] = b.function("bpfdepot_mod_kfunc_b", proto: proto)
        }
        if counter { ids["bpfdepot_mod_counter"] = b.variable("bpfdepot_mod_counter", type: int) }
        ids["bpfdepot_mod_attach"] = b.function("bpfdepot_mod_attach", proto: voidProto)
        let split = try SplitBTF(parsing: b.blob(), base: try vmlinux.btf())
        return (OpenModuleBTF(module: ModuleBTF(objectID: objectID, name: name, btf: split), fd: fd), ids)
    }

    static func resolve(_ spec: ObjectSpec, _ session: ModuleBTFSession) throws -> [String: ExternResolution] {
        var image: [UInt8] = []
        let out = try ExternResolver(spec: spec, modules: session).resolve(kconfigImage: &image)
        return Dictionary(uniqueKeysWithValues: zip(spec.externs.map(\.name), out))
    }

    @Test("module kfuncs and typed ksyms: ids of the module's split BTF, one fd_array slot per module, calls and ld_imm64 patched")
    func moduleKfuncs() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("module_kfuncs"), name: "module_kfuncs")
        let fd = try BPFSys.btfLoad(data: SysTestSupport.intBTF(bits: 32))
        let unusedFD = try BPFSys.btfLoad(data: SysTestSupport.intBTF(bits: 32))
        let (m, ids) = try Self.module("bpfdepot_mod", objectID: 4242, fd: fd)
        let (unused, _) = try Self.module("bpfdepot_other", objectID: 4243, fd: unusedFD, kfuncA: false, kfuncBParams: nil, counter: false)
        let session = ModuleBTFSession(preopened: [unused, m])
        let r = try Self.resolve(spec, session)

        let a = try #require(ids["bpfdepot_mod_kfunc_a"]), b = try #require(ids["bpfdepot_mod_kfunc_b"])
        let counter = try #require(ids["bpfdepot_mod_counter"])
        #expect(a >= UInt32(try KernelBTF.vmlinux().index.typeCount))
        #expect(r["bpfdepot_mod_kfunc_a"] == .kfunc(btfID: a, fdArrayIndex: 1, btfObjectFD: fd.rawValue))
        #expect(r["bpfdepot_mod_kfunc_b"] == .kfunc(btfID: b, fdArrayIndex: 1, btfObjectFD: fd.rawValue))
        #expect(r["bpfdepot_mod_counter"] == .typedKsym(btfID: counter, btfObjectFD: fd.rawValue))
        #expect(session.fdArray.count == 2)
        #expect(session.fdArray[0] == nil)
        #expect(session.fdArray[1] === fd)

        // The program as BPF_PROG_LOAD would get it.
        let main = try #require(spec.programs.firstIndex { $0.name == "use_module" })
        let bss = spec.maps.indices.map { Int32(100 + $0) }
        let context = LinkContext(mapFDs: bss, externs: spec.externs.map { r[$0.name] ?? .unresolvedWeak },
                                  kconfigMapFD: nil, arenaDataOffset: 0)
        let insns = try ProgramLinker.link(main, spec: spec, context: context).instructions
        // Calls: BPF_PSEUDO_KFUNC_CALL, imm = module BTF id, off = fd_array slot.
        for (at, id) in [(3, a), (9, b)] {
            #expect(insns[at].isCall && insns[at].src == 2)
            #expect(insns[at].immediate == Int32(bitPattern: id))
            #expect(insns[at].offset == 1)
        }
        // ld_imm64 of a kfunc or typed ksym: BPF_PSEUDO_BTF_ID, imm = id, second half = BTF fd.
        for (at, id) in [(0, a), (5, b), (10, counter)] {
            #expect(insns[at].isLoadImm64 && insns[at].src == 3)
            #expect(insns[at].immediate == Int32(bitPattern: id))
            #expect(insns[at + 1].immediate == fd.rawValue)
        }

        // The load keeps the fds something refers to; the other module's is closed.
        let kept = session.finish()
        #expect(kept.count == 1 && kept[0] === fd)
        #expect(unusedFD.isClosed)
        #expect(!fd.isClosed)
    }

    @Test("kfuncs of two modules get two slots, in the order they are resolved")
    func twoModules() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("module_kfuncs"), name: "module_kfuncs")
        let fdA = try BPFSys.btfLoad(data: SysTestSupport.intBTF(bits: 32))
        let fdB = try BPFSys.btfLoad(data: SysTestSupport.intBTF(bits: 32))
        let (ma, idsA) = try Self.module("mod_a", objectID: 10, fd: fdA, kfuncBParams: nil, counter: false)
        let (mb, idsB) = try Self.module("mod_b", objectID: 11, fd: fdB, kfuncA: false)
        let session = ModuleBTFSession(preopened: [ma, mb])
        let r = try Self.resolve(spec, session)
        #expect(r["bpfdepot_mod_kfunc_a"] == .kfunc(btfID: try #require(idsA["bpfdepot_mod_kfunc_a"]), fdArrayIndex: 1, btfObjectFD: fdA.rawValue))
        #expect(r["bpfdepot_mod_kfunc_b"] == .kfunc(btfID: try #require(idsB["bpfdepot_mod_kfunc_b"]), fdArrayIndex: 2, btfObjectFD: fdB.rawValue))
        #expect(r["bpfdepot_mod_counter"] == .typedKsym(btfID: try #require(idsB["bpfdepot_mod_counter"]), btfObjectFD: fdB.rawValue))
        let array = session.fdArray
        #expect(array.count == 3 && array[0] == nil && array[1] === fdA && array[2] === fdB)
        // Both modules' split BTF starts at the same id (each continues vmlinux, not each other).
        #expect(ma.module.btf.firstID == mb.module.btf.firstID)
        #expect(Set(session.finish().map(\.rawValue)) == [fdA.rawValue, fdB.rawValue])
    }

    @Test("a module kfunc with another prototype stays unresolved (weak) and takes no slot")
    func incompatiblePrototype() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("module_kfuncs"), name: "module_kfuncs")
        let fd = try BPFSys.btfLoad(data: SysTestSupport.intBTF(bits: 32))
        let (m, _) = try Self.module("bpfdepot_mod", objectID: 12, fd: fd, kfuncA: false, kfuncBParams: 2, counter: false)
        let session = ModuleBTFSession(preopened: [m])
        let r = try Self.resolve(spec, session)
        #expect(r["bpfdepot_mod_kfunc_a"] == .unresolvedWeak)
        #expect(r["bpfdepot_mod_kfunc_b"] == .unresolvedWeak)  // int (int, int) vs the object's int (int)
        #expect(r["bpfdepot_mod_counter"] == .unresolvedWeak)
        #expect(session.fdArray.isEmpty)
        #expect(session.finish().isEmpty)
        #expect(fd.isClosed)
    }

    @Test("attach targets in modules: 'module:function' and bare names; the module's BTF fd goes with the id")
    func attachTargets() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("module_kfuncs"), name: "module_kfuncs")
        let fd = try BPFSys.btfLoad(data: SysTestSupport.intBTF(bits: 32))
        let (m, ids) = try Self.module("bpfdepot_mod", objectID: 13, fd: fd)
        let target = try #require(ids["bpfdepot_mod_attach"])
        var p = try #require(spec.programs.first { $0.name == "use_module" })
        p.expectedAttachType = BPFAttachType(24)  // BPF_TRACE_FENTRY
        func resolve(_ name: String) throws(LoaderError) -> (UInt32, String?) {
            p.attachTarget = name
            let (id, module) = try Loader.attachTarget(p, modules: ModuleBTFSession(preopened: [m]))
            return (id, module?.module.name)
        }
        #expect(try resolve("bpfdepot_mod:bpfdepot_mod_attach") == (target, "bpfdepot_mod"))
        #expect(try resolve("bpfdepot_mod_attach") == (target, "bpfdepot_mod"))
        // A vmlinux function: vmlinux, no module fd.
        let vmlinux = try KernelBTF.vmlinux()
        let kernelFunc = try #require(vmlinux.index.kindTags.firstIndex(of: BTFKindTag.function.rawValue))
        let kernelName = vmlinux.index.name(of: UInt32(kernelFunc))
        #expect(try resolve(kernelName) == (UInt32(kernelFunc), nil))
        // libbpf searches a named module's whole split BTF, vmlinux part first.
        #expect(try resolve("bpfdepot_mod:\(kernelName)") == (UInt32(kernelFunc), "bpfdepot_mod"))
        #expect {
            try resolve("no_such_mod:bpfdepot_mod_attach")
        } throws: { error in
            guard case .attachTarget(_, let reason)? = error as? LoaderError else { return false }
            return reason.contains("no module named 'no_such_mod'")
        }
        #expect(throws: LoaderError.self) { try resolve("bpfdepot_mod:bpfdepot_no_such_function") }
        #expect(throws: LoaderError.self) { try resolve("bpfdepot_mod:") }
        #expect(throws: LoaderError.self) { try resolve(":bpfdepot_mod_attach") }
        withExtendedLifetime(fd) {}
    }

    @Test("on this kernel the module-only externs stay unresolved, the load walks the BTF objects and succeeds")
    func loadWithoutModules() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("module_kfuncs"), name: "module_kfuncs")
        let obj = try Loader.load(spec)
        defer { obj.unload() }
        // No module here has bpfdepot's externs, so none is kept open.
        #expect(obj.moduleBTFFDs.isEmpty)
        let run = try obj.run(program: "use_module")
        #expect(run.returnValue == 0)
        #expect(try obj.read(variable: "mod_result") == [0, 0, 0, 0])
    }
}

extension ModuleBTFTests {
    @Test("the kernel reads the fd_array slot of a module kfunc call: a stand-in (user) BTF there is refused as not module BTF")
    func kernelReadsFDArraySlot() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("module_kfuncs"), name: "module_kfuncs")
        let fd = try BPFSys.btfLoad(data: SysTestSupport.intBTF(bits: 32))
        let (m, _) = try Self.module("bpfdepot_mod", objectID: 14, fd: fd, kfuncBParams: nil, counter: false)
        let error = #expect(throws: LoaderError.self) {
            try Loader.load(spec, images: [:], options: LoadOptions(), modules: ModuleBTFSession(preopened: [m]))
        }
        guard case .verifier(let v)? = error else {
            Issue.record("expected a verifier rejection, got \(String(describing: error))")
            return
        }
        // The verifier followed the call's off to fd_array[1], opened our fd and checked its kind.
        #expect(v.log.contains("BTF fd for kfunc is not a module BTF"), "\(v.log)")
    }
}

extension ModuleBTFTests {
    @Test("the kernel reads a module typed ksym's BTF fd from the second half of its ld_imm64")
    func kernelReadsKsymBTFFD() throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes("module_kfuncs"), name: "module_kfuncs")
        // A map fd stands in for the module's BTF fd: the kernel must try to open it as BTF.
        // (Had the loader left 0 there, vmlinux would be searched: "invalid btf_id" instead.)
        let notBTF = try BPFSys.mapCreate(type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1)
        let (m, _) = try Self.module("bpfdepot_mod", objectID: 15, fd: notBTF, kfuncA: false, kfuncBParams: nil)
        let error = #expect(throws: LoaderError.self) {
            try Loader.load(spec, images: [:], options: LoadOptions(), modules: ModuleBTFSession(preopened: [m]))
        }
        guard case .verifier(let v)? = error else {
            Issue.record("expected a verifier rejection, got \(String(describing: error))")
            return
        }
        #expect(v.log.contains("invalid module BTF object FD specified"), "\(v.log)")
    }
}
