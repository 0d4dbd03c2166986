import BPFObject
import Glibc
import Synchronization

/// A kernel module's BTF: split BTF over vmlinux, as the kernel exposes it under
/// `/sys/kernel/btf/<module>` and through `BPF_OBJ_GET_INFO_BY_FD`.
public final class ModuleBTF: Sendable {
    /// The kernel's id of the BTF object (`BPF_BTF_GET_FD_BY_ID`).
    public let objectID: UInt32
    /// The module's name.
    public let name: String
    public let btf: SplitBTF
    /// Name offset and kind of each own type (as `KernelBTF` keeps vmlinux's).
    private let columns: BTFNameColumns

    public init(objectID: UInt32, name: String, btf: SplitBTF) {
        self.objectID = objectID
        self.name = name
        self.btf = btf
        columns = BTFNameColumns(btf.ownTypes)
    }

    /// A type of this module (its own types only: vmlinux is searched before modules, as in
    /// libbpf's `find_ksym_btf_id`); the first of that name and kind.
    public func find(_ name: String, kind: BTFKindTag) -> UInt32? {
        let target = Array(name.utf8)
        guard !target.isEmpty else { return nil }
        let stringBase = btf.stringBase, base = btf.base
        let index = btf.ownStrings.withUnsafeBufferPointer { own in
            columns.firstIndex(of: kind) { o in
                if o < stringBase { return base.stringEquals(o, target) }
                // Own string at `o - stringBase`: the target's bytes, then NUL.
                let start = Int(o - stringBase)
                guard start + target.count < own.count else { return false }
                for k in 0..<target.count where own[start + k] != target[k] { return false }
                return own[start + target.count] == 0
            }
        }
        return index.map { btf.firstID + UInt32($0) }
    }
}

/// A module's BTF together with a descriptor of its kernel object, opened for one load: the fd
/// goes into `fd_array` (kfunc calls), `ld_imm64` (typed ksyms) or `attach_btf_obj_fd`.
public struct OpenModuleBTF: Sendable {
    public let module: ModuleBTF
    public let fd: BPFFD
}

/// Why the module BTFs could not be listed or read.
public enum ModuleBTFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Walking the BTF ids or opening one failed (other than the races libbpf tolerates).
    case enumeration(BPFError)
    /// A module's BTF blob could not be read or parsed as split BTF over vmlinux.
    case module(name: String, objectID: UInt32, reason: String)

    public var description: String {
        switch self {
        case .enumeration(let e): return "listing kernel BTF objects: \(e)"
        case .module(let n, let id, let r): return "BTF of module '\(n)' (btf id \(id)): \(r)"
        }
    }
}

/// The kernel's BTF objects, as libbpf's `load_module_btfs` walks them: every id from
/// `BPF_BTF_GET_NEXT_ID`, opened with `BPF_BTF_GET_FD_BY_ID` and described by
/// `BPF_OBJ_GET_INFO_BY_FD`; only kernel BTF other than vmlinux is a module.
public enum KernelBTFObjects {
    /// One BTF object the walk could open.
    public struct Entry: Sendable {
        public let info: BTFInfo
        public let fd: BPFFD
    }

    /// Whether a BTF object is a module's: kernel BTF (not loaded by user space) and not vmlinux.
    public static func isModule(_ info: BTFInfo) -> Bool {
        info.isKernelBTF && info.name != "vmlinux"
    }

    /// Every BTF object that could be opened, in id order. An object that disappears between
    /// listing and opening (ENOENT) or that we may not open (EPERM) is skipped, as libbpf does;
    /// `keep` decides which fds stay open (the others are closed at once).
    public static func list(keep: (BTFInfo) -> Bool = { _ in true }) throws(ModuleBTFError) -> [Entry] {
        var out: [Entry] = []
        var cursor: UInt32 = 0
        while true {
            let next: UInt32?
            do { next = try BPFSys.btfGetNextID(after: cursor) } catch { throw .enumeration(error) }
            guard let id = next else { return out }
            cursor = id
            let fd: BPFFD
            do {
                fd = try BPFSys.btfGetFDByID(id)
            } catch {
                if error.errno == ENOENT || error.errno == EPERM { continue }
                throw .enumeration(error)
            }
            let info: BTFInfo
            do {
                info = try BPFSys.objGetInfoByFD(btfFD: fd)
            } catch {
                fd.close()
                if error.errno == ENOENT { continue }
                throw .enumeration(error)
            }
            if keep(info) { out.append(Entry(info: info, fd: fd)) } else { fd.close() }
        }
    }

    /// Parsed module BTFs by BTF object id: a blob is read and parsed once per process. Kernel
    /// BTF ids are not reused while the system runs, so an id names one module load; entries
    /// for ids no longer listed (the module was unloaded) are dropped at the next walk.
    private static let parsed = Mutex<[UInt32: ModuleBTF]>([:])

    /// The running kernel's module BTFs, each with a descriptor of its own (the caller owns
    /// them: close the ones it does not keep). On a kernel without modules (no
    /// `CONFIG_MODULES`, or none with BTF loaded) this is empty.
    public static func openModules(vmlinux: KernelBTF) throws(ModuleBTFError) -> [OpenModuleBTF] {
        let entries = try list(keep: isModule)
        var out: [OpenModuleBTF] = []
        var failure: ModuleBTFError?
        for e in entries {
            if failure != nil { e.fd.close(); continue }
            if let known = parsed.withLock({ $0[e.info.id] }) {
                out.append(OpenModuleBTF(module: known, fd: e.fd))
                continue
            }
            do {
                let module = try read(e, vmlinux: vmlinux)
                parsed.withLock { $0[e.info.id] = module }
                out.append(OpenModuleBTF(module: module, fd: e.fd))
            } catch {
                e.fd.close()
                failure = error
            }
        }
        let live = Set(entries.map(\.info.id))
        parsed.withLock { cache in cache = cache.filter { live.contains($0.key) } }
        if let failure {
            for m in out { m.fd.close() }
            throw failure
        }
        return out
    }

    private static func read(_ e: Entry, vmlinux: KernelBTF) throws(ModuleBTFError) -> ModuleBTF {
        let bytes: [UInt8]
        do { bytes = try BPFSys.btfData(fd: e.fd) } catch {
            throw .module(name: e.info.name, objectID: e.info.id, reason: "reading its blob: \(error)")
        }
        do {
            return ModuleBTF(objectID: e.info.id, name: e.info.name, btf: try SplitBTF(parsing: bytes, base: vmlinux.btf()))
        } catch {
            throw .module(name: e.info.name, objectID: e.info.id, reason: "not valid split BTF over vmlinux: \(error)")
        }
    }
}

/// libbpf's `fd_array` for module kfuncs: each module whose kfunc a program calls gets one slot,
/// from 1 on (slot 0 stays unused: a call's `off` of 0 means vmlinux), the same slot every time
/// it comes up again. A call's `off` is an `s16`, so at most `Int16.max - 1` modules fit.
public struct FDArrayLayout<Key: Hashable & Sendable>: Sendable {
    /// `slots[i]` is the module at index i; `slots[0]` is always nil once anything is placed.
    public private(set) var slots: [Key?] = []
    private var indexOf: [Key: Int16] = [:]

    public init() {}

    public enum Overflow: Error, Sendable, Equatable {
        /// A call's `off` cannot address another module.
        case full(count: Int)
    }

    /// The slot of `key`, placing it after the last one if new.
    public mutating func index(for key: Key) throws(Overflow) -> Int16 {
        if let i = indexOf[key] { return i }
        if slots.isEmpty { slots.append(nil) }
        guard slots.count < Int(Int16.max) else { throw .full(count: slots.count - 1) }
        let i = Int16(slots.count)
        slots.append(key)
        indexOf[key] = i
        return i
    }
}

/// The module BTFs of one load, as libbpf keeps them per object: listed and opened on the first
/// name vmlinux lacks (never, for objects that only use vmlinux), the fd-array slots handed out
/// to module kfuncs, and the descriptors the load goes on referring to.
final class ModuleBTFSession {
    private var opened: [OpenModuleBTF]?
    private(set) var layout = FDArrayLayout<UInt32>()
    /// Modules an instruction or attach target of this load names, by BTF object id.
    private var used: [UInt32: BPFFD] = [:]

    /// `preopened`: the module BTFs to search instead of the running kernel's (tests: this
    /// kernel may have no modules at all).
    init(preopened: [OpenModuleBTF]? = nil) {
        opened = preopened
    }

    /// The running kernel's module BTFs (listed and opened once per session).
    func modules() throws(ModuleBTFError) -> [OpenModuleBTF] {
        if let opened { return opened }
        let list = try KernelBTFObjects.openModules(vmlinux: try vmlinuxForModules())
        opened = list
        return list
    }

    private func vmlinuxForModules() throws(ModuleBTFError) -> KernelBTF {
        do { return try KernelBTF.vmlinux() } catch {
            throw .module(name: "vmlinux", objectID: 0, reason: "module BTF is split over vmlinux BTF, which is unavailable: \(error)")
        }
    }

    /// The first module (in BTF id order) whose own types hold `name` of `kind`.
    func find(_ name: String, kind: BTFKindTag) throws(ModuleBTFError) -> (OpenModuleBTF, UInt32)? {
        for m in try modules() {
            if let id = m.module.find(name, kind: kind) { return (m, id) }
        }
        return nil
    }

    /// Keeps `m`'s descriptor open for the load.
    func use(_ m: OpenModuleBTF) {
        used[m.module.objectID] = m.fd
    }

    /// `m`'s slot in `fd_array` (kept open for the load, too).
    func fdArrayIndex(for m: OpenModuleBTF) throws(FDArrayLayout<UInt32>.Overflow) -> Int16 {
        use(m)
        return try layout.index(for: m.module.objectID)
    }

    /// `fd_array` for `BPF_PROG_LOAD`: empty when no module kfunc is called.
    var fdArray: [BPFFD?] {
        layout.slots.map { $0.flatMap { used[$0] } }
    }

    /// The descriptors the load keeps (module BTFs something refers to); every other one opened
    /// for the lookup is closed.
    func finish() -> [BPFFD] {
        for m in opened ?? [] where used[m.module.objectID] == nil { m.fd.close() }
        opened = nil
        return used.sorted { $0.key < $1.key }.map(\.value)
    }
}
