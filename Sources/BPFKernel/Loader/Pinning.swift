import CBPFSys
import Glibc

/// bpffs pins: libbpf's PIN_BY_NAME maps and whole loads pinned under a directory.
enum Pinning {
    static let bpffsMagic: Int = 0xCAFE_4A11

    /// Creates `path` (and parents) and checks it is on bpffs.
    static func prepareDirectory(_ path: String) throws(LoaderError) {
        var partial = ""
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o700) != 0 && errno != EEXIST {
                throw .pin(path: partial, reason: "mkdir failed: errno \(errno)")
            }
        }
        let type = cbpf_fs_type(path)
        guard type != -1 else { throw .pin(path: path, reason: "statfs failed: errno \(errno)") }
        guard type == bpffsMagic else {
            throw .pin(path: path, reason: "not on bpffs (mount -t bpf bpf /sys/fs/bpf)")
        }
    }

    static func mapPath(_ dir: String, _ name: String) -> String { "\(dir)/maps/\(fileName(name))" }
    static func programPath(_ dir: String, _ name: String) -> String { "\(dir)/progs/\(fileName(name))" }

    /// bpffs refuses names with a dot (EPERM), and global-data maps have one (`obj.bss`): libbpf
    /// turns dots into underscores in pin paths; so do we.
    static func fileName(_ name: String) -> String {
        String(name.map { $0 == "." ? "_" : $0 })
    }

    /// Pins every map and program of a load under `dir`, so another process can adopt it.
    static func pinLoad(directory dir: String, maps: [LoadedMap], programs: [LoadedProgram]) throws(LoaderError) {
        try prepareDirectory(dir + "/maps")
        try prepareDirectory(dir + "/progs")
        for m in maps {
            let path = mapPath(dir, m.spec.name)
            do { try BPFSys.objPin(fd: m.fd, path: path) } catch { throw .pin(path: path, reason: "\(error)") }
        }
        for p in programs {
            let path = programPath(dir, p.name)
            do { try BPFSys.objPin(fd: p.fd, path: path) } catch { throw .pin(path: path, reason: "\(error)") }
        }
    }

    static func removeLoadPins(directory dir: String, maps: [LoadedMap], programs: [LoadedProgram]) {
        for m in maps { unlink(mapPath(dir, m.spec.name)) }
        for p in programs { unlink(programPath(dir, p.name)) }
        rmdir(dir + "/maps")
        rmdir(dir + "/progs")
        rmdir(dir)
    }
}

/// The service's view of its pin root on bpffs: make sure it exists (mounting bpffs at
/// /sys/fs/bpf when nothing is mounted there), list the load directories in it, and remove a
/// load's pins whatever they are (for loads whose spec is unknown or that failed halfway).
public enum PinRoot {
    /// Creates `root` on bpffs. When `root` is under /sys/fs/bpf and no bpffs is mounted there
    /// yet, mounts one first (as bpftool does for its pins). Returns whether it mounted.
    @discardableResult
    public static func prepare(_ root: String) throws(LoaderError) -> Bool {
        var mounted = false
        let standard = "/sys/fs/bpf"
        if root == standard || root.hasPrefix(standard + "/"), cbpf_fs_type(standard) != Pinning.bpffsMagic {
            if mount("bpf", standard, "bpf", 0, "mode=0700") != 0 {
                throw .pin(path: standard, reason: "no bpffs mounted there and mounting one failed: errno \(errno) (\(String(cString: strerror(errno))))")
            }
            mounted = true
        }
        try Pinning.prepareDirectory(root)
        return mounted
    }

    /// Names of the entries of `root` that are directories (load directories are named by id).
    public static func directories(in root: String) -> [String] {
        guard let dir = opendir(root) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            if entry.pointee.d_type == UInt8(DT_DIR) { names.append(name) }
        }
        return names.sorted()
    }

    /// Unlinks every pin under `<dir>/links`, `<dir>/maps` and `<dir>/progs` (links first: a
    /// link holds its program) and removes the directories. Kernel objects with no other
    /// reference go away with their last pin. Returns the number of pins removed.
    @discardableResult
    public static func removeLoad(directory dir: String) -> Int {
        let removed = removeSubdirectories(["links", "maps", "progs"], of: dir)
        rmdir(dir)
        return removed
    }

    /// Unlinks the link pins of a load (`<dir>/links/*`) and removes that directory.
    @discardableResult
    public static func removeLinks(directory dir: String) -> Int {
        removeSubdirectories(["links"], of: dir)
    }

    /// The names in `<dir>/links` (one pin per link, named by the link's row id).
    public static func linkPins(directory dir: String) -> [String] {
        entries(of: dir + "/links")
    }

    /// Where link `name` of the load pinned at `dir` is pinned (`<dir>/links/<name>`), with
    /// `<dir>/links` made if it is not there yet.
    public static func linkPinPath(directory dir: String, name: String) -> String {
        mkdir(dir + "/links", 0o700)
        return "\(dir)/links/\(name)"
    }

    /// Removes one pin; the object goes with its last reference.
    public static func removePin(_ path: String) {
        unlink(path)
    }

    private static func entries(of path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(d)
        return names.sorted()
    }

    private static func removeSubdirectories(_ subdirectories: [String], of dir: String) -> Int {
        var removed = 0
        for sub in subdirectories {
            let path = dir + "/" + sub
            for n in entries(of: path) where unlink(path + "/" + n) == 0 { removed += 1 }
            rmdir(path)
        }
        return removed
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}
