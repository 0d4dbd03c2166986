@testable import DepotStore
import Foundation

/// A fresh directory for one test's SQLite files, removed when the test lets go of it.
final class TemporaryDatabase: Sendable {
    let directory: URL
    var path: String { directory.appendingPathComponent("depot.sqlite").path }

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("bpfdepot-store-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    func open(migrate: Bool = true) throws -> DepotStore {
        try DepotStore(path: path, migrate: migrate)
    }

    func open(migrations: [Migration], migrate: Bool = true) throws -> DepotStore {
        try DepotStore(path: path, migrations: migrations, migrate: migrate)
    }
}

/// Small fake objects for tests that need many distinct ones (not parsed: the store doesn't).
enum Sample {
    /// Distinct bytes for each seed (the seed is spelled out after the ELF magic).
    static func elf(_ seed: Int, size: Int = 256) -> [UInt8] {
        let seedBytes = withUnsafeBytes(of: UInt64(truncatingIfNeeded: seed).littleEndian, Array.init)
        return [0x7f, 0x45, 0x4c, 0x46] + seedBytes
            + (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ seed) }
    }

    static let images: [SectionImage] = [
        SectionImage(name: ".data", bytes: [1, 2, 3, 4, 5, 6, 7, 8]),
        SectionImage(name: ".rodata", bytes: Array("const".utf8)),
        SectionImage(name: ".bss", bytes: [UInt8](repeating: 0, count: 16)),
    ]

    /// `images` with byte `index` of section `name` set to `value`.
    static func images(setting name: String, byte index: Int, to value: UInt8,
                       in base: [SectionImage] = images) -> [SectionImage] {
        base.map { image in
            guard image.name == name else { return image }
            var copy = image
            copy.bytes[index] = value
            return copy
        }
    }
}

extension DepotStore {
    /// Rows of every table, to show a failed call wrote nothing.
    func counts() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for table in ["objects", "object_elves", "revisions", "section_images", "image_blobs", "loads", "schema_migrations"] {
            out[table] = try rowCount(table)
        }
        return out
    }
}
