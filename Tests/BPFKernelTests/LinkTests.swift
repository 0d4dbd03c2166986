import BPFObject
import BPFTestSupport
import Foundation
import Glibc
import Testing

@testable import BPFKernel
import KernelTestSupport

/// Tracing programs attached to real hooks of this kernel: the counters move with the events the
/// test makes, and stop once the link is detached.
@Suite("links: tracing hooks", .needsBPF)
struct LinkTests {
    typealias S = LinkTestSupport

    /// Attaches `program`, makes `n` getpid(2) calls, checks the counter grew by at least `n`
    /// (the process's other threads may call getpid too), detaches, and checks it stops.
    func countsGetpidThenStops(_ obj: LoadedObject, program: String, counter: String) throws -> AttachedLink {
        let link = try obj.attach(program: program, target: AttachTarget())
        let before = try S.u64(obj, counter)
        S.getpids(50)
        #expect(try S.eventually { try S.u64(obj, counter) >= before + 50 }, "\(counter) after 50 getpid calls: \(((try? S.u64(obj, counter)) ?? 0) &- before)")
        link.detach()
        link.detach()  // idempotent
        #expect(S.released(link))
        let stopped = try S.u64(obj, counter)
        S.getpids(50)
        usleep(50_000)
        #expect(try S.u64(obj, counter) == stopped, "\(counter) moved after detach")
        return link
    }

    @Test func rawTracepointCountsGetpidAndStopsWhenDetached() throws {
        let obj = try S.loadWatchingThisProcess("links")
        defer { obj.unload() }
        let link = try obj.attach(program: "raw_getpid", target: AttachTarget())
        #expect(link.kind == .rawTracepoint)
        #expect(link.target == "sys_enter")
        #expect(link.id != 0)
        let info = try link.info()
        #expect(info.id == link.id)
        #expect(info.typeName == "raw_tracepoint")
        #expect(info.type == BPFLinkType.rawTracepoint)
        #expect(info.programID == obj.program(named: "raw_getpid")?.id)
        #expect(info.details["tp_name"] == "sys_enter")
        link.detach()
        #expect(link.isDetached)
        #expect(throws: LinkError.self) { try link.info() }
        _ = try countsGetpidThenStops(obj, program: "raw_getpid", counter: "raw_tp_hits")
    }

    @Test func btfTracepointCountsGetpidAndStopsWhenDetached() throws {
        let obj = try S.loadWatchingThisProcess("links")
        defer { obj.unload() }
        let link = try countsGetpidThenStops(obj, program: "btf_getpid", counter: "tp_btf_hits")
        #expect(link.kind == .tracing)
        #expect(link.target == "sys_enter")
        let again = try obj.attach(program: "btf_getpid", target: AttachTarget())
        defer { again.detach() }
        let info = try again.info()
        // Linux 6.10+ makes tp_btf links with BPF_LINK_CREATE (tracing links); older kernels
        // through BPF_RAW_TRACEPOINT_OPEN (raw_tracepoint links).
        #expect(["tracing", "raw_tracepoint"].contains(info.typeName), "\(info)")
        if info.typeName == "tracing" { #expect(info.details["attach_type"] == "trace_raw_tp") }
    }

    @Test func tracefsTracepointCountsGetpidThroughAPerfEvent() throws {
        let obj = try S.loadWatchingThisProcess("links")
        defer { obj.unload() }
        let link = try obj.attach(program: "tp_getpid", target: AttachTarget())
        defer { link.detach() }
        #expect(link.kind == .tracepoint)
        #expect(link.target == "syscalls/sys_enter_getpid")
        #expect(S.tracefsMounted, "attaching a tracepoint leaves tracefs mounted")
        #expect(link.notes.allSatisfy { $0 == "mounted tracefs at /sys/kernel/tracing" }, "\(link.notes)")
        let info = try link.info()
        #expect(info.typeName == "perf_event")
        if S.describesPerfLinks {
            #expect(info.details["perf_event_type"] == "tracepoint")
            #expect(info.details["tp_name"] == "sys_enter_getpid")
        }
        #expect(link.perfFD.map { !$0.isClosed } == true)
        link.detach()
        #expect(link.perfFD?.isClosed == true)
        _ = try countsGetpidThenStops(obj, program: "tp_getpid", counter: "tp_hits")
    }

    @Test(.enabled(if: S.trampolines.ok, Comment(rawValue: S.trampolines.reason)))
    func fentryCountsNanosleeps() throws {
        let obj = try S.loadWatchingThisProcess("links_trampoline")
        defer { obj.unload() }
        let link = try obj.attach(program: "on_sleep", target: AttachTarget())
        #expect(link.kind == .tracing)
        #expect(link.target == "do_nanosleep")
        let info = try link.info()
        #expect(info.typeName == "tracing")
        #expect(info.details["attach_type"] == "trace_fentry")
        for _ in 0..<20 { usleep(100) }
        #expect(try S.eventually { try S.u64(obj, "fentry_hits") >= 20 })
        link.detach()
        #expect(S.released(link))
        let stopped = try S.u64(obj, "fentry_hits")
        for _ in 0..<20 { usleep(100) }
        #expect(try S.u64(obj, "fentry_hits") == stopped)
    }

    @Test(.enabled(if: S.trampolines.ok, Comment(rawValue: S.trampolines.reason)))
    func lsmCountsOpensAndAllowsThem() throws {
        let obj = try S.loadWatchingThisProcess("links_trampoline")
        defer { obj.unload() }
        let link = try obj.attach(program: "on_open", target: AttachTarget())
        #expect(link.kind == .lsm)
        #expect(link.target == "file_open")
        #expect(try link.info().details["attach_type"] == "lsm_mac")
        for _ in 0..<10 {
            let fd = open("/dev/null", O_RDONLY)
            #expect(fd >= 0, "the program returns 0, so opens are allowed")
            close(fd)
        }
        #expect(try S.eventually { try S.u64(obj, "lsm_opens") >= 10 })
        link.detach()
        #expect(S.released(link))
        let stopped = try S.u64(obj, "lsm_opens")
        close(open("/dev/null", O_RDONLY))
        #expect(try S.u64(obj, "lsm_opens") == stopped)
    }

    @Test func taskIteratorPrintsThisProcess() throws {
        let obj = try S.load("links")
        defer { obj.unload() }
        let link = try obj.attach(program: "dump_tasks", target: AttachTarget())
        defer { link.detach() }
        #expect(link.kind == .iter)
        #expect(link.target == "task")
        let info = try link.info()
        #expect(info.typeName == "iter")
        #expect(info.details["target_name"] == "task")
        let (bytes, truncated) = try link.readIterator(maxBytes: 1 << 22, timeout: .seconds(10))
        #expect(!truncated)
        let lines = Set(String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init))
        #expect(lines.contains("\(getpid()) \(getpid())"), "no line for this process's main thread among \(lines.count)")
        // Threads alive before and after a read were there throughout it: each has a line.
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task"))
        let (again, _) = try link.readIterator(maxBytes: 1 << 22, timeout: .seconds(10))
        let after = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task"))
        let seen = Set(String(decoding: again, as: UTF8.self).split(separator: "\n").map(String.init))
        for tid in before.intersection(after) {
            #expect(seen.contains("\(getpid()) \(tid)"), "thread \(tid) of this process")
        }
        // Each read runs the iteration again; a small bound truncates.
        let (first, cut) = try link.readIterator(maxBytes: 10, timeout: .seconds(10))
        #expect(first.count == 10)
        #expect(cut)
        #expect(throws: LinkError.self) {
            try obj.attach(program: "raw_getpid", target: AttachTarget()).readIterator(maxBytes: 10, timeout: .seconds(1))
        }
    }

    @Test(.enabled(if: S.mapIterators.ok, Comment(rawValue: S.mapIterators.reason)))
    func mapIteratorPrintsTheNamedMapsElements() throws {
        let obj = try S.load("links_map_iter")
        defer { obj.unload() }
        let map = try #require(obj.map(named: "iter_values"))
        for key in UInt32(0)..<4 {
            try BPFSys.mapUpdate(fd: map.fd, key: withUnsafeBytes(of: key, Array.init),
                                 value: withUnsafeBytes(of: UInt64(key) * 11 + 1, Array.init))
        }
        #expect(throws: LinkError.missingTarget(program: "dump_values", field: "map", hook: "iter/bpf_map_elem")) {
            try obj.attach(program: "dump_values", target: AttachTarget())
        }
        var target = AttachTarget()
        target.map = "no_such_map"
        #expect(throws: LinkError.unknownMap("no_such_map")) { try obj.attach(program: "dump_values", target: target) }
        target.map = "iter_values"
        let link = try obj.attach(program: "dump_values", target: target)
        defer { link.detach() }
        #expect(link.target == "bpf_map_elem of map iter_values")
        #expect(try link.info().details["map_id"] == String(map.id))
        let (bytes, truncated) = try link.readIterator(maxBytes: 4096, timeout: .seconds(5))
        #expect(!truncated)
        #expect(String(decoding: bytes, as: UTF8.self) == "0=1\n1=12\n2=23\n3=34\n")
    }

    @Test func pinnedLinkOutlivesItsObjectAndIsAdoptedByID() throws {
        try PinRoot.prepare("/sys/fs/bpf")
        let path = "/sys/fs/bpf/bdlink-pin-\(getpid())-\(S.suffix())"
        let obj = try S.loadWatchingThisProcess("links")
        defer { obj.unload() }
        var id: UInt32 = 0
        do {
            let link = try obj.attach(program: "raw_getpid", target: AttachTarget())
            try link.pin(at: path)
            id = link.id
            #expect(throws: LinkError.self) { try link.pin(at: path) }  // EEXIST
            // Dropped without detach(), as by a restart: only the pin holds the link now.
        }
        let before = try S.u64(obj, "raw_tp_hits")
        S.getpids(20)
        #expect(try S.eventually { try S.u64(obj, "raw_tp_hits") >= before + 20 }, "the pin keeps the link attached")

        do {
            _ = try AttachedLink.adopt(pinnedAt: path, expectedID: id &+ 1, program: "raw_getpid", kind: .rawTracepoint, target: "sys_enter")
            Issue.record("adopting with the wrong id succeeded")
        } catch {
            guard case .pin(let p, let reason) = error else { throw error }
            #expect(p == path)
            #expect(reason.contains("replaced"), "\(reason)")
        }
        #expect(throws: LinkError.self) {
            try AttachedLink.adopt(pinnedAt: path + "-none", expectedID: id, program: "raw_getpid", kind: .rawTracepoint, target: "sys_enter")
        }
        let adopted = try AttachedLink.adopt(pinnedAt: path, expectedID: id, program: "raw_getpid", kind: .rawTracepoint, target: "sys_enter")
        #expect(adopted.id == id)
        #expect(adopted.program == "raw_getpid")
        #expect(try adopted.info().details["tp_name"] == "sys_enter")
        let middle = try S.u64(obj, "raw_tp_hits")
        S.getpids(20)
        #expect(try S.eventually { try S.u64(obj, "raw_tp_hits") >= middle + 20 })
        adopted.detach()
        #expect(access(path, F_OK) != 0, "detach removes the pin it adopted")
        #expect(S.released(adopted))
        let stopped = try S.u64(obj, "raw_tp_hits")
        S.getpids(20)
        usleep(50_000)
        #expect(try S.u64(obj, "raw_tp_hits") == stopped)
    }

    @Test func aPinOfAnotherKindOfObjectIsNotAdopted() throws {
        try PinRoot.prepare("/sys/fs/bpf")
        let path = "/sys/fs/bpf/bdlink-map-\(getpid())-\(S.suffix())"
        let map = try BPFSys.mapCreate(type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1)
        try BPFSys.objPin(fd: map, path: path)
        defer { unlink(path) }
        #expect {
            try AttachedLink.adopt(pinnedAt: path, expectedID: 1, program: "p", kind: .iter, target: "t")
        } throws: { error in
            guard case .pin(_, let reason) = error as? LinkError else { return false }
            return reason.contains("not a link")
        }
    }

    @Test func sectionsWithoutAHookAndMissingTargetsAreRefusedBeforeTheKernel() throws {
        let obj = try Loader.load(ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals"))
        defer { obj.unload() }
        #expect(throws: LinkError.unsupportedSection(program: "sys_first", section: "syscall", supported: AttachHook.supportedSections)) {
            try obj.attach(program: "sys_first", target: AttachTarget())
        }
        #expect(throws: LinkError.missingTarget(program: "xdp_prog", field: "interface", hook: "xdp")) {
            try obj.attach(program: "xdp_prog", target: AttachTarget())
        }
        #expect(throws: LinkError.unknownProgram("nope")) { try obj.attach(program: "nope", target: AttachTarget()) }
        var target = AttachTarget()
        target.interface = "bdnosuch0"
        #expect(throws: LinkError.unknownInterface("bdnosuch0")) { try obj.attach(program: "xdp_prog", target: target) }
        // `tc` names no direction: the target must.
        target.interface = "lo"
        #expect(throws: LinkError.missingTarget(program: "tc_prog", field: "direction", hook: "tcx")) {
            try obj.attach(program: "tc_prog", target: target)
        }
        // Autoload off ('?tp/...'): in the spec, not in the kernel.
        #expect(throws: LinkError.self) { try obj.attach(program: "tp_getpid", target: AttachTarget()) }
        obj.unload()
        #expect(throws: LinkError.self) { try obj.attach(program: "xdp_prog", target: target) }
    }

    @Test func unknownTracepointsAreNamed() throws {
        let obj = try S.loadWatchingThisProcess("links")
        defer { obj.unload() }
        // raw_tp's name comes from the section; a request's function only fills a bare one.
        var target = AttachTarget()
        target.function = "bdlink_no_such_tracepoint"
        let link = try obj.attach(program: "raw_getpid", target: target)
        #expect(link.target == "sys_enter")
        link.detach()
        #expect(throws: LinkError.unknownTracepoint("bdlink_no_such_tracepoint")) {
            try Attachment(program: "raw_getpid", fd: #require(obj.program(named: "raw_getpid")).fd, section: "raw_tp")
                .rawTracepoint("bdlink_no_such_tracepoint")
        }
        #expect(throws: LinkError.unknownTracepoint("syscalls/bdlink_nope")) {
            try Attachment(program: "tp_getpid", fd: #require(obj.program(named: "tp_getpid")).fd, section: "tp")
                .tracepoint(category: "syscalls", name: "bdlink_nope")
        }
    }

    @Test func statisticsCountRunsWhileEnabled() throws {
        let obj = try S.loadWatchingThisProcess("links")
        defer { obj.unload() }
        let program = try #require(obj.program(named: "tp_getpid"))
        let stats = try ProgramStatistics.enable()
        let link = try obj.attach(program: "tp_getpid", target: AttachTarget())
        S.getpids(30)
        #expect(try S.eventually { try S.u64(obj, "tp_hits") >= 30 })
        link.detach()
        stats.close()
        let info = try BPFSys.objGetInfoByFD(programFD: program.fd)
        // Every getpid on the machine runs the program; ours are at least 30 of them.
        #expect(info.runCount >= 30)
        #expect(info.runTimeNs > 0)
        #expect(info.verifiedInstructions > 0)
        #expect(info.xlatedProgramLength > 0)
        #expect(info.jitedProgramLength > 0)
    }
}
