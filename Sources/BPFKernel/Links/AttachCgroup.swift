import BPFObject
import CBPFSys
import Glibc

/// Cgroup links: the program's attach type on a cgroup v2 directory.
extension Attachment {
    /// CGROUP2_SUPER_MAGIC.
    static let cgroup2Magic = 0x6367_7270

    /// Opens `path` as a cgroup v2 directory (O_RDONLY | O_DIRECTORY), as libbpf's callers do,
    /// and checks its file system: BPF links attach only to cgroup v2, and a v1 hierarchy or a
    /// plain directory would otherwise fail later with a bare EBADF.
    static func openCgroup(_ path: String) throws(LinkError) -> BPFFD {
        let raw = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard raw >= 0 else {
            let e = errno
            throw .unknownCgroup(path: path, reason: "cannot open it as a directory: \(ErrnoName.describe(e))")
        }
        let fd = BPFFD(adopting: raw)
        let type = cbpf_fs_type(path)
        guard type == cgroup2Magic else {
            fd.close()
            let found = type == -1 ? "statfs failed" : "file system type 0x\(String(type, radix: 16))"
            throw .unknownCgroup(path: path, reason: "not a cgroup v2 directory (\(found)); BPF links need cgroup v2: mount -t cgroup2 none DIR")
        }
        return fd
    }

    /// Any cgroup hook: BPF_LINK_CREATE with the cgroup's fd and the program's attach type. The
    /// link joins the cgroup's list of programs for that hook (BPF_F_ALLOW_MULTI semantics).
    func cgroup(path: String, attachType: UInt32) throws(LinkError) -> AttachedLink {
        let cgroup = try Self.openCgroup(path)
        defer { cgroup.close() }
        let typeName = BPFAttachType(rawValue: attachType).name
        let hook = "\(typeName) of cgroup \(path)"
        let link: BPFFD
        do {
            link = try BPFSys.linkCreate(programFD: fd, target: .fd(cgroup), attachType: attachType,
                                         context: "linking program '\(program)' to \(hook)")
        } catch {
            throw failure(error, hook)
        }
        return try AttachedLink(program: program, kind: .cgroup, target: "\(path) (\(typeName))", linkFD: link)
    }
}
