import BPFObject
import BPFTestSupport
import Foundation
import Glibc
import Testing

@testable import BPFKernel

/// The ksyms fixture loaded on this kernel and run with BPF_PROG_TEST_RUN; what it stored is
/// checked against what /proc/kallsyms and sysfs say, read here independently.
@Suite("ksym externs: typeless from /proc/kallsyms, typed per-CPU through vmlinux BTF, loaded and run",
       .enabled(if: SysTestSupport.bpfPermitted, SysTestSupport.skipMessage))
struct KsymTests {
    static let cpuSlots = 8   // KSYM_CPUS in the fixture

    static func spec() throws -> ObjectSpec {
        try ObjectSpec(elf: Fixtures.bytes("ksyms"), name: "ksyms")
    }

    static func le<T: FixedWidthInteger>(_ obj: LoadedObject, _ name: String, at index: Int = 0, as: T.Type = T.self) throws -> T {
        let bytes = try obj.read(variable: name)
        let offset = index * MemoryLayout<T>.size
        try #require(offset + MemoryLayout<T>.size <= bytes.count)
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }.littleEndian
    }

    /// The typed per-CPU reads: each possible CPU's runqueue says it is that CPU, this CPU's
    /// runqueue is the CPU the program ran on, and no tracing program was active there.
    static func checkTypedReads(_ obj: LoadedObject) throws {
        let cpus = try #require(KsymRequirements.possibleCPUs)
        for i in 0..<cpuSlots {
            let rqCPU: Int32 = try le(obj, "rq_cpu", at: i)
            #expect(rqCPU == (i < cpus ? Int32(i) : -1), "runqueues.cpu on CPU \(i) (\(cpus) possible)")
            if i >= cpus { #expect(try le(obj, "rq_addr", at: i, as: UInt64.self) == 0) }
        }
        let thisCPU: UInt32 = try le(obj, "this_cpu")
        #expect(Int(thisCPU) < cpus)
        #expect(try le(obj, "this_rq_cpu", as: Int32.self) == Int32(thisCPU))
        #expect(try le(obj, "prog_active", as: Int32.self) == 0)
        #expect(try le(obj, "have_no_such_percpu", as: UInt32.self) == 0)
    }

    @Test("typeless addresses are /proc/kallsyms's (0 included), typed per-CPU reads are each CPU's own",
          .enabled(if: KsymRequirements.listsDataSymbols, KsymRequirements.dataSymbolsReason),
          .enabled(if: KsymRequirements.listsPerCPUVars, KsymRequirements.perCPUVarsKallsymsReason),
          .enabled(if: KsymRequirements.vmlinuxHasPerCPUVars, KsymRequirements.perCPUVarsReason))
    func loadsAndRuns() throws {
        let kallsyms = try #require(KsymRequirements.kallsyms)
        print("kernel \(KernelVersion.release): /proc/kallsyms lists " + KsymRequirements.dataSymbols.map { n in
            let e = kallsyms[n]?.first
            return "\(e.map { String($0.type) } ?? "?") \(n) 0x\(String(e?.address ?? 0, radix: 16))"
        }.joined(separator: ", "))

        let obj = try Loader.load(Self.spec())
        defer { obj.unload() }
        for run in 1...2 {
            #expect(try obj.run(program: "ksym_run").returnValue == 0)
            #expect(try Self.le(obj, "runs", as: UInt32.self) == UInt32(run))

            #expect(try Self.le(obj, "per_cpu_start_addr", as: UInt64.self) == KsymRequirements.address("__per_cpu_start"))
            #expect(try Self.le(obj, "per_cpu_offset_addr", as: UInt64.self) == KsymRequirements.address("__per_cpu_offset"))
            #expect(try Self.le(obj, "init_task_addr", as: UInt64.self) == KsymRequirements.address("init_task"))
            // Weak and absent: 0. The ___flavor one too: typeless ksyms keep their full name.
            #expect(try Self.le(obj, "missing_addr", as: UInt64.self) == 0)
            #expect(try Self.le(obj, "flavored_addr", as: UInt64.self) == 0)

            try Self.checkTypedReads(obj)
            // The typed per-CPU pointers agree with the typeless data: CPU i's runqueue is at
            // runqueues' per-CPU offset (kallsyms) plus __per_cpu_offset[i] (read by the program).
            let runqueues = try #require(KsymRequirements.address("runqueues"))
            let cpus = try #require(KsymRequirements.possibleCPUs)
            for i in 0..<min(cpus, Self.cpuSlots) {
                let offset: UInt64 = try Self.le(obj, "cpu_offset", at: i)
                #expect(offset != 0, "__per_cpu_offset[\(i)]")
                #expect(try Self.le(obj, "rq_addr", at: i, as: UInt64.self) == runqueues &+ offset, "CPU \(i)")
            }
        }
    }

    /// Needs only the per-CPU variables in kallsyms and BTF: the typeless externs are made weak,
    /// so those kallsyms lacks load as 0 (libbpf's rule for weak ones) and those it has as
    /// their address.
    @Test("typed per-CPU ksyms read each CPU's runqueue and bpf_prog_active (typeless externs made weak)",
          .enabled(if: KsymRequirements.listsPerCPUVars, KsymRequirements.perCPUVarsKallsymsReason),
          .enabled(if: KsymRequirements.vmlinuxHasPerCPUVars, KsymRequirements.perCPUVarsReason))
    func typedWithWeakTypeless() throws {
        var spec = try Self.spec()
        for i in spec.externs.indices where spec.externs[i].kind == .ksym(typed: false) { spec.externs[i].weak = true }
        let obj = try Loader.load(spec)
        defer { obj.unload() }
        #expect(try obj.run(program: "ksym_run").returnValue == 0)
        try Self.checkTypedReads(obj)
        for (variable, name) in [("per_cpu_start_addr", "__per_cpu_start"), ("per_cpu_offset_addr", "__per_cpu_offset"),
                                 ("init_task_addr", "init_task")] {
            #expect(try Self.le(obj, variable, as: UInt64.self) == KsymRequirements.address(name) ?? 0, "\(name)")
        }
        #expect(try Self.le(obj, "missing_addr", as: UInt64.self) == 0)
    }

    /// Where kallsyms lacks a data symbol, the strong typeless externs fail the load before
    /// anything is created, naming the first missing one in libbpf's order (by name).
    @Test("a strong typeless ksym /proc/kallsyms lacks fails the load, named",
          .enabled(if: KsymRequirements.kallsyms != nil && !KsymRequirements.missingDataSymbols.filter({ $0 != "runqueues" }).isEmpty,
                   "/proc/kallsyms lists every data symbol the fixture's strong typeless ksyms name"),
          .enabled(if: KsymRequirements.vmlinuxHasPerCPUVars, KsymRequirements.perCPUVarsReason))
    func strongTypelessMissing() throws {
        let spec = try Self.spec()
        let first = try #require(spec.externs.first { $0.kind == .ksym(typed: false) && !$0.weak && KsymRequirements.address($0.name) == nil })
        #expect(throws: LoaderError.extern(name: first.name, reason: "(strong): not resolved: not in /proc/kallsyms")) {
            let obj = try Loader.load(spec)
            obj.unload()
        }
    }
}
