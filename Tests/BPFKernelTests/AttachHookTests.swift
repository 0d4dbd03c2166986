import BPFObject
import BPFTestSupport
import Testing

@testable import BPFKernel

/// How a `SEC()` name and a request's target become a hook, without a kernel: the section
/// spellings libbpf's attach functions accept, and what each needs from the target.
@Suite("links: SEC() names to hooks")
struct AttachHookTests {
    /// A program spec with the section name (and what libbpf's table gives it), taken from a
    /// real parsed object so every other field is realistic.
    static func program(_ section: String) throws -> ProgramSpec {
        let spec = try ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals")
        var p = try #require(spec.programs.first { $0.name == "xdp_prog" })
        let def = try #require(SectionDefinitions.match(section), "no section definition for \(section)")
        p.name = "p"
        p.sectionName = section
        p.type = def.programType
        p.expectedAttachType = def.expectedAttachType
        return p
    }

    static func hook(_ section: String, _ configure: (inout AttachTarget) -> Void = { _ in }) throws -> AttachHook {
        var target = AttachTarget()
        configure(&target)
        return try AttachHook.resolve(program(section), target: target)
    }

    @Test func tracingSections() throws {
        #expect(try Self.hook("tracepoint/syscalls/sys_enter_getpid") == .tracepoint(category: "syscalls", name: "sys_enter_getpid"))
        #expect(try Self.hook("tp/sched/sched_switch") == .tracepoint(category: "sched", name: "sched_switch"))
        #expect(try Self.hook("tp") { $0.function = "sched/sched_switch" } == .tracepoint(category: "sched", name: "sched_switch"))
        #expect(throws: LinkError.unknownTracepoint("sched")) { try Self.hook("tp/sched") }
        #expect(throws: LinkError.unknownTracepoint("../x")) { try Self.hook("tp/../x") }
        #expect(try Self.hook("raw_tp/sys_enter") == .rawTracepoint(name: "sys_enter"))
        #expect(try Self.hook("raw_tracepoint.w/sys_exit") == .rawTracepoint(name: "sys_exit"))
        #expect(throws: LinkError.missingTarget(program: "p", field: "function", hook: "raw_tracepoint")) { try Self.hook("raw_tp") }
        #expect(try Self.hook("tp_btf/sys_enter") == .btf(attachType: BPFAttachType.traceRawTp.rawValue, kind: .tracing))
        #expect(try Self.hook("fentry/do_nanosleep") == .btf(attachType: BPFAttachType.traceFentry.rawValue, kind: .tracing))
        #expect(try Self.hook("fexit.s/do_nanosleep") == .btf(attachType: BPFAttachType.traceFexit.rawValue, kind: .tracing))
        #expect(try Self.hook("fmod_ret/x") == .btf(attachType: BPFAttachType.modifyReturn.rawValue, kind: .tracing))
        #expect(try Self.hook("lsm/file_open") == .btf(attachType: BPFAttachType.lsmMac.rawValue, kind: .lsm))
        #expect(try Self.hook("iter/task") == .iter(target: "task", map: nil))
        #expect(try Self.hook("iter/task") { $0.map = "ignored" } == .iter(target: "task", map: nil))
        #expect(try Self.hook("iter/bpf_map_elem") { $0.map = "m" } == .iter(target: "bpf_map_elem", map: "m"))
    }

    @Test func probeSections() throws {
        #expect(try Self.hook("kprobe/do_nanosleep") == .kprobe(function: "do_nanosleep", offset: 0, retprobe: false))
        #expect(try Self.hook("kprobe/do_nanosleep+0x10") == .kprobe(function: "do_nanosleep", offset: 16, retprobe: false))
        #expect(try Self.hook("kretprobe/do_nanosleep") == .kprobe(function: "do_nanosleep", offset: 0, retprobe: true))
        #expect(try Self.hook("kprobe") { $0.function = "f"; $0.offset = 4 } == .kprobe(function: "f", offset: 4, retprobe: false))
        #expect(throws: LinkError.missingTarget(program: "p", field: "function", hook: "kprobe")) { try Self.hook("kprobe") }
        #expect(throws: LinkError.self) { try Self.hook("kretprobe/f+8") }
        #expect(try Self.hook("ksyscall/getpid") == .kprobe(function: AttachHook.syscallPrefix + "getpid", offset: 0, retprobe: false))
        #expect(try Self.hook("kprobe.multi/do_*") == .kprobeMulti(pattern: "do_*", retprobe: false))
        #expect(try Self.hook("kretprobe.multi/x?") == .kprobeMulti(pattern: "x?", retprobe: true))
        #expect(try Self.hook("uprobe//usr/bin/true:main") == .uprobe(binary: "/usr/bin/true", function: "main", offset: 0, pid: nil, retprobe: false))
        #expect(try Self.hook("uretprobe/libc.so.6:malloc+0x4") == .uprobe(binary: "libc.so.6", function: "malloc", offset: 4, pid: nil, retprobe: true))
        #expect(try Self.hook("uprobe") { $0.binary = "/bin/x"; $0.function = "f"; $0.pid = 9 }
                == .uprobe(binary: "/bin/x", function: "f", offset: 0, pid: 9, retprobe: false))
        #expect(try Self.hook("uprobe") { $0.binary = "/bin/x"; $0.offset = 0x40 } == .uprobe(binary: "/bin/x", function: nil, offset: 0x40, pid: nil, retprobe: false))
        #expect(throws: LinkError.missingTarget(program: "p", field: "binary", hook: "uprobe")) { try Self.hook("uprobe") }
        #expect(throws: LinkError.missingTarget(program: "p", field: "function", hook: "uprobe")) { try Self.hook("uprobe") { $0.binary = "/bin/x" } }
    }

    @Test func networkAndCgroupSections() throws {
        #expect(try Self.hook("xdp") { $0.interface = "eth0"; $0.xdpMode = .native } == .xdp(interface: "eth0", mode: .native, replace: false))
        #expect(try Self.hook("xdp.frags") { $0.interface = "eth0" } == .xdp(interface: "eth0", mode: nil, replace: false))
        #expect(throws: LinkError.missingTarget(program: "p", field: "interface", hook: "xdp")) { try Self.hook("xdp") }
        #expect(throws: LinkError.self) { try Self.hook("xdp/devmap") { $0.interface = "eth0" } }
        #expect(try Self.hook("tcx/egress") { $0.interface = "eth0" } == .tcx(interface: "eth0", direction: .egress))
        #expect(try Self.hook("tc/ingress") { $0.interface = "eth0" } == .tcx(interface: "eth0", direction: .ingress))
        #expect(try Self.hook("classifier") { $0.interface = "eth0"; $0.direction = .egress } == .tcx(interface: "eth0", direction: .egress))
        #expect(throws: LinkError.missingTarget(program: "p", field: "direction", hook: "tcx")) { try Self.hook("tc") { $0.interface = "eth0" } }
        #expect(try Self.hook("cgroup_skb/ingress") { $0.cgroup = "/cg" } == .cgroup(path: "/cg", attachType: 0))
        #expect(try Self.hook("cgroup/skb") { $0.cgroup = "/cg"; $0.direction = .egress } == .cgroup(path: "/cg", attachType: 1))
        #expect(try Self.hook("cgroup/connect4") { $0.cgroup = "/cg" } == .cgroup(path: "/cg", attachType: BPFAttachType.cgroupInet4Connect.rawValue))
        #expect(try Self.hook("sockops") { $0.cgroup = "/cg" } == .cgroup(path: "/cg", attachType: BPFAttachType.cgroupSockOps.rawValue))
        #expect(try Self.hook("lsm_cgroup/socket_bind") { $0.cgroup = "/cg" } == .cgroup(path: "/cg", attachType: BPFAttachType.lsmCgroup.rawValue))
        #expect(throws: LinkError.missingTarget(program: "p", field: "cgroup", hook: "cgroup")) { try Self.hook("cgroup/sock_create") }
    }

    @Test func sectionsWithoutAHook() throws {
        for section in ["syscall", "socket", "perf_event", "struct_ops/x", "sk_lookup", "netfilter", "freplace/f"] {
            #expect(throws: LinkError.unsupportedSection(program: "p", section: section, supported: AttachHook.supportedSections)) {
                try Self.hook(section)
            }
        }
    }

    @Test func perfEventAttrBytes() {
        let bytes = PerfEventAttr(type: 8, config: 1, config1: 0x1122, config2: 0x40).bytes
        func u64(_ o: Int) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) } }
        func u32(_ o: Int) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) } }
        #expect(bytes.count == 128)
        #expect(u32(0) == 8)
        #expect(u32(4) == 128)
        #expect(u64(8) == 1)
        #expect(u64(16) == 1)  // sample_period
        #expect(u64(56) == 0x1122)
        #expect(u64(64) == 0x40)
    }
}
