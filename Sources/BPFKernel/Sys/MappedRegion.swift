import Glibc
import Synchronization

/// An mmap of a BPF map (array with `mmapable`, arena, ringbuf) or an anonymous image, unmapped
/// on `unmap()` or deinit.
///
/// Placement rule: we never use plain MAP_FIXED on an address we do not own, because it silently
/// replaces whatever is mapped there (libbpf does use it for arenas; a second arena with the same
/// `map_extra` would then clobber the first). A requested address is mapped with
/// MAP_FIXED_NOREPLACE, which fails with EEXIST instead → `BPFError.addressRangeInUse`.
/// MAP_FIXED is used only by `remapFixed`, over this region's own pages.
///
/// Sendable: the address and length never change; whether the range is still mapped is guarded
/// by a `Mutex`, and every access holds it, so `unmap()` cannot race a read or write. The bytes
/// themselves are shared memory: BPF programs may write them concurrently, as with any mmap'ed
/// map, and the accessors make no atomicity promise beyond that of a byte copy.
public final class MappedRegion: Sendable {
    public struct Protection: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let read = Protection(rawValue: PROT_READ)
        public static let write = Protection(rawValue: PROT_WRITE)
        public static let readWrite: Protection = [.read, .write]
    }

    /// The start address in this process.
    public let address: UInt64
    public let length: Int
    private let mapped: Mutex<Bool>

    private init(address: UInt64, length: Int) {
        self.address = address
        self.length = length
        self.mapped = Mutex(true)
    }

    public static var pageSize: Int {
        Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Maps `length` bytes of the BPF object behind `fd` (MAP_SHARED, as the kernel requires).
    ///
    /// - `address` nil: the kernel picks (for an arena with `map_extra` 0 this fixes the arena's
    ///   user range at the chosen address).
    /// - `address` set, `fixedNoReplace` true: exactly there, or `.addressRangeInUse`.
    /// - `address` set, `fixedNoReplace` false: a hint the kernel may ignore.
    public static func mmap(
        fd: BPFFD,
        length: Int,
        protection: Protection,
        at address: UInt64? = nil,
        fixedNoReplace: Bool = true,
        offset: Int = 0
    ) throws(BPFError) -> MappedRegion {
        var flags = MAP_SHARED
        if address != nil && fixedNoReplace {
            flags |= BPFConstants.mapFixedNoReplace
        }
        let region = try map(
            length: length, protection: protection, flags: flags, fd: fd.rawValue, offset: offset,
            at: address, exact: address != nil && fixedNoReplace,
            context: "mapping bpf fd \(fd.rawValue)")
        withExtendedLifetime(fd) {}
        return region
    }

    /// Anonymous shared memory, to stage a map's initial image before the map exists (libbpf's
    /// scheme for global data: fill the image, create the map, then `remapFixed` it in place so
    /// pointers into the image stay valid).
    public static func anonymous(length: Int) throws(BPFError) -> MappedRegion {
        try map(
            length: length, protection: .readWrite, flags: MAP_SHARED | MAP_ANONYMOUS, fd: -1, offset: 0,
            at: nil, exact: false, context: "allocating an anonymous image")
    }

    /// Replaces this region's pages, in place, with a mapping of `fd` (after BPF_MAP_UPDATE_ELEM
    /// copied the image into the map). MAP_FIXED is safe here: the range is ours.
    public func remapFixed(fd: BPFFD, protection: Protection) throws(BPFError) {
        try mapped.withLock { (isMapped: inout Bool) throws(BPFError) in
            guard isMapped else { throw .regionUnmapped(address: address) }
            let result = Glibc.mmap(
                UnsafeMutableRawPointer(bitPattern: UInt(address)), length, protection.rawValue,
                MAP_SHARED | MAP_FIXED, fd.rawValue, 0)
            let errno = Glibc.errno
            if Self.failed(result) {
                throw .mmap(
                    errno: errno, address: address, length: length,
                    context: "remapping the image over bpf fd \(fd.rawValue)")
            }
        }
        withExtendedLifetime(fd) {}
    }

    /// Copies `count` bytes starting at `offset`.
    public func read(at offset: Int, count: Int) throws(BPFError) -> [UInt8] {
        try withBytes { (bytes: UnsafeMutableRawBufferPointer) throws(BPFError) in
            try checkBounds(offset: offset, count: count)
            return Array(bytes[offset..<(offset + count)])
        }
    }

    /// Runs `body` over `count` bytes at `offset`, in place (under the region's lock; the
    /// buffer must not escape `body`).
    public func withBytes<R>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) -> R) throws(BPFError) -> R {
        try withBytes { (bytes: UnsafeMutableRawBufferPointer) throws(BPFError) in
            try checkBounds(offset: offset, count: count)
            return body(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
        }
    }

    /// Copies `bytes` to `offset`.
    public func write(_ source: [UInt8], at offset: Int) throws(BPFError) {
        try withBytes { (bytes: UnsafeMutableRawBufferPointer) throws(BPFError) in
            try checkBounds(offset: offset, count: source.count)
            UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + source.count)])
                .copyBytes(from: source)
        }
    }

    /// Runs `body` over the mapped bytes while holding the region's lock (so it cannot be
    /// unmapped meanwhile). The buffer must not escape `body`.
    public func withUnsafeMutableBytes<R>(
        _ body: (UnsafeMutableRawBufferPointer) throws(BPFError) -> R
    ) throws(BPFError) -> R {
        try withBytes(body)
    }

    /// Unmaps now. Idempotent.
    public func unmap() {
        mapped.withLock { isMapped in
            guard isMapped else { return }
            isMapped = false
            _ = munmap(UnsafeMutableRawPointer(bitPattern: UInt(address)), length)
        }
    }

    deinit {
        unmap()
    }

    private func withBytes<R>(
        _ body: (UnsafeMutableRawBufferPointer) throws(BPFError) -> R
    ) throws(BPFError) -> R {
        try mapped.withLock { (isMapped: inout Bool) throws(BPFError) -> R in
            guard isMapped else { throw .regionUnmapped(address: address) }
            let base = UnsafeMutableRawPointer(bitPattern: UInt(address))
            return try body(UnsafeMutableRawBufferPointer(start: base, count: length))
        }
    }

    private func checkBounds(offset: Int, count: Int) throws(BPFError) {
        guard offset >= 0, count >= 0, offset <= length, count <= length - offset else {
            throw .outOfBounds(offset: offset, count: count, regionLength: length)
        }
    }

    /// MAP_FAILED, which Swift does not import: `(void *)-1`.
    private static func failed(_ result: UnsafeMutableRawPointer?) -> Bool {
        guard let result else { return true }
        return Int(bitPattern: result) == -1
    }

    private static func map(
        length: Int, protection: Protection, flags: Int32, fd: Int32, offset: Int,
        at address: UInt64?, exact: Bool, context: String
    ) throws(BPFError) -> MappedRegion {
        guard length > 0 else {
            throw .invalidArgument("mmap length must be positive, found \(length)")
        }
        if let address, address % UInt64(pageSize) != 0 {
            throw .invalidArgument("mmap address \(BPFSys.hex(address)) is not aligned to the \(pageSize)-byte page size")
        }
        let hint = address.flatMap { UnsafeMutableRawPointer(bitPattern: UInt($0)) }
        let result = Glibc.mmap(hint, length, protection.rawValue, flags, fd, off_t(offset))
        let errno = Glibc.errno
        guard let result, !failed(result) else {
            if errno == EEXIST, exact, let address {
                throw .addressRangeInUse(address: address, length: length)
            }
            throw .mmap(errno: errno, address: address, length: length, context: context)
        }
        let actual = UInt64(UInt(bitPattern: result))
        if exact, let address, actual != address {
            // Pre-4.17 kernels ignore MAP_FIXED_NOREPLACE and treat the address as a hint.
            _ = munmap(result, length)
            throw .mappedElsewhere(requested: address, actual: actual, length: length)
        }
        return MappedRegion(address: actual, length: length)
    }
}
