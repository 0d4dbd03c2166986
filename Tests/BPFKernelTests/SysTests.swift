import Foundation
import Glibc
import Testing

@testable import BPFKernel
import KernelTestSupport

/// Shared facts for the syscall-layer tests.
enum SysTestSupport {
    /// False only when bpf() answers EPERM (no CAP_BPF/CAP_SYS_ADMIN); any other failure must
    /// surface in the tests themselves.
    static var bpfPermitted: Bool { KernelRequirements.bpfPermitted }

    static let skipMessage: Comment =
        "bpf() returned EPERM: the kernel tests need root or CAP_BPF + CAP_SYS_ADMIN"

    /// Tests run in parallel in one process, and one process can map a given address range only
    /// once, so each arena test gets its own 4 GiB-aligned slot (away from the 1<<44 that
    /// fixtures commonly use).
    static func arenaAddress(slot: UInt64) -> UInt64 {
        0x1F5E_0000_0000 + slot << 32
    }

    static var pageSize: Int { MappedRegion.pageSize }

    static func le32(_ value: UInt32) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// A complete BTF blob with one type: `int`, 4 bytes, `bits` wide.
    static func intBTF(bits: UInt32) -> [UInt8] {
        let strings: [UInt8] = [0] + Array("int".utf8) + [0]
        let types = le32(1) + le32(1 << 24) + le32(4) + le32(bits)
        let header: [UInt8] =
            [0x9F, 0xEB, 1, 0] + le32(24) + le32(0) + le32(UInt32(types.count))
            + le32(UInt32(types.count)) + le32(UInt32(strings.count))
        return header + types + strings
    }

    static func socketFilter(_ instructions: [UInt64], name: String) -> ProgramLoadRequest {
        ProgramLoadRequest(
            type: BPFConstants.ProgramType.socketFilter, instructions: instructions, license: "GPL",
            name: name)
    }

    static func arena(pages: UInt32, mapExtra: UInt64, name: String) throws -> BPFFD {
        try BPFSys.mapCreate(
            type: BPFConstants.MapType.arena, keySize: 0, valueSize: 0, maxEntries: pages,
            flags: BPFConstants.MapFlag.mmapable, name: name, mapExtra: mapExtra)
    }

    /// The numbers in /proc/self/fd, without opendir's own descriptor.
    static func openDescriptors() -> [Int32] {
        guard let dir = opendir("/proc/self/fd") else { return [] }
        defer { closedir(dir) }
        let own = dirfd(dir)
        var numbers: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let number = Int32(name), number != own { numbers.append(number) }
        }
        return numbers
    }

    /// Open descriptors of BPF maps whose /proc/self/fdinfo shows `value_size` (a size only
    /// the hygiene test uses, so tests running in parallel cannot disturb the count).
    static func openMapDescriptors(valueSize: Int) -> Int {
        openDescriptors().filter { fd in
            guard let file = fopen("/proc/self/fdinfo/\(fd)", "r") else { return false }
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 256)
            while fgets(&line, Int32(line.count), file) != nil {
                let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if text == "value_size:\t\(valueSize)\n" { return true }
            }
            return false
        }.count
    }

    /// Whether /proc/self/mounts lists a bpf filesystem at /sys/fs/bpf.
    static var bpffsMounted: Bool {
        guard let file = fopen("/proc/self/mounts", "r") else { return false }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ")
            if fields.count > 2 && fields[1] == "/sys/fs/bpf" && fields[2] == "bpf" {
                return true
            }
        }
        return false
    }
}

@Suite("bpf(2) syscall layer", .enabled(if: SysTestSupport.bpfPermitted, SysTestSupport.skipMessage))
struct SysTests {
    typealias Support = SysTestSupport

    // MARK: maps

    @Test("array map: update then lookup returns the bytes; info reports the shape")
    func arrayRoundTrip() throws {
        let map = try BPFSys.mapCreate(
            type: BPFConstants.MapType.array, keySize: 4, valueSize: 8, maxEntries: 4, name: "sys_array")
        let value: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        try BPFSys.mapUpdate(fd: map, key: Support.le32(2), value: value)
        #expect(try BPFSys.mapLookup(fd: map, key: Support.le32(2), valueSize: 8) == value)
        #expect(try BPFSys.mapLookup(fd: map, key: Support.le32(3), valueSize: 8) == [UInt8](repeating: 0, count: 8))

        let info = try BPFSys.objGetInfoByFD(mapFD: map)
        #expect(info.type == BPFConstants.MapType.array)
        #expect(info.keySize == 4 && info.valueSize == 8 && info.maxEntries == 4)
        #expect(info.name == "sys_array")
        #expect(info.id > 0)
    }

    @Test("frozen map: a user-space update fails with EPERM, reads still work")
    func freezeBlocksUpdates() throws {
        let map = try BPFSys.mapCreate(
            type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1, name: "sys_frozen")
        try BPFSys.mapUpdate(fd: map, key: Support.le32(0), value: Support.le32(41))
        try BPFSys.mapFreeze(fd: map)
        let error = #expect(throws: BPFError.self) {
            try BPFSys.mapUpdate(fd: map, key: Support.le32(0), value: Support.le32(42))
        }
        #expect(error?.errno == EPERM)
        if case .syscall(let command, _, _) = error {
            #expect(command == .mapUpdateElem)
        } else {
            Issue.record("expected a syscall error, got \(String(describing: error))")
        }
        #expect(try BPFSys.mapLookup(fd: map, key: Support.le32(0), valueSize: 4) == Support.le32(41))
    }

    @Test("hash map: get_next_key visits every key once; delete and lookup of absent keys")
    func hashIteration() throws {
        let map = try BPFSys.mapCreate(
            type: BPFConstants.MapType.hash, keySize: 4, valueSize: 4, maxEntries: 8, name: "sys_hash")
        let keys: Set<UInt32> = [3, 17, 4_000_000]
        for key in keys {
            try BPFSys.mapUpdate(
                fd: map, key: Support.le32(key), value: Support.le32(key * 2),
                flags: BPFConstants.UpdateFlag.noExist)
        }
        var seen: [UInt32] = []
        var cursor: [UInt8]? = nil
        while let next = try BPFSys.mapGetNextKey(fd: map, key: cursor, keySize: 4) {
            seen.append(next.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
            cursor = next
        }
        #expect(seen.count == keys.count)
        #expect(Set(seen) == keys)

        #expect(try BPFSys.mapDelete(fd: map, key: Support.le32(17)))
        #expect(try !BPFSys.mapDelete(fd: map, key: Support.le32(17)))
        #expect(try BPFSys.mapLookup(fd: map, key: Support.le32(17), valueSize: 4) == nil)
        #expect(try BPFSys.mapLookup(fd: map, key: Support.le32(3), valueSize: 4) == Support.le32(6))
    }

    @Test("map_create failure: typed error with command, errno and a lowercase message")
    func mapCreateErrorContext() throws {
        // An array's key is a 4-byte index; the kernel refuses any other key size.
        let error = #expect(throws: BPFError.self) {
            try BPFSys.mapCreate(
                type: BPFConstants.MapType.array, keySize: 8, valueSize: 4, maxEntries: 1, name: "bad array!")
        }
        guard case .syscall(let command, let errno, let context) = error else {
            Issue.record("expected a syscall error, got \(String(describing: error))")
            return
        }
        #expect(command == .mapCreate)
        #expect(errno == EINVAL)
        #expect(context.contains("\"bad_array_\""))
        let message = String(describing: try #require(error))
        #expect(message.hasPrefix("bpf(BPF_MAP_CREATE) failed with EINVAL (invalid argument) while creating map"))
    }

    // MARK: programs

    @Test("socket filter `r0 = 7; exit` test-runs to 7 and reports its name")
    func socketFilterTestRun() throws {
        let program = try BPFSys.progLoad(
            Support.socketFilter([SysInstruction.mov64(dst: 0, imm: 7), SysInstruction.exit()], name: "sys_ret7"))
        let packet = [UInt8](repeating: 0xAB, count: 64)
        let result = try BPFSys.progTestRun(fd: program, dataIn: packet, dataOutSize: 128)
        #expect(result.returnValue == 7)
        // The kernel runs socket filters past the Ethernet header and hands back the whole
        // packet; the 14-byte L2 header it rebuilds is not ours to compare.
        #expect(result.dataOut.count == packet.count)
        #expect(result.dataOut.dropFirst(14) == packet.dropFirst(14))

        let info = try BPFSys.objGetInfoByFD(programFD: program)
        #expect(info.type == BPFConstants.ProgramType.socketFilter)
        #expect(info.name == "sys_ret7")
        #expect(info.tag.count == 8 && info.tag != [UInt8](repeating: 0, count: 8))
    }

    @Test("verifier rejection: VerifierError carries the log naming R2 !read_ok")
    func verifierErrorCarriesLog() throws {
        let error = #expect(throws: BPFError.self) {
            try BPFSys.progLoad(
                Support.socketFilter([SysInstruction.mov64(dst: 0, src: 2), SysInstruction.exit()], name: "sys_bad"))
        }
        guard case .verifier(let verifier) = error else {
            Issue.record("expected a verifier error, got \(String(describing: error))")
            return
        }
        #expect(verifier.programName == "sys_bad")
        #expect(verifier.errno == EACCES)
        #expect(verifier.log.contains("R2 !read_ok"))
        #expect(!verifier.logTruncated)
        #expect(verifier.description.hasPrefix("verifier rejected program \"sys_bad\" with EACCES"))
        #expect(verifier.summary.contains("R2 !read_ok"))
    }

    @Test("a verifier log larger than the first buffer grows until it fits")
    func verifierLogGrows() throws {
        // Level 1 logs every instruction, so 6,000 of them overflow the 64 KiB first buffer.
        let filler = [UInt64](repeating: SysInstruction.mov64(dst: 0, imm: 1), count: 6_000)
        let error = #expect(throws: BPFError.self) {
            try BPFSys.progLoad(
                Support.socketFilter(filler + [SysInstruction.mov64(dst: 0, src: 2), SysInstruction.exit()], name: "sys_biglog"))
        }
        guard case .verifier(let verifier) = error else {
            Issue.record("expected a verifier error, got \(String(describing: error))")
            return
        }
        #expect(verifier.errno == EACCES)
        #expect(verifier.log.utf8.count > VerifierLogPolicy.initialLogSize)
        #expect(!verifier.logTruncated)
        #expect(verifier.log.hasPrefix("func#0") || verifier.log.hasPrefix("0: "))
        #expect(verifier.log.contains("R2 !read_ok"))
    }

    @Test("prog_bind_map: the bound map shows in the program's map count")
    func bindMap() throws {
        let map = try BPFSys.mapCreate(
            type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1, name: "sys_bound")
        let program = try BPFSys.progLoad(
            Support.socketFilter([SysInstruction.mov64(dst: 0, imm: 0), SysInstruction.exit()], name: "sys_bind"))
        #expect(try BPFSys.objGetInfoByFD(programFD: program).mapIDCount == 0)
        try BPFSys.progBindMap(progFD: program, mapFD: map)
        #expect(try BPFSys.objGetInfoByFD(programFD: program).mapIDCount == 1)
    }

    @Test("ids: map and program fds reopened by id are the same objects")
    func fdByID() throws {
        let map = try BPFSys.mapCreate(
            type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1, name: "sys_byid")
        let mapID = try BPFSys.objGetInfoByFD(mapFD: map).id
        let reopened = try BPFSys.mapGetFDByID(mapID)
        #expect(reopened.rawValue != map.rawValue)
        #expect(try BPFSys.objGetInfoByFD(mapFD: reopened).id == mapID)

        let program = try BPFSys.progLoad(
            Support.socketFilter([SysInstruction.mov64(dst: 0, imm: 0), SysInstruction.exit()], name: "sys_byid"))
        let programID = try BPFSys.objGetInfoByFD(programFD: program).id
        #expect(try BPFSys.objGetInfoByFD(programFD: BPFSys.progGetFDByID(programID)).name == "sys_byid")
        #expect(try BPFSys.progGetNextID(after: programID - 1) == programID)
        #expect(try BPFSys.mapGetNextID(after: mapID - 1) == mapID)
    }

    @Test(
        "pin and get: the pinned map reopens with the same id",
        .enabled(if: SysTestSupport.bpffsMounted, "no bpffs at /sys/fs/bpf"))
    func pinAndGet() throws {
        let map = try BPFSys.mapCreate(
            type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1, name: "sys_pinned")
        let id = try BPFSys.objGetInfoByFD(mapFD: map).id
        let path = "/sys/fs/bpf/bpfdepot_systest_\(getpid())_\(id)"
        try BPFSys.objPin(fd: map, path: path)
        defer { unlink(path) }
        let again = try BPFSys.objGet(path: path)
        #expect(try BPFSys.objGetInfoByFD(mapFD: again).id == id)
        let missing = #expect(throws: BPFError.self) { try BPFSys.objGet(path: path + "_missing") }
        #expect(missing?.errno == ENOENT)
    }

    // MARK: arenas and mmap

    @Test("arena at map_extra: mapped there with MAP_FIXED_NOREPLACE, bytes round-trip", .needsArenaMaps, .arenaTally)
    func arenaAtFixedAddress() throws {
        let address = Support.arenaAddress(slot: 1)
        let pages = 4
        let arena = try Support.arena(pages: UInt32(pages), mapExtra: address, name: "sys_arena1")
        #expect(try BPFSys.objGetInfoByFD(mapFD: arena).mapExtra == address)
        let length = pages * Support.pageSize
        let region = try MappedRegion.mmap(fd: arena, length: length, protection: .readWrite, at: address)
        #expect(region.address == address)
        try region.write([0x5A], at: 0)
        try region.write([0xC3, 0x3C], at: length - 2)
        #expect(try region.read(at: 0, count: 1) == [0x5A])
        #expect(try region.read(at: length - 2, count: 2) == [0xC3, 0x3C])
        #expect(throws: BPFError.self) { try region.read(at: length - 1, count: 2) }
        region.unmap()
        #expect(throws: BPFError.self) { try region.read(at: 0, count: 1) }
    }

    @Test("a second arena at the same address fails with the clear EEXIST error", .needsArenaMaps, .arenaTally)
    func arenaAddressClash() throws {
        let address = Support.arenaAddress(slot: 2)
        let length = 2 * Support.pageSize
        let first = try Support.arena(pages: 2, mapExtra: address, name: "sys_clash_a")
        let firstRegion = try MappedRegion.mmap(fd: first, length: length, protection: .readWrite, at: address)
        try firstRegion.write([1], at: 0)

        let second = try Support.arena(pages: 2, mapExtra: address, name: "sys_clash_b")
        let error = #expect(throws: BPFError.self) {
            try MappedRegion.mmap(fd: second, length: length, protection: .readWrite, at: address)
        }
        #expect(error == .addressRangeInUse(address: address, length: length))
        #expect(error?.errno == EEXIST)
        #expect(String(describing: try #require(error)).contains("is already mapped in this process (EEXIST)"))
        // The first arena's bytes were not clobbered.
        #expect(try firstRegion.read(at: 0, count: 1) == [1])
    }

    @Test("arena with map_extra 0: the kernel picks the address", .needsArenaMaps, .arenaTally)
    func arenaKernelPicksAddress() throws {
        let length = Support.pageSize
        let arena = try Support.arena(pages: 1, mapExtra: 0, name: "sys_arena0")
        let region = try MappedRegion.mmap(fd: arena, length: length, protection: .readWrite)
        #expect(region.address != 0)
        #expect(region.address % UInt64(Support.pageSize) == 0)
        try region.write([9, 8, 7], at: 100)
        #expect(try region.read(at: 100, count: 3) == [9, 8, 7])
    }

    @Test("mmapable array: an anonymous image remapped over the map keeps its address and shows the map's bytes")
    func remapImageOverMap() throws {
        let page = Support.pageSize
        let map = try BPFSys.mapCreate(
            type: BPFConstants.MapType.array, keySize: 4, valueSize: UInt32(page), maxEntries: 1,
            flags: BPFConstants.MapFlag.mmapable, name: "sys_data")
        let image = try MappedRegion.anonymous(length: page)
        try image.write(Array("hello".utf8), at: 0)
        let bytes = try image.read(at: 0, count: page)
        try BPFSys.mapUpdate(fd: map, key: Support.le32(0), value: bytes)
        let address = image.address
        try image.remapFixed(fd: map, protection: .readWrite)
        #expect(image.address == address)
        #expect(try image.read(at: 0, count: 5) == Array("hello".utf8))
        try image.write([0x21], at: 5)
        #expect(try BPFSys.mapLookup(fd: map, key: Support.le32(0), valueSize: page)?[5] == 0x21)
    }

    // MARK: btf

    @Test("btf upload of a one-INT blob returns an fd the kernel lists by id")
    func btfUpload() throws {
        let btf = try BPFSys.btfLoad(data: Support.intBTF(bits: 32))
        #expect(btf.rawValue > 0)
        let info = try BPFSys.objGetInfoByFD(btfFD: btf)
        #expect(!info.isKernelBTF)
        #expect(info.id > 0)
        #expect(info.size == UInt32(Support.intBTF(bits: 32).count))

        var ids: [UInt32] = []
        var cursor: UInt32 = 0
        while let next = try BPFSys.btfGetNextID(after: cursor) {
            ids.append(next)
            cursor = next
        }
        #expect(ids.contains(info.id))
        let reopened = try BPFSys.btfGetFDByID(info.id)
        #expect(try BPFSys.objGetInfoByFD(btfFD: reopened).id == info.id)
        // The first id is vmlinux's BTF.
        if let first = ids.first {
            let vmlinux = try BPFSys.objGetInfoByFD(btfFD: BPFSys.btfGetFDByID(first))
            #expect(vmlinux.isKernelBTF)
            #expect(vmlinux.name == "vmlinux")
        }
    }

    @Test("btf the kernel rejects comes back with its log")
    func btfRejected() throws {
        let error = #expect(throws: BPFError.self) {
            try BPFSys.btfLoad(data: Support.intBTF(bits: 64))
        }
        guard case .btfRejected(let errno, let log, _) = error else {
            Issue.record("expected a btf rejection, got \(String(describing: error))")
            return
        }
        #expect(errno == EINVAL)
        #expect(!log.isEmpty)
    }

    // MARK: probes and hygiene

    @Test("feature probes: every probe answers with a reason, and the arena probe matches a real map create")
    func featureProbes() throws {
        for probe in FeatureProbes.all {
            print("probe \(probe.feature.rawValue): \(probe.available ? "yes" : "no") — \(probe.reason)")
            #expect(!probe.reason.isEmpty)
            #expect(probe.reason.first?.isUppercase == false, "\(probe.reason)")
        }
        #expect(FeatureProbes.progBindMap())
        #expect(FeatureProbes.result(.vmlinuxBTF).available == FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux"))
        // Ground truth for the arena probe: a real arena map of another shape.
        let created = Result { try Support.arena(pages: 2, mapExtra: 0, name: "sys_probe_truth") }
        let arena = FeatureProbes.result(.arenaMaps)
        switch created {
        case .success(let fd):
            fd.close()
            #expect(arena.available)
        case .failure(let error):
            #expect(!arena.available)
            let errno = (error as? BPFError)?.errno
            #expect(arena.errno == errno)
            if errno == EPERM { #expect(arena.reason.hasPrefix("kernel refuses BPF arena maps: EPERM")) }
            if errno == EINVAL { #expect(arena.reason.contains("has no BPF arena maps")) }
        }
        // Module BTF: the probe sees modules exactly when /sys/kernel/btf lists more than vmlinux.
        let listed = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/btf")) ?? []).filter { $0 != "vmlinux" }
        #expect(FeatureProbes.result(.moduleBTF).available == !listed.isEmpty)
    }

    @Test("feature probes leave no descriptor behind")
    func featureProbesLeaveNothing() throws {
        for feature in FeatureProbe.Feature.allCases { _ = FeatureProbes.probe(feature) }  // warm caches
        let before = Support.openDescriptors().count
        let rounds = 50
        for _ in 0 ..< rounds {
            for feature in FeatureProbe.Feature.allCases { _ = FeatureProbes.probe(feature) }
        }
        let after = Support.openDescriptors().count
        print("feature probes: /proc/self/fd entries \(before) → \(after) over \(rounds) rounds of every probe")
        // Tests in parallel hold a few descriptors at any moment; one leaked descriptor per probe
        // run would add at least `rounds`.
        #expect(after - before < rounds)
    }

    @Test("ld_imm64 full-range probe matches a 1 GiB offset into a 2 GiB arena", .needsArenaMaps, .arenaTally)
    func ldimm64ProbeGroundTruth() throws {
        let fullRange = FeatureProbes.ldimm64FullRangeOff()

        // Ground truth for the ld_imm64 probe, in the case it exists for: the address 1 GiB
        // into a 2 GiB arena. Kernels that still cap direct value offsets at 512 MiB refuse it.
        let arena = try Support.arena(pages: 524_288, mapExtra: Support.arenaAddress(slot: 3), name: "sys_bigarena")
        let instructions =
            SysInstruction.loadMapValue(dst: 1, mapFD: arena.rawValue, offset: 1 << 30)
            + [SysInstruction.mov64(dst: 0, imm: 0), SysInstruction.exit()]
        let attempt = BPFSys.progLoadOnce(
            type: BPFConstants.ProgramType.socketFilter, instructions: instructions, license: "GPL",
            logLevel: 1, logSize: 4096)
        let kernelAccepts = attempt.fd != nil
        print("ld_imm64 at 1 GiB into a 2 GiB arena: \(kernelAccepts ? "accepted" : "rejected: \(attempt.log)")")
        #expect(fullRange == kernelAccepts)
        // Cached: the second answer is the first.
        #expect(FeatureProbes.ldimm64FullRangeOff() == fullRange)
    }

    @Test("fd hygiene: 1,000 create/close cycles leave no descriptor behind")
    func fdHygiene() throws {
        // A map shape no other test uses, so its descriptors can be counted exactly.
        let valueSize = 4093
        func cycleMap(_ name: String) throws -> BPFFD {
            try BPFSys.mapCreate(
                type: BPFConstants.MapType.array, keySize: 4, valueSize: UInt32(valueSize),
                maxEntries: 1, name: name)
        }
        let before = Support.openDescriptors().count
        #expect(Support.openMapDescriptors(valueSize: valueSize) == 0)
        var numbers = Set<Int32>()
        for _ in 0..<1_000 {
            let map = try cycleMap("sys_fdcycle")
            numbers.insert(map.rawValue)
            map.close()
            #expect(map.isClosed)
        }
        // Dropped BPFFDs close in deinit.
        for _ in 0..<100 {
            numbers.insert(try cycleMap("sys_fdscope").rawValue)
        }
        let held = try cycleMap("sys_fdheld")
        #expect(Support.openMapDescriptors(valueSize: valueSize) == 1)
        held.close()

        let after = Support.openDescriptors().count
        print("fd hygiene: /proc/self/fd entries before \(before), after \(after); "
            + "distinct fd numbers over 1,100 maps: \(numbers.count)")
        #expect(Support.openMapDescriptors(valueSize: valueSize) == 0)
        // The kernel hands out the lowest free number, so without a leak a few numbers recur.
        #expect(numbers.count < 100)
        // Exact when run alone; other tests running in parallel hold at most a few fds.
        #expect(abs(after - before) < 50)
    }
}

/// Checks that never reach the kernel, so they run even without CAP_BPF.
@Suite("bpf(2) syscall layer, before the kernel")
struct SysArgumentTests {
    typealias Support = SysTestSupport

    @Test("object names are sanitised to [A-Za-z0-9_.] and 15 bytes")
    func objectNameSanitising() {
        #expect(BPFSys.objectName("my-map.name/with spaces") == "my_map.name_wit")
        #expect(BPFSys.objectName("ok_name.1") == "ok_name.1")
        #expect(BPFSys.objectName("é") == "__")
        #expect(BPFSys.objectName("") == "")
    }

    @Test("malformed requests are refused before the kernel sees them")
    func progLoadArgumentChecks() {
        func isInvalidArgument(_ error: BPFError?) -> Bool {
            if case .invalidArgument = error { return true }
            return false
        }
        var request = Support.socketFilter([SysInstruction.exit()], name: "sys_args")
        request.instructions.removeLast()
        #expect(isInvalidArgument(#expect(throws: BPFError.self) { try BPFSys.progLoad(request) }))
        request = Support.socketFilter([SysInstruction.exit()], name: "sys_args")
        request.funcInfo = [1, 2, 3]
        request.funcInfoRecordSize = 8
        #expect(isInvalidArgument(#expect(throws: BPFError.self) { try BPFSys.progLoad(request) }))
        request = Support.socketFilter([SysInstruction.exit()], name: "sys_args")
        request.attachProgramFD = BPFFD(adopting: -1)
        request.attachBTFObjectFD = BPFFD(adopting: -1)
        #expect(isInvalidArgument(#expect(throws: BPFError.self) { try BPFSys.progLoad(request) }))
    }
}
