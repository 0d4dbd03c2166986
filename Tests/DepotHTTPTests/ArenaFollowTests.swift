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

    /// The elements along an hlist read with follow: values, and each element's JSON.
    static func elements(_ first: Any?) -> (values: [Int], elems: [[String: Any]], end: Any?) {
        var values: [Int] = [], elems: [[String: Any]] = []
        var cur: Any? = first
        while let c = cur as? [String: Any], let e = c["target"] as? [String: Any] {
            if let n = (e["value"] as? NSNumber)?.intValue { values.append(n) }
            elems.append(e)
            cur = (e["node"] as? [String: Any])?["next"]
        }
        return (values, elems, cur)
    }

    /// arena_hlist.bpf.c, the kernel selftests' list shape (hlist nodes embedded in elements,
    /// pprev into the previous element): read through a .bss pointer, as its elements with
    /// their values; budgets, a cycle the program makes, an unallocated page; and the arena's
    /// page count, asked of the kernel's own allocator (count_pages), unchanged by every read.
    @Test(.needsArenaMaps, .arenaTally) func aKernelStyleHlistReadsAsItsElementsAndTheAllocatorCountsNoNewPage() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let up = try c.send("POST", "/v1/objects?name=arena_hlist.o", bytes: try Fixtures.bytes("arena_hlist"))
        let oid = try #require(up.json["id"] as? String, "\(up.text)")
        #expect(try c.send("PATCH", "/v1/objects/\(oid)/variables", json: #"{"elem_count": 12}"#).status == 200)
        let loaded = try c.send("POST", "/v1/objects/\(oid)/loads")
        let load = try #require(loaded.json["id"] as? Int, "\(loaded.text)")
        func run(_ program: String) throws -> Int? {
            let r = try c.send("POST", "/v1/loads/\(load)/programs/\(program)/run")
            #expect(r.status == 200, "\(program): \(r.text)")
            return (r.json["retval"] as? NSNumber)?.intValue
        }
        #expect(try run("count_pages") == 0, "no page before the list is built")
        #expect(try run("hlist_build") == 0)
        #expect(try run("count_pages") == 1, "the list's page")
        let base: UInt64 = 0x1800_0000_0000
        let probed = try #require(try f.depot.arenaPages(loadID: Int64(load)))
        #expect(probed.enumerated().filter { $0.element }.map(\.offset) == [0], "the probe agrees: page 0 only")

        // head -> elements 112, 111, ..., 101 (pushed at the front), each with its value.
        let r = try c.get("/v1/loads/\(load)/variables/list_head?follow=20")
        #expect(r.status == 200, "\(r.text)")
        let head = try #require(r.json["value"] as? [String: Any], "\(r.text)")
        #expect(head["ptr"] as? String == "0x180000000000")
        let first = (head["target"] as? [String: Any])?["first"] as? [String: Any]
        #expect(first?["container"] as? String == "elem" && first?["member"] as? String == "node", "\(r.text.prefix(400))")
        let (values, elems, end) = Self.elements(first)
        #expect(values == Array((101...112).reversed()), "\(r.text.prefix(800))")
        #expect(end is NSNull, "the last element's next is null")
        // pprev: the front element's names the head (shown), the others' the previous element's
        // next field, 16 bytes into it: seen, within that element.
        let pprev0 = (elems.first?["node"] as? [String: Any])?["pprev"] as? [String: Any]
        #expect(pprev0?["seen"] as? Bool == true && pprev0?["ptr"] as? String == "0x180000000000" && pprev0?["within"] == nil)
        for (i, e) in elems.enumerated().dropFirst() {
            let p = (e["node"] as? [String: Any])?["pprev"] as? [String: Any]
            // Element i was pushed right after element i - 1 was, so it sits 32 bytes below it.
            let prevStart = base + 64 + 32 * UInt64(12 - i)
            #expect(p?["seen"] as? Bool == true && p?["within"] as? String == "0x" + String(prevStart, radix: 16)
                    && p?["ptr"] as? String == "0x" + String(prevStart + 16, radix: 16), "element \(i): \(String(describing: p))")
        }
        // The element after the head's: its pprev is within the front element, which starts 64 bytes
        // into the page plus 32 per element pushed before it (11 of them).
        let secondPprev = (elems.dropFirst().first?["node"] as? [String: Any])?["pprev"] as? [String: Any]
        #expect(secondPprev?["within"] as? String == "0x" + String(base + 64 + 32 * 11, radix: 16), "\(String(describing: secondPprev))")
        #expect(secondPprev?["ptr"] as? String == "0x" + String(base + 64 + 32 * 11 + 16, radix: 16))

        // Budgets: 4 nodes are the head and 3 elements; depth 3 the head and 2 elements.
        let budget = try c.get("/v1/loads/\(load)/variables/list_head?follow=20&nodes=4")
        let b = Self.elements(((budget.json["value"] as? [String: Any])?["target"] as? [String: Any])?["first"])
        #expect(b.values == [112, 111, 110] && (b.end as? [String: Any])?["more"] as? String == "nodes", "\(budget.text.prefix(600))")
        let shallow = try c.get("/v1/loads/\(load)/variables/list_head?follow=3")
        let d = Self.elements(((shallow.json["value"] as? [String: Any])?["target"] as? [String: Any])?["first"])
        #expect(d.values == [112, 111] && (d.end as? [String: Any])?["more"] as? String == "depth", "\(shallow.text.prefix(600))")

        // A cycle the program makes: the last element's next back at the front element's node.
        #expect(try run("hlist_cycle") == 0)
        let cyc = try c.get("/v1/loads/\(load)/variables/list_head?follow=50")
        let cy = Self.elements(((cyc.json["value"] as? [String: Any])?["target"] as? [String: Any])?["first"])
        #expect(cy.values == Array((101...112).reversed()), "\(cyc.text.prefix(300))")
        let back = cy.end as? [String: Any]
        #expect(back?["seen"] as? Bool == true && back?["ptr"] as? String == first?["ptr"] as? String
                && back?["within"] as? String == "0x" + String(base + 64 + 32 * 11, radix: 16), "\(String(describing: back))")

        // The .bss pointer aimed at a page never allocated: absent, and still not allocated.
        #expect(try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"list_head": \#(base + 9 * 4096)}"#).status == 200)
        let absent = try c.get("/v1/loads/\(load)/variables/list_head?follow=5")
        #expect((absent.json["value"] as? [String: Any])?["absent"] as? Bool == true, "\(absent.text)")
        // Only the low 32 bits of an address (the kernel's own form of an arena address; the
        // head's, offset 0, would be null) name the same memory: the front element's node read
        // as a head, whose `first` is the element after it.
        let frontNode: UInt64 = 64 + 32 * 11 + 16
        #expect(try c.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"list_head": \#(frontNode)}"#).status == 200)
        let low = try c.get("/v1/loads/\(load)/variables/list_head?follow=50")
        #expect(Self.elements(((low.json["value"] as? [String: Any])?["target"] as? [String: Any])?["first"]).values == Array((101...111).reversed()),
                "\(low.text.prefix(300))")

        // Every read above allocated nothing: the allocator's count and the probe's bitmap.
        #expect(try run("count_pages") == 1, "follow reads allocated no arena page")
        #expect(try f.depot.arenaPages(loadID: Int64(load)) == probed)
        // The count does see a page user space faults in on purpose (so it would have seen one).
        let obj = try f.depot.loaded(Int64(load))
        _ = try obj.readArena(offset: 9 * 4096, count: 1)
        #expect(try run("count_pages") == 2, "a user fault allocates, and the allocator counts it")
        #expect(try f.depot.arenaPages(loadID: Int64(load))?[9] == true)
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
