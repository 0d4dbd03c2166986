import BPFKernel
import Foundation
import Glibc
import Testing

/// What this kernel lets the tests do, probed once per test process (the loader's own probes),
/// so that a test the kernel cannot run is skipped with the kernel's reason, never passed.
public enum KernelRequirements {
    /// False only when bpf() answers EPERM for a plain array map (no CAP_BPF/CAP_SYS_ADMIN);
    /// any other failure must surface in the tests themselves.
    public static let bpfPermitted: Bool = {
        do {
            let map = try BPFSys.mapCreate(type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1)
            map.close()
            return true
        } catch {
            return (error as? BPFError)?.errno != EPERM
        }
    }()

    public static let bpfSkipMessage: Comment = "bpf() returned EPERM: the kernel tests need root or CAP_BPF + CAP_SYS_ADMIN"

    /// The arena probe's verdict; printed once so a run's log says why arena tests skipped.
    public static let arenaMaps: FeatureProbe = {
        let probe = FeatureProbes.result(.arenaMaps)
        if !probe.available {
            // stderr: `--list-tests` output on stdout stays a plain list.
            FileHandle.standardError.write(Data("kernel \(KernelVersion.release): arena tests skipped: \(probe.reason)\n".utf8))
        }
        return probe
    }()
}

extension Trait where Self == ConditionTrait {
    /// Runs only where bpf() is permitted at all.
    public static var needsBPF: Self {
        .enabled(if: KernelRequirements.bpfPermitted, KernelRequirements.bpfSkipMessage)
    }

    /// Runs only where BPF arena maps can be created; elsewhere skipped with the probe's reason
    /// (e.g. "kernel refuses BPF arena maps: EPERM"). Pair it with `.arenaTally`.
    public static var needsArenaMaps: Self {
        .enabled(if: KernelRequirements.bpfPermitted && KernelRequirements.arenaMaps.available,
                 Comment(rawValue: KernelRequirements.bpfPermitted
                         ? KernelRequirements.arenaMaps.reason : "bpf() returned EPERM"))
    }
}

/// Appends one line per arena test case that actually runs to `$BPFDEPOT_ARENA_TALLY`, so CI
/// can prove the arena tests ran on some kernel (skipped ones never reach this scope).
public struct ArenaTally: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        if testCase != nil, let path = ProcessInfo.processInfo.environment["BPFDEPOT_ARENA_TALLY"] {
            Self.append("\(KernelVersion.release)\t\(test.id)\n", to: path)
        }
        try await function()
    }

    private static func append(_ line: String, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        // One write(2) with O_APPEND: lines from parallel tests do not interleave.
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }
}

extension Trait where Self == ArenaTally {
    /// Counts this test (or every test of this suite) as an arena test that ran.
    public static var arenaTally: Self { ArenaTally() }
}
