import BPFObject
import Foundation

/// An uploaded BPF ELF object (without its bytes; see `DepotStore.elf(objectID:)`).
public struct StoredObject: Sendable, Equatable {
    /// SHA-256 of the ELF bytes, 64 lowercase hex digits.
    public var id: String
    public var name: String
    /// Size of the ELF in bytes.
    public var size: Int
    public var created: Date
    /// The revision whose images a load uses unless told otherwise.
    public var currentRevision: Int
    /// The trusted key that signed the upload (`serve --trusted-keys`), if one was required.
    public var signer: String? = nil
}

/// One section's initial image: what the kernel map holding it is filled with at load time.
public struct SectionImage: Sendable, Equatable {
    /// ELF section name: `.data`, `.rodata`, `.bss`, `.addr_space.1`, `.kconfig`, ...
    public var name: String
    public var bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    public init(_ section: DataSectionSpec) {
        self.init(name: section.name, bytes: section.image)
    }
}

extension Array where Element == SectionImage {
    /// The ELF's own images, in section order: what revision 1 of an object holds.
    public init(_ spec: ObjectSpec) {
        self = spec.dataSections.map(SectionImage.init)
    }
}

/// One entry in an object's image history.
public struct ImageRevision: Sendable, Equatable {
    public var revision: Int
    public var created: Date
    /// What changed, as the caller described it (text or JSON).
    public var change: String
}

public enum LoadState: String, Sendable, Equatable, CaseIterable {
    /// In the kernel now.
    case loaded
    /// Taken out on purpose.
    case unloaded
    /// Was loaded, but its kernel objects are gone (e.g. the service restarted without pins).
    case lost
    /// The load attempt failed (e.g. the verifier refused it).
    case failed
}

/// One attempt to put a revision of an object into the kernel, and what became of it.
public struct LoadRecord: Sendable, Equatable {
    public var id: Int64
    public var objectID: String
    public var revision: Int
    public var state: LoadState
    /// bpffs directory holding the pins, when the load was pinned.
    public var pinDirectory: String?
    /// The caller's JSON: kernel map and program ids.
    public var kernelIDs: String
    public var created: Date
    public var updated: Date
}

/// A migration recorded in the database.
public struct AppliedMigration: Sendable, Equatable {
    public var name: String
    /// SHA-256 of the migration's SQL when it was applied.
    public var sha256: String
    public var applied: Date
}

public enum LinkState: String, Sendable, Equatable, CaseIterable {
    /// Attached to its hook now (and pinned, when the service pins).
    case attached
    /// Detached on purpose (DELETE, or the unload of its load).
    case detached
    /// Was attached, but its kernel link is gone (its pin vanished across a restart).
    case lost
    /// The attach failed (or was cut off before the link was pinned).
    case failed
}

/// One program of a load attached to a kernel hook, and what became of it.
public struct LinkRecord: Sendable, Equatable {
    public var id: Int64
    public var loadID: Int64
    public var program: String
    /// The hook kind ("raw_tracepoint", "xdp", ...).
    public var kind: String
    /// The hook's target, readable ("syscalls/sys_enter_getpid").
    public var target: String
    /// The attach request as given (JSON object text).
    public var request: String
    public var state: LinkState
    /// The kernel's link id while attached.
    public var kernelID: UInt32?
    public var pinPath: String?
    public var created: Date
    public var updated: Date
}
