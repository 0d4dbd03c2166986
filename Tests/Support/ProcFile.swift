import Foundation

/// procfs files read whole. `String(contentsOfFile:)` stops after the first read of a procfs
/// file (it trusts the 0 size procfs reports): 4,082 of /proc/self/maps' 10,806 bytes in a small
/// process here, so a check of "is this range mapped" could pass without looking.
public enum ProcFile {
    public static func text(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }
}
