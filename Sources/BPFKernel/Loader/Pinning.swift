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
