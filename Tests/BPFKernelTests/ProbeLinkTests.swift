import BPFObject
import BPFTestSupport
import Foundation
import Glibc
import Testing

@testable import BPFKernel
import KernelTestSupport

/// uprobes on a binary the test compiles, with exact counts (and exact run counts with program
/// statistics on), and kprobes where the kernel has them.
@Suite("links: probes", .needsBPF)
struct ProbeLinkTests {
    typealias S = LinkTestSupport

    static let gccReason: Comment = {
        switch ProbedBinary.path {
        case .success: ""
        case .failure(let e): Comment(rawValue: "cannot build the probed binary: \(e)")
        }
    }()
    static var hasBinary: Bool { (try? ProbedBinary.path.get()) != nil }

    @Test(.enabled(if: hasBinary, gccReason))
    func uprobeAndUretprobeCountEveryCallExactly() throws {
        let obj = try S.load("links_probes")
        defer { obj.unload() }
        let binary = try ProbedBinary.copy()
        defer { unlink(binary) }
        var target = AttachTarget()
        target.binary = binary
        target.function = "probe_target"
        let stats = try ProgramStatistics.enable()
        defer { stats.close() }
        let entry = try obj.attach(program: "on_call", target: target)
        let exit = try obj.attach(program: "on_return", target: target)
        #expect(entry.kind == .uprobe)
        #expect(exit.kind == .uretprobe)
        #expect(entry.target == "\(binary):probe_target+0x0")
        let info = try entry.info()
        #expect(info.typeName == "perf_event")
        if S.describesPerfLinks {
            #expect(info.details["perf_event_type"] == "uprobe")
            #expect(info.details["file_name"] == binary)
            #expect(try exit.info().details["perf_event_type"] == "uretprobe")
        }

        try ProbedBinary.run(binary, 7)
        #expect(try S.u64(obj, "uprobe_hits") == 7)
        #expect(try S.u64(obj, "uretprobe_hits") == 7)
        let program = try BPFSys.objGetInfoByFD(programFD: #require(obj.program(named: "on_call")).fd)
        #expect(program.runCount == 7, "run_cnt counts the uprobe's runs while statistics are on")
        #expect(program.runTimeNs > 0)
        #expect(program.recursionMisses == 0)

        entry.detach()
        exit.detach()
        #expect(S.released(entry) && S.released(exit))
        try ProbedBinary.run(binary, 3)
        let (calls, returns) = (try S.u64(obj, "uprobe_hits"), try S.u64(obj, "uretprobe_hits"))
        #expect(calls == 7 && returns == 7, "after detach: \(calls) calls, \(returns) returns")
    }

    @Test(.enabled(if: hasBinary, gccReason))
    func uprobeForOneProcessOnlySeesThatProcess() throws {
        let obj = try S.load("links_probes")
        defer { obj.unload() }
        let binary = try ProbedBinary.copy()
        defer { unlink(binary) }
        var target = AttachTarget()
        target.binary = binary
        target.function = "probe_target"
        target.pid = getpid()  // this process never runs the binary's code
        let link = try obj.attach(program: "on_call", target: target)
        defer { link.detach() }
        #expect(link.target.hasSuffix(" pid \(getpid())"))
        try ProbedBinary.run(binary, 4)
        #expect(try S.u64(obj, "uprobe_hits") == 0)
    }

    @Test(.enabled(if: hasBinary, gccReason))
    func uprobeTargetsAreCheckedFirst() throws {
        let obj = try S.load("links_probes")
        defer { obj.unload() }
        var target = AttachTarget()
        #expect(throws: LinkError.missingTarget(program: "on_call", field: "binary", hook: "uprobe")) {
            try obj.attach(program: "on_call", target: target)
        }
        target.binary = "/nonexistent/bdlink-binary"
        target.function = "main"
        #expect {
            try obj.attach(program: "on_call", target: target)
        } throws: { error in
            guard case .unknownBinary(let path, _) = error as? LinkError else { return false }
            return path == "/nonexistent/bdlink-binary"
        }
        target.binary = try ProbedBinary.path.get()
        target.function = "bdlink_no_such_function"
        #expect {
            try obj.attach(program: "on_call", target: target)
        } throws: { error in
            guard case .unknownFunction(let name, _) = error as? LinkError else { return false }
            return name == "bdlink_no_such_function"
        }
    }

    @Test func symbolOffsetsMatchTheDynamicSymbolTable() throws {
        // libc's getpid: a .dynsym function of a stripped library; its offset is its address
        // minus its PT_LOAD's vaddr plus that segment's file offset, which for libc's text
        // segment equals the address (vaddr == offset), as `nm -D` prints it.
        let libc = try BinarySymbols.resolve("libc.so.6")
        let offset = try BinarySymbols.fileOffset(of: "getpid", in: libc)
        let nm = try S.sh("nm -D --defined-only \(libc) | awk '$3 == \"getpid\" || $3 ~ /^getpid@/ {print $1; exit}'")
        let address = try #require(UInt64(nm.trimmingCharacters(in: .whitespacesAndNewlines), radix: 16))
        let segments = try S.sh("readelf -lW \(libc) | awk '$1 == \"LOAD\" {print $2, $3}'")
        var expected: UInt64?
        for line in segments.split(separator: "\n") {
            let parts = line.split(separator: " ").compactMap { UInt64($0.dropFirst(2), radix: 16) }
            if parts.count == 2, address >= parts[1] { expected = address - parts[1] + parts[0] }
        }
        #expect(offset == expected)
    }

    @Test(.enabled(if: S.hasKprobes, "kernel has no kprobes (CONFIG_KPROBES off)"))
    func kprobesCountNanosleeps() throws {
        let obj = try S.loadWatchingThisProcess("links_probes")
        defer { obj.unload() }
        let entry = try obj.attach(program: "kp_sleep", target: AttachTarget())
        let exit = try obj.attach(program: "krp_sleep", target: AttachTarget())
        #expect(entry.kind == .kprobe)
        #expect(entry.target == "do_nanosleep")
        if S.describesPerfLinks {
            #expect(try entry.info().details["perf_event_type"] == "kprobe")
            #expect(try entry.info().details["func_name"] == "do_nanosleep")
            #expect(try exit.info().details["perf_event_type"] == "kretprobe")
        }
        for _ in 0..<10 { usleep(100) }
        #expect(try S.eventually { try S.u64(obj, "kprobe_hits") >= 10 && S.u64(obj, "kretprobe_hits") >= 10 })
        entry.detach()
        exit.detach()
        #expect(S.released(entry) && S.released(exit))
        let stopped = try S.u64(obj, "kprobe_hits")
        for _ in 0..<10 { usleep(100) }
        #expect(try S.u64(obj, "kprobe_hits") == stopped)
        var target = AttachTarget()
        target.function = "bdlink_no_such_function"
        #expect {
            try obj.attach(program: "kp_sleep", target: target)
        } throws: { error in
            guard case .unknownFunction(let name, _) = error as? LinkError else { return false }
            return name == "bdlink_no_such_function"
        }
    }

    @Test(.enabled(if: S.hasKprobeMulti, "kernel has no kprobe_multi links (CONFIG_KPROBES or CONFIG_FPROBE off)"))
    func kprobeMultiCountsNanosleeps() throws {
        let obj = try S.loadWatchingThisProcess("links_probes")
        defer { obj.unload() }
        let multi = try obj.attach(program: "kmulti_sleep", target: AttachTarget())
        defer { multi.detach() }
        #expect(multi.kind == .kprobeMulti)
        #expect(multi.target == "do_nanoslee? (1 functions)")
        let info = try multi.info()
        #expect(info.typeName == "kprobe_multi")
        #expect(info.details["count"] == "1")
        for _ in 0..<10 { usleep(100) }
        #expect(try S.eventually { try S.u64(obj, "kmulti_hits") >= 10 })
    }

    @Test(.enabled(if: S.hasKprobes && !S.hasKprobeMulti, "needs a kernel with kprobes but without kprobe_multi (CONFIG_FPROBE off), as Debian's 6.1"))
    func withoutFprobeKprobeMultiSaysWhy() throws {
        let obj = try S.loadWatchingThisProcess("links_probes")
        defer { obj.unload() }
        #expect {
            try obj.attach(program: "kmulti_sleep", target: AttachTarget())
        } throws: { error in
            guard case .unknownFunction(_, let reason) = error as? LinkError else { return false }
            return reason.contains("kprobe_multi")
        }
    }

    @Test(.enabled(if: !S.hasKprobes, "the kernel has kprobes: kprobesCountNanosleeps covers them"), .needsBPF)
    func withoutKprobesAttachingSaysWhy() throws {
        let obj = try S.loadWatchingThisProcess("links_probes")
        defer { obj.unload() }
        for program in ["kp_sleep", "krp_sleep", "kmulti_sleep"] {
            #expect {
                try obj.attach(program: program, target: AttachTarget())
            } throws: { error in
                guard case .unknownFunction(_, let reason) = error as? LinkError else { return false }
                return reason.contains("kprobe")
            }
        }
    }
}
