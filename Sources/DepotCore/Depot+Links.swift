import BPFKernel
import BPFObject
import DepotStore

/// One attach a client asked for: which program, where, and the request as given (kept in the
/// link's row).
public struct LinkRequest: Sendable, Equatable {
    public var program: String
    public var target: AttachTarget
    /// The request's JSON text, as the client sent it.
    public var json: String

    public init(program: String, target: AttachTarget = AttachTarget(), json: String = "{}") {
        self.program = program
        self.target = target
        self.json = json
    }
}

extension Depot {
    /// Attaches a program of a live load to the hook its `SEC()` name (and the request's
    /// target) says. The row is written first (`failed`); it becomes `attached` once the link is
    /// pinned under the load's pin directory, so a crash in between leaves a pin `recover()`
    /// removes.
    public func attach(loadID: Int64, _ request: LinkRequest) throws(DepotError) -> LinkView {
        let load = try storeCall { () throws(StoreError) in try store.load(id: loadID) }
        guard load.state == .loaded, let obj = live.withLock({ $0[loadID] }) else { throw .loadNotActive(id: loadID) }
        let view = try attach(obj, loadID: loadID, pinDirectory: load.pinDirectory, request)
        // An unload that ran meanwhile detached the load's links before this one was listed:
        // it must not outlive its load (the unload detaches stragglers once more after it
        // takes the load out of `live`, so one of the two always sees it).
        if live.withLock({ $0[loadID] == nil }) {
            try? detach(linkID: view.record.id)
            throw .loadNotActive(id: loadID)
        }
        return view
    }

    func attach(_ obj: LoadedObject, loadID: Int64, pinDirectory: String?, _ request: LinkRequest) throws(DepotError) -> LinkView {
        guard let program = obj.spec.programs.first(where: { $0.name == request.program && !$0.isSubprogram }) else {
            throw .unknownProgram(name: request.program, loadID: loadID)
        }
        // Until attached, the row's kind is the program's section: the hook it asked for.
        let row = try storeCall { () throws(StoreError) in
            try store.createLink(loadID: loadID, program: request.program, kind: program.sectionName, target: "",
                                 request: request.json)
        }
        let link: AttachedLink
        do { link = try obj.attach(program: request.program, target: request.target) } catch { throw .link(error) }
        var pinPath: String?
        if let pinDirectory {
            let path = PinRoot.linkPinPath(directory: pinDirectory, name: String(row.id))
            do { try link.pin(at: path) } catch {
                link.detach()
                throw .link(error)
            }
            pinPath = path
        }
        let updated: LinkRecord
        do {
            updated = try store.updateLink(id: row.id, state: .attached, kernelID: link.id, pinPath: pinPath,
                                           kind: link.kind.rawValue, target: link.target)
        } catch {
            link.detach()  // and its pin
            throw .store(error)
        }
        liveLinks.withLock { $0[row.id] = (loadID, link) }
        return LinkView(record: updated, link: link)
    }

    /// Attaches each request in turn; if one fails, the ones already attached are detached again
    /// (their rows `detached`) and the error is the failed one's. `all`: also every other
    /// program whose section names a complete hook (one that needs no target), as libbpf's
    /// skeleton attach; the others (XDP, tcx, cgroup, `syscall`, ...) are left alone, unrecorded.
    func attachAll(_ obj: LoadedObject, loadID: Int64, pinDirectory: String?, requests: [LinkRequest],
                   all: Bool) throws(DepotError) -> [LinkView] {
        var wanted = requests
        if all {
            let named = Set(requests.map(\.program))
            for p in obj.programs where !named.contains(p.name) && obj.autoAttachable(program: p.name) {
                wanted.append(LinkRequest(program: p.name, json: "{\"program\":\"\(p.name)\",\"attach\":true}"))
            }
        }
        var done: [LinkView] = []
        for request in wanted {
            do {
                done.append(try attach(obj, loadID: loadID, pinDirectory: pinDirectory, request))
            } catch {
                for view in done { try? detach(linkID: view.record.id) }
                throw error
            }
        }
        return done
    }

    public func links(loadID: Int64) throws(DepotError) -> [LinkView] {
        let rows = try storeCall { () throws(StoreError) in try store.links(loadID: loadID) }
        let attached = liveLinks.withLock { $0 }
        return rows.map { LinkView(record: $0, link: attached[$0.id]?.link) }
    }

    /// A link's row, with what the kernel reports for it while attached.
    public func link(id: Int64) throws(DepotError) -> LinkView {
        let row = try storeCall { () throws(StoreError) in try store.link(id: id) }
        return LinkView(record: row, link: liveLinks.withLock { $0[id]?.link }, withKernelInfo: true)
    }

    /// The row says `detached` before the kernel detaches: a crash in between leaves a pin
    /// without an attached row, which `recover()` removes.
    public func detach(linkID: Int64) throws(DepotError) {
        let row = try storeCall { () throws(StoreError) in try store.link(id: linkID) }
        guard row.state == .attached else { throw .linkNotAttached(id: linkID, state: row.state.rawValue) }
        _ = try storeCall { () throws(StoreError) in try store.updateLink(id: linkID, state: .detached) }
        // The live link removes its own pin; a row no live link answers for may still have one.
        if let entry = liveLinks.withLock({ $0.removeValue(forKey: linkID) }) {
            entry.link.detach()
        } else if let pin = row.pinPath {
            PinRoot.removePin(pin)
        }
    }

    /// Detaches every link of a load (its unload): rows first, then the kernel.
    func detachLinks(loadID: Int64, pinDirectory: String?) throws(DepotError) {
        try storeCall { () throws(StoreError) in try store.detachLinks(loadID: loadID) }
        let mine = liveLinks.withLock { links in
            let ids = links.filter { $0.value.loadID == loadID }.map(\.key)
            return ids.compactMap { links.removeValue(forKey: $0)?.link }
        }
        if let pinDirectory { PinRoot.removeLinks(directory: pinDirectory) }
        for link in mine { link.detach() }
    }

    /// What an iterator link writes, read once (like `cat` of a pinned iterator), bounded.
    public func iteratorOutput(linkID: Int64, maxBytes: Int, timeout: Duration) throws(DepotError) -> (bytes: [UInt8], truncated: Bool) {
        let row = try storeCall { () throws(StoreError) in try store.link(id: linkID) }
        guard row.state == .attached, let link = liveLinks.withLock({ $0[linkID]?.link }) else {
            throw .linkNotAttached(id: linkID, state: row.state.rawValue)
        }
        do { return try link.readIterator(maxBytes: maxBytes, timeout: timeout) } catch { throw .link(error) }
    }
}
