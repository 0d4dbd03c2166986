import BPFObject
import BPFTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

@testable import BPFKernel
import KernelTestSupport

/// Loading the link fixtures, reading their counters, and making the things hooks need (network
/// namespaces, a cgroup v2, a binary to probe) for the link tests.
enum LinkTestSupport {
    static func load(_ fixture: String) throws -> LoadedObject {
        try Loader.load(ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture))
    }

    /// Loads a fixture that watches this process: its `target_tgid` is set before anything attaches.
    static func loadWatchingThisProcess(_ fixture: String) throws -> LoadedObject {
        let obj = try load(fixture)
        try obj.write(variable: "target_tgid", bytes: withUnsafeBytes(of: UInt32(getpid()).littleEndian, Array.init))
        return obj
    }

    static func u64(_ obj: LoadedObject, _ name: String) throws -> UInt64 {
        try obj.read(variable: name).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
    }

    /// getpid(2) `n` times. glibc stopped caching the pid in 2.25 (Debian 12 has 2.36), so each
    /// call enters the kernel; Swift cannot call the variadic syscall(2) to make sure.
    static func getpids(_ n: Int) {
        for _ in 0..<n { _ = getpid() }
    }

    /// Polls `condition` until it holds or `seconds` pass (packets and perf events may arrive a
    /// moment after the syscall that caused them returned).
    static func eventually(_ seconds: Double = 3, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// Waits until the kernel has let go of a detached link (its id no longer opens). Links
    /// without BPF_LINK_DETACH end with their last reference, and a child another test is
    /// spawning holds copies of this process's fds until it execs; checking that a counter
    /// stopped is meaningful only after that.
    static func released(_ link: AttachedLink, seconds: Double = 10) -> Bool {
        eventually(seconds) {
            do throws(BPFError) {
                try BPFSys.linkGetFDByID(link.id).close()
                return false
            } catch {
                return error.errno == ENOENT
            }
        }
    }

    /// A shell command; its failure carries stderr.
    @discardableResult
    static func sh(_ command: String) throws -> String {
        try Fixtures.run("/bin/sh", ["-c", command]).get()
    }

    /// Whether a fixture loads here, and if not the loader's reason (the host refuses some
    /// program types outright): for `.enabled(if:)`.
    static func loads(_ fixture: String) -> (ok: Bool, reason: String) {
        guard KernelRequirements.bpfPermitted else { return (false, "bpf() returned EPERM") }
        do {
            let obj = try load(fixture)
            obj.unload()
            return (true, "")
        } catch let LoaderError.verifier(v) {
            let early = v.log.contains("processed 0 insns") ? " before verifying any instruction" : ""
            return (false, "this kernel refuses \(fixture).bpf.c: loading program '\(v.programName)' failed with \(ErrnoName.describe(v.errno))\(early)")
        } catch {
            return (false, "this kernel refuses \(fixture).bpf.c: \(error)")
        }
    }

    static let trampolines = loads("links_trampoline")
    static let mapIterators = loads("links_map_iter")

    /// The kernel has kprobes (a kprobe PMU), as the 6.12 VM does and the host does not.
    static let hasKprobes = FileManager.default.fileExists(atPath: "/sys/bus/event_source/devices/kprobe/type")

    static func kernelAtLeast(_ major: UInt32, _ minor: UInt32) -> Bool {
        KernelVersion.code >= major << 16 | minor << 8
    }

    /// Linux 6.6 added tcx links and the perf_event part of link info.
    static let hasTCX = kernelAtLeast(6, 6)
    static let describesPerfLinks = kernelAtLeast(6, 6)
    static let tcxReason: Comment = "tcx links need Linux 6.6; this kernel is \(KernelVersion.release)"

    /// kprobe_multi links need CONFIG_FPROBE (Debian's 6.1 lacks it, its 6.12 has it).
    static let hasKprobeMulti = hasKprobes && (try? KernelConfig.running().values["CONFIG_FPROBE"]) == "y"

    static var tracefsMounted: Bool {
        ((try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? "")
            .split(separator: "\n").contains { $0.split(separator: " ").dropFirst(2).first == "tracefs" }
    }

    /// A unique short suffix for names (interfaces are limited to 15 bytes).
    static func suffix() -> String {
        String(UInt32.random(in: 0 ... 0xFFFFF), radix: 16)
    }
}

/// Two network namespaces joined by a veth pair, with TEST-NET-1 addresses (192.0.2.1 on
/// `a`'s end, 192.0.2.2 on `b`'s): traffic between them never leaves them. Removed by `close()`.
final class VethPair: @unchecked Sendable {
    let namespaceA: String
    let namespaceB: String
    let interfaceA: String
    let interfaceB: String

    init() throws {
        let s = LinkTestSupport.suffix()
        namespaceA = "bdlink-a-\(s)"
        namespaceB = "bdlink-b-\(s)"
        interfaceA = "bdla\(s)"
        interfaceB = "bdlb\(s)"
        do {
            try LinkTestSupport.sh("""
                set -e
                ip netns add \(namespaceA)
                ip netns add \(namespaceB)
                ip link add \(interfaceA) netns \(namespaceA) type veth peer name \(interfaceB) netns \(namespaceB)
                ip -n \(namespaceA) addr add 192.0.2.1/24 dev \(interfaceA)
                ip -n \(namespaceB) addr add 192.0.2.2/24 dev \(interfaceB)
                ip -n \(namespaceA) link set lo up
                ip -n \(namespaceB) link set lo up
                ip -n \(namespaceA) link set \(interfaceA) up
                ip -n \(namespaceB) link set \(interfaceB) up
                """)
        } catch {
            close()
            throw error
        }
    }

    /// `count` UDP datagrams to 192.0.2.1:9999 from namespace b (bash's /dev/udp, one socket each).
    func sendDatagrams(_ count: Int) throws {
        try LinkTestSupport.sh("ip netns exec \(namespaceB) bash -c 'for i in $(seq \(count)); do echo x > /dev/udp/192.0.2.1/9999; done'")
    }

    /// Deleting the namespaces destroys the veth pair, and with it whatever is attached to it.
    func close() {
        _ = try? LinkTestSupport.sh("ip netns del \(namespaceA) 2>/dev/null; ip netns del \(namespaceB) 2>/dev/null; true")
    }

    /// Runs `body` on a thread of its own that has entered namespace `name` (setns affects only
    /// the calling thread), so `if_nametoindex` and BPF_LINK_CREATE see that namespace's
    /// interfaces; the thread ends with `body`. The links made stay on their interfaces.
    static func inNamespace<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            let outcome = Result { () throws -> T in
                try enter(name)
                return try body()
            }
            result.withLock { $0 = outcome }
        }
        thread.start()
        done.wait()
        guard let outcome = result.withLock({ $0 }) else { throw NamespaceError(message: "the namespace thread returned nothing") }
        return try outcome.get()
    }

    struct NamespaceError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// setns(2) is not in Swift's Glibc module; it is in libc, found by name.
    private static func enter(_ name: String) throws {
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else { throw NamespaceError(message: "no setns in libc") }
        let setns = unsafeBitCast(symbol, to: SetNS.self)
        let fd = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NamespaceError(message: "cannot open /run/netns/\(name): errno \(errno)") }
        defer { Glibc.close(fd) }
        let cloneNewNet: Int32 = 0x4000_0000
        guard setns(fd, cloneNewNet) == 0 else { throw NamespaceError(message: "setns into \(name): errno \(errno)") }
    }
}

/// A cgroup v2 hierarchy mounted on a temporary directory, with one child cgroup for the test.
final class TestCgroup: @unchecked Sendable {
    let mountPoint: String
    let child: String

    init() throws {
        mountPoint = NSTemporaryDirectory() + "bdlink-cg2-\(LinkTestSupport.suffix())"
        child = mountPoint + "/test"
        do {
            try LinkTestSupport.sh("set -e; mkdir -p \(mountPoint); mount -t cgroup2 none \(mountPoint); mkdir \(child)")
        } catch {
            close()
            throw error
        }
    }

    /// Runs `command` with bash inside namespace `namespace`, in the child cgroup: the shell
    /// moves itself there first, so every socket it and its children open belongs to it.
    func run(inNamespace namespace: String, _ command: String) throws {
        try LinkTestSupport.sh("ip netns exec \(namespace) bash -c 'echo $$ > \(child)/cgroup.procs && \(command)'")
    }

    func close() {
        _ = try? LinkTestSupport.sh("rmdir \(child) 2>/dev/null; umount \(mountPoint) 2>/dev/null; rmdir \(mountPoint) 2>/dev/null; true")
    }
}

/// A tiny C program compiled with the system's gcc: `probe_target` (noinline) runs argv[1] times.
enum ProbedBinary {
    static let source = """
        #include <stdlib.h>
        __attribute__((noinline)) int probe_target(int x)
        {
        	asm volatile("" ::: "memory");
        	return x + 1;
        }
        int main(int argc, char **argv)
        {
        	int n = argc > 1 ? atoi(argv[1]) : 1, sum = 0;
        	for (int i = 0; i < n; i++)
        		sum += probe_target(i);
        	return sum == -1;
        }
        """

    struct BuildError: Error, CustomStringConvertible {
        let description: String
    }

    static let directory = NSTemporaryDirectory() + "bdlink-uprobe-\(getpid())"

    /// The binary's path (one per test process).
    static let path: Result<String, BuildError> = {
        let dir = directory
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Removed when the test process exits (the copies each test makes are removed by it).
        atexit { try? FileManager.default.removeItem(atPath: ProbedBinary.directory) }
        let src = dir + "/probed.c"
        let bin = dir + "/probed"
        do { try source.write(toFile: src, atomically: true, encoding: .utf8) } catch {
            return .failure(BuildError(description: "writing \(src): \(error)"))
        }
        return Fixtures.run("/usr/bin/gcc", ["-O2", "-o", bin, src]).map { _ in bin }.mapError { BuildError(description: $0.description) }
    }()

    /// A copy of the binary for one test: uprobes are set on an inode, so tests running at the
    /// same time each probe (and run) their own file and never count each other's calls.
    static func copy() throws -> String {
        let copy = try path.get() + "-" + LinkTestSupport.suffix()
        try LinkTestSupport.sh("cp \(path.get()) \(copy)")
        return copy
    }

    static func run(_ binary: String, _ times: Int) throws {
        try LinkTestSupport.sh("\(binary) \(times)")
    }
}
