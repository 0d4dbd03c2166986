import BPFObject
import BPFTestSupport
import Foundation
import Glibc
import Testing

@testable import BPFKernel
import KernelTestSupport

/// XDP and tcx on a veth between two network namespaces the test makes (TEST-NET-1 addresses,
/// nothing leaves them), and a cgroup_skb program on a cgroup v2 the test mounts. Serialized:
/// each test makes namespaces and moves processes, which other tests need not race with.
@Suite("links: network hooks", .serialized, .needsBPF)
struct NetworkLinkTests {
    typealias S = LinkTestSupport

    @Test func xdpGenericCountsDatagramsAndASecondProgramConflicts() throws {
        let obj = try S.load("links_net")
        defer { obj.unload() }
        let veth = try VethPair()
        defer { veth.close() }
        let interface = veth.interfaceA
        let first = try VethPair.inNamespace(veth.namespaceA) {
            var target = AttachTarget()
            target.interface = interface
            target.xdpMode = .generic
            return try obj.attach(program: "xdp_count", target: target)
        }
        defer { first.detach() }
        #expect(first.kind == .xdp)
        let index = try #require(first.info().details["ifindex"].flatMap(UInt32.init))
        #expect(first.target == "\(interface) (ifindex \(index), generic)")
        #expect(try first.info().typeName == "xdp")

        try veth.sendDatagrams(5)
        #expect(try S.eventually { try S.u64(obj, "xdp_udp") == 5 }, "xdp_udp: \((try? S.u64(obj, "xdp_udp")) ?? 0)")

        // A second XDP program on the same interface: the hook is taken, by the first program.
        let firstID = try #require(obj.program(named: "xdp_count")?.id)
        let conflict = try VethPair.inNamespace(veth.namespaceA) { () -> LinkError? in
            var target = AttachTarget()
            target.interface = interface
            target.xdpMode = .generic
            do throws(LinkError) {
                _ = try obj.attach(program: "xdp_other", target: target)
                return nil
            } catch {
                return error
            }
        }
        #expect(conflict == .conflict(hook: "XDP on \(interface)", holder: "program xdp_count (id \(firstID))"))

        // replace: the link holding the interface runs the other program from now on.
        let replaced = try VethPair.inNamespace(veth.namespaceA) {
            var target = AttachTarget()
            target.interface = interface
            target.xdpMode = .generic
            target.replace = true
            return try obj.attach(program: "xdp_other", target: target)
        }
        #expect(replaced.id == first.id)
        #expect(try replaced.info().programID == obj.program(named: "xdp_other")?.id)
        #expect(replaced.notes.first?.contains("BPF_LINK_UPDATE") == true, "\(replaced.notes)")
        try veth.sendDatagrams(3)
        #expect(try S.eventually { try S.u64(obj, "xdp_other_udp") == 3 })
        #expect(try S.u64(obj, "xdp_udp") == 5)

        // Detached (BPF_LINK_DETACH: the shared link leaves the interface): nothing counts.
        replaced.detach()
        try veth.sendDatagrams(2)
        usleep(100_000)
        #expect(try S.u64(obj, "xdp_other_udp") == 3)
        #expect(try S.u64(obj, "xdp_udp") == 5)
    }

    @Test(.enabled(if: S.hasTCX, S.tcxReason))
    func tcxIngressCountsDatagramsUntilDetached() throws {
        let obj = try S.load("links_net")
        defer { obj.unload() }
        let veth = try VethPair()
        defer { veth.close() }
        let interface = veth.interfaceA
        let link = try VethPair.inNamespace(veth.namespaceA) {
            var target = AttachTarget()
            target.interface = interface
            return try obj.attach(program: "tcx_count", target: target)
        }
        #expect(link.kind == .tcx)
        #expect(link.target.hasPrefix("\(interface) (ifindex "))
        #expect(link.target.hasSuffix(", ingress)"))
        let info = try link.info()
        #expect(info.typeName == "tcx")
        #expect(info.details["attach_type"] == "tcx_ingress")

        try veth.sendDatagrams(4)
        #expect(try S.eventually { try S.u64(obj, "tcx_udp") == 4 }, "tcx_udp: \((try? S.u64(obj, "tcx_udp")) ?? 0)")
        link.detach()
        try veth.sendDatagrams(2)
        usleep(100_000)
        #expect(try S.u64(obj, "tcx_udp") == 4)
    }

    @Test func cgroupSkbEgressCountsTheCgroupsDatagrams() throws {
        let obj = try S.load("links_net")
        defer { obj.unload() }
        let veth = try VethPair()
        defer { veth.close() }
        let cgroup = try TestCgroup()
        defer { cgroup.close() }
        var target = AttachTarget()
        target.cgroup = cgroup.child
        let link = try obj.attach(program: "cg_egress", target: target)
        #expect(link.kind == .cgroup)
        #expect(link.target == "\(cgroup.child) (cgroup_inet_egress)")
        let info = try link.info()
        #expect(info.typeName == "cgroup")
        #expect(info.details["attach_type"] == "cgroup_inet_egress")

        try cgroup.run(inNamespace: veth.namespaceB, "for i in 1 2 3 4 5 6; do echo x > /dev/udp/192.0.2.1/9999; done")
        #expect(try S.eventually { try S.u64(obj, "cgroup_udp") == 6 }, "cgroup_udp: \((try? S.u64(obj, "cgroup_udp")) ?? 0)")
        // The same traffic from outside the cgroup is not its.
        try veth.sendDatagrams(3)
        usleep(100_000)
        #expect(try S.u64(obj, "cgroup_udp") == 6)
        link.detach()
        try cgroup.run(inNamespace: veth.namespaceB, "echo x > /dev/udp/192.0.2.1/9999")
        usleep(100_000)
        #expect(try S.u64(obj, "cgroup_udp") == 6)
    }

    @Test func cgroupTargetsThatAreNotCgroupV2AreRefused() throws {
        let obj = try S.load("links_net")
        defer { obj.unload() }
        var target = AttachTarget()
        #expect(throws: LinkError.missingTarget(program: "cg_egress", field: "cgroup", hook: "cgroup")) {
            try obj.attach(program: "cg_egress", target: target)
        }
        for path in ["/nonexistent/bdlink", NSTemporaryDirectory(), "/sys/fs/cgroup/memory"] {
            target.cgroup = path
            #expect {
                try obj.attach(program: "cg_egress", target: target)
            } throws: { error in
                guard case .unknownCgroup(let p, _) = error as? LinkError else { return false }
                return p == path
            }
        }
    }
}
