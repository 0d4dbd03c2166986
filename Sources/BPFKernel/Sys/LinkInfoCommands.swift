import BPFObject
import Glibc

/// Offsets in `struct bpf_link_info` (include/uapi/linux/bpf.h, Linux 6.18). The per-type union
/// starts at 16 (it holds u64 members, so it is 8-aligned).
private enum LinkInfoLayout {
    static let type = 0
    static let id = 4
    static let programID = 8
    static let union = 16
    /// The largest members (kprobe_multi with `missed` and `cookies`, uprobe_multi, perf_event's
    /// kprobe) end at 64. Older kernels take the zero tail.
    static let size = 64

    enum RawTracepoint { static let name = 16, nameLength = 24 }
    enum Tracing { static let attachType = 16, targetObjectID = 20, targetBTFID = 24 }
    enum Cgroup { static let cgroupID = 16, attachType = 24 }
    enum Iter { static let targetName = 16, targetNameLength = 24, mapID = 28 }
    enum Netns { static let inode = 16, attachType = 20 }
    enum XDP { static let ifindex = 16 }
    enum StructOps { static let mapID = 16 }
    enum Netfilter { static let pf = 16, hook = 20, priority = 24, flags = 28 }
    enum KprobeMulti { static let count = 24, flags = 28, missed = 32 }
    enum UprobeMulti { static let path = 16, pathSize = 48, count = 52, flags = 56, pid = 60 }
    /// `type` (enum bpf_perf_event_type), then a union at 24 whose first member is the name
    /// pointer (file, function or tracepoint) and its length.
    enum PerfEvent {
        static let type = 16, name = 24, nameLength = 32
        static let probeOffset = 36
        static let kprobeAddress = 40, kprobeMissed = 48
        static let eventConfig = 24, eventType = 32
    }
    enum Device { static let ifindex = 16, attachType = 20 }  // tcx, netkit
    enum Sockmap { static let mapID = 16, attachType = 20 }
}

/// `enum bpf_link_type`, with libbpf's names (`libbpf_bpf_link_type_str`).
public enum BPFLinkType {
    public static let rawTracepoint: UInt32 = 1
    public static let tracing: UInt32 = 2
    public static let cgroup: UInt32 = 3
    public static let iter: UInt32 = 4
    public static let netns: UInt32 = 5
    public static let xdp: UInt32 = 6
    public static let perfEvent: UInt32 = 7
    public static let kprobeMulti: UInt32 = 8
    public static let structOps: UInt32 = 9
    public static let netfilter: UInt32 = 10
    public static let tcx: UInt32 = 11
    public static let uprobeMulti: UInt32 = 12
    public static let netkit: UInt32 = 13
    public static let sockmap: UInt32 = 14

    static let names = [
        "unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp", "perf_event",
        "kprobe_multi", "struct_ops", "netfilter", "tcx", "uprobe_multi", "netkit", "sockmap",
    ]

    /// The libbpf name, or "type_<n>" for a type newer than this table.
    public static func name(_ type: UInt32) -> String {
        Int(type) < names.count ? names[Int(type)] : "type_\(type)"
    }

    /// `enum bpf_perf_event_type` names (bpftool's spelling).
    static let perfEventNames = ["unspec", "uprobe", "uretprobe", "kprobe", "kretprobe", "tracepoint", "event"]
}

extension BPFSys {
    /// BPF_OBJ_GET_INFO_BY_FD for a link: what it is (`enum bpf_link_type`), its program, and
    /// what the kernel says about where it is attached.
    ///
    /// Two calls, as bpftool does: the first learns the type, the second passes a buffer for
    /// the name the type carries (tracepoint, iterator target, probed function or file), at the
    /// offset that type reads it from.
    public static func objGetInfoByFD(linkFD fd: BPFFD) throws(BPFError) -> LinkInfo {
        let first = try linkInfo(fd: fd, nameField: nil, nameCapacity: 0)
        let type: UInt32 = first.info.load(LinkInfoLayout.type)
        guard let field = nameField(type: type, perfEventType: first.info.load(LinkInfoLayout.PerfEvent.type)) else {
            return decode(first.info, name: nil)
        }
        var capacity = 256
        while true {
            do {
                let second = try linkInfo(fd: fd, nameField: field, nameCapacity: capacity)
                return decode(second.info, name: second.name)
            } catch let error where error.errno == ENOSPC && capacity < 65536 {
                capacity *= 4
            }
        }
    }

    /// Where the name pointer and its length go for this link type (nil: no name).
    private static func nameField(type: UInt32, perfEventType: UInt32) -> (pointer: Int, length: Int)? {
        switch type {
        case BPFLinkType.rawTracepoint: return (LinkInfoLayout.RawTracepoint.name, LinkInfoLayout.RawTracepoint.nameLength)
        case BPFLinkType.iter: return (LinkInfoLayout.Iter.targetName, LinkInfoLayout.Iter.targetNameLength)
        case BPFLinkType.uprobeMulti: return (LinkInfoLayout.UprobeMulti.path, LinkInfoLayout.UprobeMulti.pathSize)
        case BPFLinkType.perfEvent where (1...5).contains(perfEventType):
            return (LinkInfoLayout.PerfEvent.name, LinkInfoLayout.PerfEvent.nameLength)
        default: return nil
        }
    }

    private final class RawLinkInfo {
        let memory = AttrMemory()
        var info: UnsafeMutableRawBufferPointer
        var name: String?
        init() { info = memory.zeroed(count: LinkInfoLayout.size) }
    }

    private static func linkInfo(fd: BPFFD, nameField: (pointer: Int, length: Int)?,
                                 nameCapacity: Int) throws(BPFError) -> RawLinkInfo {
        let raw = RawLinkInfo()
        var buffer: UnsafeMutableRawBufferPointer?
        if let nameField {
            let name = raw.memory.zeroed(count: nameCapacity)
            raw.info.storeBytes(of: UInt64(UInt(bitPattern: name.baseAddress)), toByteOffset: nameField.pointer, as: UInt64.self)
            raw.info.storeBytes(of: UInt32(nameCapacity), toByteOffset: nameField.length, as: UInt32.self)
            buffer = name
        }
        try getInfo(fd: fd, into: raw.info, memory: raw.memory, what: "link")
        raw.name = buffer?.cStringPrefix()
        return raw
    }

    private static func decode(_ info: UnsafeMutableRawBufferPointer, name: String?) -> LinkInfo {
        typealias L = LinkInfoLayout
        let type: UInt32 = info.load(L.type)
        var details: [String: String] = [:]
        func u32(_ offset: Int) -> UInt32 { info.load(offset) }
        func u64(_ offset: Int) -> UInt64 { info.load(offset) }
        func attachType(_ offset: Int) -> String { BPFAttachType(rawValue: u32(offset)).name }
        switch type {
        case BPFLinkType.rawTracepoint:
            details["tp_name"] = name ?? ""
        case BPFLinkType.tracing:
            details["attach_type"] = attachType(L.Tracing.attachType)
            details["target_obj_id"] = String(u32(L.Tracing.targetObjectID))
            details["target_btf_id"] = String(u32(L.Tracing.targetBTFID))
        case BPFLinkType.cgroup:
            details["cgroup_id"] = String(u64(L.Cgroup.cgroupID))
            details["attach_type"] = attachType(L.Cgroup.attachType)
        case BPFLinkType.iter:
            details["target_name"] = name ?? ""
            if u32(L.Iter.mapID) != 0 { details["map_id"] = String(u32(L.Iter.mapID)) }
        case BPFLinkType.netns:
            details["netns_ino"] = String(u32(L.Netns.inode))
            details["attach_type"] = attachType(L.Netns.attachType)
        case BPFLinkType.xdp:
            details["ifindex"] = String(u32(L.XDP.ifindex))
        case BPFLinkType.structOps:
            details["map_id"] = String(u32(L.StructOps.mapID))
        case BPFLinkType.netfilter:
            details["pf"] = String(u32(L.Netfilter.pf))
            details["hooknum"] = String(u32(L.Netfilter.hook))
            details["priority"] = String(Int32(bitPattern: u32(L.Netfilter.priority)))
            details["flags"] = String(u32(L.Netfilter.flags))
        case BPFLinkType.kprobeMulti:
            details["count"] = String(u32(L.KprobeMulti.count))
            details["retprobe"] = (u32(L.KprobeMulti.flags) & BPFConstants.LinkFlag.kprobeMultiReturn) != 0 ? "true" : "false"
            details["missed"] = String(u64(L.KprobeMulti.missed))
        case BPFLinkType.uprobeMulti:
            details["path"] = name ?? ""
            details["count"] = String(u32(L.UprobeMulti.count))
            details["pid"] = String(u32(L.UprobeMulti.pid))
        case BPFLinkType.perfEvent:
            decodePerfEvent(info, name: name, into: &details)
        case BPFLinkType.tcx, BPFLinkType.netkit:
            details["ifindex"] = String(u32(L.Device.ifindex))
            details["attach_type"] = attachType(L.Device.attachType)
        case BPFLinkType.sockmap:
            details["map_id"] = String(u32(L.Sockmap.mapID))
            details["attach_type"] = attachType(L.Sockmap.attachType)
        default:
            break
        }
        return LinkInfo(id: info.load(L.id), type: type, typeName: BPFLinkType.name(type),
                        programID: info.load(L.programID), details: details)
    }

    private static func decodePerfEvent(_ info: UnsafeMutableRawBufferPointer, name: String?,
                                        into details: inout [String: String]) {
        typealias P = LinkInfoLayout.PerfEvent
        let kind: UInt32 = info.load(P.type)
        // Kernels before 6.6 say nothing about a perf_event link beyond its type.
        guard kind != 0 else { return }
        details["perf_event_type"] = Int(kind) < BPFLinkType.perfEventNames.count ? BPFLinkType.perfEventNames[Int(kind)] : "type_\(kind)"
        switch kind {
        case 1, 2:  // uprobe, uretprobe
            details["file_name"] = name ?? ""
            details["offset"] = BPFSys.hex(UInt64(info.load(P.probeOffset) as UInt32))
        case 3, 4:  // kprobe, kretprobe
            details["func_name"] = name ?? ""
            details["offset"] = BPFSys.hex(UInt64(info.load(P.probeOffset) as UInt32))
            details["missed"] = String(info.load(P.kprobeMissed) as UInt64)
        case 5:
            details["tp_name"] = name ?? ""
        case 6:
            details["config"] = BPFSys.hex(info.load(P.eventConfig))
            details["type"] = String(info.load(P.eventType) as UInt32)
        default:
            break
        }
    }
}
