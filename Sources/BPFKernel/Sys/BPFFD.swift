import Glibc
import Synchronization

/// An owned file descriptor for a BPF object (map, program, BTF, link).
///
/// Ownership: a `BPFFD` is the only owner of its descriptor. It closes it in `close()` or, at the
/// latest, in `deinit`; nobody else may close `rawValue`. The kernel object lives while any fd or
/// pin refers to it, so dropping the last `BPFFD` of an unpinned map destroys the map.
///
/// `rawValue` is a borrow: valid only while this object is alive and not closed. The wrappers in
/// `BPFSys` take `BPFFD` (not `Int32`) so they can hold it alive across the syscall.
///
/// Sendable: the descriptor lives in an `Atomic`, so concurrent `close()` calls close it once.
public final class BPFFD: Sendable, CustomStringConvertible {
    private let storage: Atomic<Int32>

    /// Takes ownership of `rawValue`, which must be an open descriptor nobody else closes.
    public init(adopting rawValue: Int32) {
        storage = Atomic(rawValue)
    }

    /// The descriptor, or -1 once closed.
    public var rawValue: Int32 {
        storage.load(ordering: .acquiring)
    }

    public var isClosed: Bool {
        rawValue < 0
    }

    /// Closes the descriptor now. Idempotent. Errors from close(2) are ignored: the descriptor is
    /// released by the kernel even when close reports EINTR/EIO, and retrying could close an fd
    /// number another thread has just been given.
    public func close() {
        let fd = storage.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 {
            _ = Glibc.close(fd)
        }
    }

    public var description: String {
        "BPFFD(\(rawValue))"
    }

    deinit {
        close()
    }
}
