import Glibc

extension AttachedLink {
    /// Runs an iterator link once (BPF_ITER_CREATE) and reads what its program writes
    /// (`bpf_seq_printf`, `bpf_seq_write`), like `cat` of a pinned iterator: until EOF, `maxBytes`,
    /// or `timeout`, whichever comes first. `truncated`: stopped before EOF.
    ///
    /// The time bound is checked between reads; one read returns at most a page of seq_file
    /// output, so it overshoots by at most one batch of the program's runs.
    public func readIterator(maxBytes: Int, timeout: Duration) throws(LinkError) -> (bytes: [UInt8], truncated: Bool) {
        guard kind == .iter else {
            throw .kernel(.invalidArgument("link \(id) is a \(kind.rawValue) link, not an iterator"), context: "reading iterator output")
        }
        guard maxBytes >= 0 else { throw .kernel(.invalidArgument("maxBytes is \(maxBytes)"), context: "reading iterator output") }
        // The new fd holds the link; reading needs no lock, so detach() is not kept waiting.
        let fd = try whileAttached("creating an iterator from link \(id)") { () throws(BPFError) in
            try BPFSys.iterCreate(linkFD: linkFD)
        }
        defer { fd.close() }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while out.count < maxBytes {
            if clock.now >= deadline { return (out, true) }
            let want = min(chunk.count, maxBytes - out.count)
            let n = chunk.withUnsafeMutableBytes { read(fd.rawValue, $0.baseAddress, want) }
            if n < 0 {
                let e = errno
                if e == EINTR || e == EAGAIN { continue }
                throw .kernel(.system(call: "read", errno: e, context: "reading iterator link \(id) after \(out.count) bytes"),
                              context: "reading iterator output")
            }
            if n == 0 { return (out, false) }
            out.append(contentsOf: chunk[0..<n])
        }
        // The bound reached exactly at the end is not a truncation: ask for one more byte.
        var one: UInt8 = 0
        let n = read(fd.rawValue, &one, 1)
        return (out, n != 0)
    }
}
