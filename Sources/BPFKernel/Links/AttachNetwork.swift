import BPFObject
import Glibc

/// XDP and tcx links on a network interface of this process's network namespace.
extension Attachment {
    /// The interface's index (`if_nametoindex`), checked before anything is attached.
    static func interfaceIndex(_ name: String) throws(LinkError) -> UInt32 {
        // IFNAMSIZ is 16 with the NUL; longer names cannot exist, and "/" or NUL never do.
        guard !name.isEmpty, name.utf8.count < 16, !name.contains("/"), !name.contains("\0") else {
            throw .unknownInterface(name)
        }
        let index = if_nametoindex(name)
        guard index != 0 else { throw .unknownInterface(name) }
        return index
    }

    /// `xdp`, `xdp.frags`: a BPF_XDP link on the interface, in the mode asked for (generic:
    /// XDP_FLAGS_SKB_MODE, native: XDP_FLAGS_DRV_MODE; none: the driver's if it has one).
    ///
    /// The kernel keeps one XDP program per interface and mode and never lets a link replace
    /// another (EBUSY) or a program attached through netlink (EBUSY), nor generic and native
    /// programs side by side (EEXIST). Those answers become `.conflict` naming the holder,
    /// found by walking the kernel's XDP links (bpf(2) only: netlink is not ours to use).
    ///
    /// `replace` with a link holding the interface: that link is switched to this program with
    /// BPF_LINK_UPDATE (only if it still runs the program we found, BPF_F_REPLACE), and the
    /// returned object owns a new fd to that same link, so its id is the old link's and
    /// detaching it removes XDP from the interface for the link's creator too. A program
    /// attached through netlink cannot be replaced this way: `.conflict`.
    func xdp(interface: String, mode: XDPMode?, replace: Bool) throws(LinkError) -> AttachedLink {
        let index = try Self.interfaceIndex(interface)
        let flags: UInt32 = switch mode {
        case .generic: BPFConstants.XDPFlag.skbMode
        case .native: BPFConstants.XDPFlag.driverMode
        case nil: 0
        }
        let hook = "XDP on \(interface)"
        let target = "\(interface) (ifindex \(index)\(mode.map { ", \($0.rawValue)" } ?? ""))"
        let link: BPFFD
        do {
            link = try BPFSys.linkCreate(programFD: fd, target: .ifindex(index), attachType: BPFAttachType.xdp.rawValue,
                                         flags: flags, context: "linking program '\(program)' to \(hook)")
        } catch let error where error.errno == EBUSY || error.errno == EEXIST {
            let holder = Self.xdpHolder(ifindex: index)
            guard replace, let holder, let holderLink = holder.link else {
                throw .conflict(hook: hook, holder: holder?.description ?? Self.netlinkHolder(interface))
            }
            return try replaceXDP(holderLink, holder: holder, target: target, hook: hook)
        } catch {
            throw failure(error, hook)
        }
        return try AttachedLink(program: program, kind: .xdp, target: target, linkFD: link)
    }

    /// Who holds XDP on an interface, as far as bpf(2) can tell.
    struct XDPHolder {
        var programName: String
        var programID: UInt32
        var link: UInt32?

        var description: String { "program \(programName) (id \(programID))" }
    }

    /// The first XDP link on `ifindex` (in link id order) and its program. nil when none is
    /// visible: the holder was attached through netlink, or went away meanwhile. Link info
    /// carries the ifindex but not the network namespace, and indexes repeat across namespaces:
    /// with XDP links on same-numbered interfaces of other namespaces, one of those may be named.
    static func xdpHolder(ifindex: UInt32) -> XDPHolder? {
        var id: UInt32 = 0
        while let next = try? BPFSys.linkGetNextID(after: id) {
            id = next
            guard let fd = try? BPFSys.linkGetFDByID(id) else { continue }
            defer { fd.close() }
            guard let info = try? BPFSys.objGetInfoByFD(linkFD: fd), info.type == BPFLinkType.xdp,
                  info.details["ifindex"] == String(ifindex) else { continue }
            var name = "?"
            if let prog = try? BPFSys.progGetFDByID(info.programID) {
                name = (try? BPFSys.objGetInfoByFD(programFD: prog).name) ?? "?"
                prog.close()
            }
            return XDPHolder(programName: name, programID: info.programID, link: info.id)
        }
        return nil
    }

    static func netlinkHolder(_ interface: String) -> String {
        "an XDP program attached without a link (through netlink; `ip link show dev \(interface)` names it, "
            + "`ip link set dev \(interface) xdp off` removes it)"
    }

    private func replaceXDP(_ linkID: UInt32, holder: XDPHolder, target: String, hook: String) throws(LinkError) -> AttachedLink {
        let link: BPFFD
        do { link = try BPFSys.linkGetFDByID(linkID) } catch {
            throw .conflict(hook: hook, holder: "\(holder.description), whose link \(linkID) could not be opened: \(error)")
        }
        do {
            let old = try BPFSys.progGetFDByID(holder.programID)
            defer { old.close() }
            try BPFSys.linkUpdate(fd: link, newProgramFD: fd, oldProgramFD: old)
        } catch {
            link.close()
            throw failure(error, "\(hook) (replacing \(holder.description) in link \(linkID))")
        }
        let note = "replaced \(holder.description) in the existing XDP link \(linkID) (BPF_LINK_UPDATE): "
            + "the link is shared with whoever created it, and detaching it removes XDP from the interface"
        return try AttachedLink(program: program, kind: .xdp, target: target, linkFD: link, notes: [note])
    }

    /// `tcx/ingress`, `tcx/egress` (and `tc`/`classifier` with a direction): a link appended to
    /// the interface's tcx chain for that direction. Several programs may share a chain.
    func tcx(interface: String, direction: TCXDirection) throws(LinkError) -> AttachedLink {
        let index = try Self.interfaceIndex(interface)
        let attachType = direction == .ingress ? BPFAttachType.tcxIngress : BPFAttachType.tcxEgress
        let hook = "tcx \(direction.rawValue) on \(interface)"
        let link: BPFFD
        do {
            link = try BPFSys.linkCreate(programFD: fd, target: .ifindex(index), attachType: attachType.rawValue,
                                         options: .tcx(relative: 0, expectedRevision: 0),
                                         context: "linking program '\(program)' to \(hook)")
        } catch {
            throw failure(error, hook)
        }
        return try AttachedLink(program: program, kind: .tcx, target: "\(interface) (ifindex \(index), \(direction.rawValue))",
                                linkFD: link)
    }
}
