import BPFKernel
import BPFTestSupport
import Foundation
import KernelTestSupport
import Testing

/// `?follow=N` over a loopback server on arena_list.bpf.c: the list a BPF program built in its
/// arena reads as its nodes, and no read makes the kernel allocate an arena page.
/// (Arena maps: the 6.12 VM of the kernel matrix; this host refuses them.)
@Suite("following arena pointers", .serialized, .needsBPF)
struct ArenaFollowTests {
    static func walk(_ v: Any?) -> (values: [Int], end: [String: Any]?) {
        var values: [Int] = []
        var cur = v as? [String: Any]
        while let c = cur {
            guard let target = c["target"] as? [String: Any] else { return (values, c) }
            if let n = (target["value"] as? NSNumber)?.intValue { values.append(n) }
            cur = target["next"] as? [String: Any]
            if target["next"] is NSNull { return (values, nil) }
        }
        return (values, nil)
    }

    @Test(.needsArenaMaps, .arenaTally) func anArenaListReadsAsItsNodesAndNoReadAllocatesAPage() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let up = try c.send("POST", "/v1/objects?name=arena_list.o", bytes: try Fixtures.bytes("arena_list"))
        let oid = try #require(up.json["id"] as? String, "\(up.text)")
        #expect(try c.send("PATCH", "/v1/objects/\(oid)/variables", json: #"{"list_len": 20}"#).status == 200)
        let loaded = try c.send("POST", "/v1/objects/\(oid)/loads")
        let load = try #require(loaded.json["id"] as? Int, "\(loaded.text)")
        let run = try c.send("POST", "/v1/loads/\(load)/programs/list_build/run")
        #expect(run.status == 200 && run.json["retval"] as? Int == 0, "\(run.text)")
        let obj = try f.depot.loaded(Int64(load))
        let start = try #require(obj.arenaAddress)

        let before = try #require(try f.depot.arenaPages(loadID: Int64(load)))
        #expect(before.filter { $0 }.count >= 1, "the image page and the list's page exist")

        // The whole list, in order, from its head; each prev points at the node shown before.
        let head = try c.get("/v1/loads/\(load)/variables/list_head?follow=30")
        #expect(head.status == 200, "\(head.text)")
        let (values, end) = Self.walk(head.json["value"])
        #expect(values == Array(1...20), "\(head.text.prefix(600))")
        #expect(end == nil, "the last node's next is null")
        let second = ((head.json["value"] as? [String: Any])?["target"] as? [String: Any])?["next"] as? [String: Any]
        #expect(((second?["target"] as? [String: Any])?["prev"] as? [String: Any])?["seen"] as? Bool == true)

        // From the tail, two levels: node 20, node 19, then the depth limit.
        let tail = try c.get("/v1/loads/\(load)/variables/list_tail?follow=2")
        let t0 = (tail.json["value"] as? [String: Any])?["target"] as? [String: Any]
        let t1 = (t0?["prev"] as? [String: Any])?["target"] as? [String: Any]
        #expect((t0?["value"] as? NSNumber)?.intValue == 20 && (t1?["value"] as? NSNumber)?.intValue == 19, "\(tail.text)")
        #expect((t1?["prev"] as? [String: Any])?["more"] as? String == "depth")

        // A pointer into a page no program allocated: shown absent, and still not allocated.
        let fresh = try #require(before.lastIndex(of: false), "a page the list did not use")
        let address = start + UInt64(fresh) * 4096
        #expect(try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"list_tail": \#(address)}"#).status == 200)
        let absent = try c.get("/v1/loads/\(load)/variables/list_tail?follow=3")
        #expect((absent.json["value"] as? [String: Any])?["absent"] as? Bool == true, "\(absent.text)")
        let after = try #require(try f.depot.arenaPages(loadID: Int64(load)))
        #expect(after == before, "follow reads allocated no arena page")

        // The probe does see a page appear when user space touches a fresh one.
        _ = try obj.readArena(offset: fresh * 4096, count: 1)
        let touched = try #require(try f.depot.arenaPages(loadID: Int64(load)))
        #expect(touched[fresh] == true && touched.filter { $0 }.count == before.filter { $0 }.count + 1)
        // …and a follow through it now reads the (zeroed) node.
        let now = try c.get("/v1/loads/\(load)/variables/list_tail?follow=1")
        let node = (now.json["value"] as? [String: Any])?["target"] as? [String: Any]
        #expect((node?["value"] as? NSNumber)?.intValue == 0, "\(now.text)")

        // Watching with follow: the tag covers what the pointers reach.
        let plainTag = try c.get("/v1/loads/\(load)/variables/list_head?follow=30").headers["ETag"]
        let realTail = try #require((tail.json["value"] as? [String: Any])?["ptr"] as? String)
        let tailAddress = try #require(UInt64(realTail.dropFirst(2), radix: 16))
        #expect(try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"list_tail": \#(tailAddress)}"#).status == 200)
        _ = try c.send("POST", "/v1/loads/\(load)/programs/list_build/run")  // appends 20 more nodes
        let grown = try c.get("/v1/loads/\(load)/variables/list_head?follow=60")
        #expect(Self.walk(grown.json["value"]).values.count == 40, "\(grown.text.prefix(300))")
        #expect(try c.get("/v1/loads/\(load)/variables/list_head?follow=30").headers["ETag"] != plainTag)
    }

    @Test func followParametersAreChecked() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let (_, load) = try ObservabilityTests.uploadAndLoad(c, "globals_run")
        // Without an arena, follow is harmless: numbers and strings read as before.
        let r = try c.get("/v1/loads/\(load)/variables?names=input&follow=2")
        #expect(r.status == 200 && r.text.contains(#""value":20"#), "\(r.text)")
        #expect(try c.get("/v1/loads/\(load)/variables?follow=101").status == 400)
        #expect(try c.get("/v1/loads/\(load)/variables?follow=2&nodes=0").status == 400)
        #expect(try c.get("/v1/loads/\(load)/variables?nodes=5").status == 400)
    }
}
