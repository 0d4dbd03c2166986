// libFuzzer entry for the object parser: arbitrary bytes through every path the upload, inspect
// and variables routes run on an uploaded object. Built by scripts/fuzz.sh against a
// BPFObject module built with the same sanitizers, never by SwiftPM.
//
// A crash here (ASan report, Swift trap, timeout, OOM) is a parser bug: the parser must turn any
// bytes into an ObjectError or a consistent ObjectSpec.

import BPFObject

@_cdecl("LLVMFuzzerTestOneInput")
public func parserFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    // POST /objects: parse, then the object view (summary JSON) and `bpfdepot inspect` (both forms).
    guard let spec = try? ObjectSpec(elf: bytes, name: "fuzz") else { return 0 }
    consume(spec.summaryJSON.text)
    consume(spec.summaryJSON.prettyText)
    consume(spec.summaryText)
    // GET /objects/{id}/variables: every initial value through BTF. Then, for the first few, a
    // PATCH with the value read back (what a client that round-trips a variable does), on a copy
    // so each starts clean: the encoder on hostile BTF. (Only a few: each patch copies a section
    // image, which may be 64 MiB.)
    for (i, v) in spec.variables.enumerated() {
        guard let value = try? spec.initialValue(of: v) else { continue }
        consume(value.text)
        guard i < 8 else { continue }
        var copy = spec
        try? copy.patch(variable: v.name, with: value)
        consume(try? copy.initialValue(of: v))
    }
    return 0
}

/// Keeps a result alive so the optimizer cannot drop the work that produced it.
@inline(never)
func consume<T>(_ value: T) {
    withExtendedLifetime(value) {}
}
