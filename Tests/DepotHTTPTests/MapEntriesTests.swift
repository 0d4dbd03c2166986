import BPFKernel
import BPFTestSupport
import Foundation
import KernelTestSupport
import Testing

/// Typed map reads and writes over a loopback server, against what an XDP program run through
/// BPF_PROG_TEST_RUN wrote into one map of every kind (Tests/Fixtures/maps_live.bpf.c).
@Suite("map entries through the service", .serialized, .needsBPF)
struct MapEntriesTests {
    /// Possible CPUs, read here independently of the service.
    static func possibleCPUs() throws -> Int {
        let text = try String(contentsOfFile: "/sys/devices/system/cpu/possible", encoding: .utf8)
        var n = 0
        for part in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let r = part.split(separator: "-").compactMap { Int($0) }
            n += r.count == 2 ? r[1] - r[0] + 1 : 1
        }
        return n
    }

    /// A loaded, filled maps_live: (client, load id).
    static func filled(_ f: ServiceFixture, _ s: LoopbackServer) throws -> (ServiceClient, Int) {
        let c = ServiceClient(s)
        let (_, load) = try ObservabilityTests.uploadAndLoad(c, "maps_live")
        let packet = Data(repeating: 0, count: 64).base64EncodedString()
        let run = try c.send("POST", "/v1/loads/\(load)/programs/fill/run", json: #"{"data": "\#(packet)"}"#)
        #expect(run.status == 200, "\(run.text)")
        #expect(run.json["retval"] as? Int == 2, "XDP_PASS: \(run.text)")
        return (c, load)
    }

    static func entries(_ c: ServiceClient, _ load: Int, _ map: String, query: String = "") throws -> [[String: Any]] {
        let name = map.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? map
        let r = try c.get("/v1/loads/\(load)/maps/\(name)/entries\(query)")
        #expect(r.status == 200, "\(map): \(r.text)")
        return r.json["entries"] as? [[String: Any]] ?? []
    }

    static func int(_ v: Any?) -> Int? { (v as? NSNumber)?.intValue }

    @Test func everyMapKindReadsBackWhatTheProgramWrote() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let (c, load) = try Self.filled(f, s)
        let cpus = try Self.possibleCPUs()

        // The listing: every map, with libbpf's names and BTF type names.
        let list = try c.get("/v1/loads/\(load)/maps")
        #expect(list.status == 200, "\(list.text)")
        let maps = try #require(list.json["maps"] as? [[String: Any]])
        let byName = Dictionary(maps.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(Set(byName.keys).isSuperset(of: ["stats", "flows", "recent", "cpu_hits", "cpu_flows", "routes", "events", ".data.read_mostly"]),
                "\(byName.keys.sorted())")
        #expect(byName["flows"]?["type"] as? String == "hash")
        #expect(byName["flows"]?["keyType"] as? String == "struct flow_key")
        #expect(byName["flows"]?["valueType"] as? String == "struct stats")
        #expect(byName["cpu_flows"]?["type"] as? String == "percpu_hash")
        #expect(byName["routes"]?["type"] as? String == "lpm_trie")
        #expect(byName["events"]?["lookup"] as? Bool == false)
        #expect(Self.int(byName["stats"]?["entries"]) == 4)
        #expect(byName[".data.read_mostly"]?["kernelName"] as? String == ".data.read_most", "the kernel keeps 15 characters")
        // As libbpf's bpf_map__name: .data.* and .rodata.* by the whole section name, .bss.* not.
        #expect(byName[".rodata.limits_for_tenants"]?["kernelName"] as? String == ".rodata.limits_")
        #expect(byName[".bss.counters_p"]?["kernelName"] as? String == ".bss.counters_p", "\(byName.keys.sorted())")
        #expect(byName[".bss.counters_per_device"] == nil)
        #expect((byName["stats"]?["kernelId"] as? NSNumber).map { $0.intValue > 0 } == true)

        // `bpfdepot inspect --json` names the maps as the API does (and as libbpf, see
        // LibbpfOracleTests), with the same kernel names, in the same order.
        let inspect = try runProcess(ServeProcess.binary, ["inspect", "--json", try Fixtures.objectPath("maps_live").path])
        #expect(inspect.code == 0, "\(inspect.err)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(inspect.out.utf8)) as? [String: Any])
        let inspected = try #require(summary["maps"] as? [[String: Any]])
        #expect(inspected.map { $0["name"] as? String ?? "" } == maps.map { $0["name"] as? String ?? "" })
        #expect(inspected.map { $0["kernelName"] as? String ?? "" } == maps.map { $0["kernelName"] as? String ?? "" })

        // array: key i → {packets 10(i+1), bytes 1500(i+1), kind, name "s<i>"}
        let stats = try Self.entries(c, load, "stats")
        #expect(stats.count == 4)
        for e in stats {
            let i = try #require(Self.int(e["key"]))
            let v = try #require(e["value"] as? [String: Any])
            #expect(Self.int(v["packets"]) == 10 * (i + 1) && Self.int(v["bytes"]) == 1500 * (i + 1), "\(e)")
            #expect(v["kind"] as? String == (i % 2 == 1 ? "KIND_TCP" : "KIND_UDP"))
            #expect(v["name"] as? String == "s\(i)")
        }

        // hash with a struct key: five flows, in whatever order the kernel walks them.
        let flows = try Self.entries(c, load, "flows")
        var seen = Set<Int>()
        for e in flows {
            let k = try #require(e["key"] as? [String: Any]), v = try #require(e["value"] as? [String: Any])
            let i = try #require(Self.int(k["saddr"])) - 0x0a00_0001
            seen.insert(i)
            #expect(Self.int(k["dport"]) == 8000 + i && Self.int(k["proto"]) == (i % 2 == 1 ? 17 : 6), "\(e)")
            #expect(Self.int(v["packets"]) == i + 1 && Self.int(v["bytes"]) == 100 * (i + 1) && v["name"] as? String == "f\(i)", "\(e)")
        }
        #expect(seen == Set(0..<5))

        // LRU hash
        let recent = try Self.entries(c, load, "recent")
        #expect(Dictionary(uniqueKeysWithValues: recent.compactMap { e in Self.int(e["key"]).map { ($0, Self.int(e["value"])) } })
                == [100: 7, 101: 14, 102: 21])

        // per-CPU array: one value per possible CPU, and their sum.
        let hits = try Self.entries(c, load, "cpu_hits")
        #expect(hits.count == 4)
        for e in hits {
            let i = try #require(Self.int(e["key"]))
            let values = (e["values"] as? [Any] ?? []).compactMap(Self.int)
            #expect(values == (0..<cpus).map { 1000 * $0 + i + 1 }, "\(e)")
            #expect(Self.int(e["sum"]) == (0..<cpus).reduce(0) { $0 + 1000 * $1 + i + 1 })
        }

        // per-CPU hash with struct values: numbers summed, bools or'ed.
        let cpuFlows = try Self.entries(c, load, "cpu_flows")
        #expect(Set(cpuFlows.compactMap { Self.int($0["key"]) }) == [7, 8])
        for e in cpuFlows {
            let k = try #require(Self.int(e["key"]))
            let values = try #require(e["values"] as? [[String: Any]])
            #expect(values.count == cpus)
            for (cpu, v) in values.enumerated() {
                #expect(Self.int(v["hits"]) == k * (cpu + 1) && Self.int(v["last_cpu"]) == cpu && v["flag"] as? Bool == (cpu == 0), "\(v)")
            }
            let sum = try #require(e["sum"] as? [String: Any])
            #expect(Self.int(sum["hits"]) == (0..<cpus).reduce(0) { $0 + k * ($1 + 1) })
            #expect(sum["flag"] as? Bool == true)
        }

        // LRU per-CPU hash
        let lru = try Self.entries(c, load, "lru_cpu")
        #expect(lru.count == 1 && Self.int(lru.first?["key"]) == 5, "\(lru)")
        #expect((lru.first?["values"] as? [Any] ?? []).compactMap(Self.int) == (0..<cpus).map { 10 * ($0 + 1) })
        #expect(Self.int(lru.first?["sum"]) == (0..<cpus).reduce(0) { $0 + 10 * ($1 + 1) })
        #expect(byName["lru_cpu"]?["type"] as? String == "lru_percpu_hash")

        // LPM trie
        let routes = try Self.entries(c, load, "routes")
        var table: [Int: Int] = [:]
        for e in routes {
            let k = try #require(e["key"] as? [String: Any])
            table[try #require(Self.int(k["prefixlen"]))] = Self.int(e["value"])
        }
        #expect(table == [8: 1, 24: 2, 16: 3])

        // A custom data section's map by its whole name: its one value is the section's variables.
        let tuning = try Self.entries(c, load, ".data.read_mostly")
        #expect(tuning.count == 1 && Self.int(tuning.first?["key"]) == 0)
        #expect(Self.int((tuning.first?["value"] as? [String: Any])?["tuning"]) == 43, "42 + the run's 1")
        let limits = try Self.entries(c, load, ".rodata.limits_for_tenants")
        #expect(Self.int((limits.first?["value"] as? [String: Any])?["tenant_limit"]) == 7, "\(limits)")
        // The .bss.* map by libbpf's (the kernel's) name, and by its whole section name too.
        for name in [".bss.counters_p", ".bss.counters_per_device"] {
            let bss = try Self.entries(c, load, name)
            #expect(Self.int((bss.first?["value"] as? [String: Any])?["device_total"]) == 7, "\(name): \(bss)")
        }
        // A data section's value is written typed, as it reads; the variable sees it (same memory).
        let retune = try c.send("PUT", "/v1/loads/\(load)/maps/.data.read_mostly/entries/0", json: #"{"value": {"tuning": 50}}"#)
        #expect(retune.status == 200 && Self.int((retune.json["value"] as? [String: Any])?["tuning"]) == 50, "\(retune.text)")
        let variable = try c.get("/v1/loads/\(load)/variables/tuning")
        #expect(Self.int(variable.json["value"]) == 50, "\(variable.text)")
        let unknownVar = try c.send("PUT", "/v1/loads/\(load)/maps/.data.read_mostly/entries/0", json: #"{"value": {"nope": 1}}"#)
        #expect(unknownVar.status == 422 && unknownVar.text.contains("tuning"), "names the variables it has: \(unknownVar.text)")
        // A frozen .rodata map takes no writes from user space: 409 read-only, nothing changed.
        let frozen = try c.send("PUT", "/v1/loads/\(load)/maps/.rodata.limits_for_tenants/entries/0", json: #"{"value": {"tenant_limit": 9}}"#)
        #expect(frozen.status == 409 && (frozen.json["type"] as? String)?.hasSuffix("read-only") == true, "\(frozen.status) \(frozen.text)")
        #expect(Self.int((try Self.entries(c, load, ".rodata.limits_for_tenants").first?["value"] as? [String: Any])?["tenant_limit"]) == 7)

        // A ring buffer has no entries by key: 422 saying so; an unknown map is 404.
        let ring = try c.get("/v1/loads/\(load)/maps/events/entries")
        #expect(ring.status == 422 && (ring.json["type"] as? String)?.hasSuffix("map-not-readable") == true, "\(ring.text)")
        #expect(ring.json["mapType"] as? String == "ringbuf")
        let unknown = try c.get("/v1/loads/\(load)/maps/nope/entries")
        #expect(unknown.status == 404 && (unknown.json["type"] as? String)?.hasSuffix("unknown-map") == true, "\(unknown.text)")
    }

    @Test func pagesCoverEveryKeyOnceAndTagsChangeWithTheBytes() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let (c, load) = try Self.filled(f, s)
        for map in ["flows", "routes", "stats"] {
            var keys: [String] = []
            var after: String?
            var pages = 0
            repeat {
                let q = "?limit=2" + (after.map { "&after=\($0)" } ?? "")
                let r = try c.get("/v1/loads/\(load)/maps/\(map)/entries\(q)")
                #expect(r.status == 200, "\(r.text)")
                let page = r.json["entries"] as? [[String: Any]] ?? []
                #expect(page.count <= 2 || map == "flows", "\(map): a page holds at most the limit (hash buckets may exceed it)")
                keys += page.map { jsonText($0["key"]) }
                after = r.json["next"] as? String
                pages += 1
            } while after != nil && pages < 20
            let all = try Self.entries(c, load, map).map { jsonText($0["key"]) }
            #expect(keys.sorted() == all.sorted(), "\(map): paged \(keys) vs all \(all)")
            #expect(Set(keys).count == keys.count, "\(map): no key twice")
        }

        // ETag: unchanged bytes → 304; a write → a new tag.
        let first = try c.get("/v1/loads/\(load)/maps/recent/entries")
        let tag = try #require(first.headers["ETag"])
        #expect(try c.get("/v1/loads/\(load)/maps/recent/entries", headers: [("If-None-Match", tag)]).status == 304)
        let put = try c.send("PUT", "/v1/loads/\(load)/maps/recent/entries/100", json: #"{"value": 99}"#)
        #expect(put.status == 200 && Self.int(put.json["value"]) == 99, "\(put.text)")
        let after = try c.get("/v1/loads/\(load)/maps/recent/entries", headers: [("If-None-Match", tag)])
        #expect(after.status == 200 && after.headers["ETag"] != tag)
        let bad = try c.get("/v1/loads/\(load)/maps/recent/entries?after=zz")
        #expect(bad.status == 400, "\(bad.text)")
    }

    @Test func entriesByTypedKeyAndHexKeyCanBeReadWrittenAndDeleted() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let (c, load) = try Self.filled(f, s)
        func enc(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }

        // A struct key as typed JSON (members left out are zero).
        let key = #"{"saddr": 167772163, "dport": 8002, "proto": 6}"#
        let one = try c.get("/v1/loads/\(load)/maps/flows/entries/\(enc(key))")
        #expect(one.status == 200, "\(one.text)")
        #expect(Self.int((one.json["value"] as? [String: Any])?["packets"]) == 3)

        // The same entry by its raw bytes: saddr LE, dport LE, proto, pad.
        let hex = "hex:030000" + "0a" + "421f" + "06" + "00"
        let raw = try c.get("/v1/loads/\(load)/maps/flows/entries/\(enc(hex))")
        #expect(raw.status == 200 && jsonText(raw.json["value"]) == jsonText(one.json["value"]), "\(raw.text)")

        // Write a new flow, typed; read it back; delete it; it is gone.
        let newKey = enc(#"{"saddr": 1, "dport": 53, "proto": 17}"#)
        let put = try c.send("PUT", "/v1/loads/\(load)/maps/flows/entries/\(newKey)",
                             json: #"{"value": {"packets": 5, "bytes": 640, "kind": "KIND_UDP", "name": "dns"}}"#)
        #expect(put.status == 200, "\(put.text)")
        let back = try c.get("/v1/loads/\(load)/maps/flows/entries/\(newKey)")
        #expect((back.json["value"] as? [String: Any])?["name"] as? String == "dns", "\(back.text)")
        #expect(try c.send("DELETE", "/v1/loads/\(load)/maps/flows/entries/\(newKey)").status == 204)
        let gone = try c.get("/v1/loads/\(load)/maps/flows/entries/\(newKey)")
        #expect(gone.status == 404 && (gone.json["type"] as? String)?.hasSuffix("no-such-entry") == true, "\(gone.text)")
        #expect(try c.send("DELETE", "/v1/loads/\(load)/maps/flows/entries/\(newKey)").status == 404)

        // Per-CPU: one value for every CPU, or a list with one per CPU.
        let cpus = try Self.possibleCPUs()
        let all = try c.send("PUT", "/v1/loads/\(load)/maps/cpu_hits/entries/2", json: #"{"value": 5}"#)
        #expect(all.status == 200 && (all.json["values"] as? [Any] ?? []).compactMap(Self.int) == Array(repeating: 5, count: cpus), "\(all.text)")
        let list = (0..<cpus).map { String($0 * 10) }.joined(separator: ",")
        let each = try c.send("PUT", "/v1/loads/\(load)/maps/cpu_hits/entries/2", json: #"{"values": [\#(list)]}"#)
        #expect((each.json["values"] as? [Any] ?? []).compactMap(Self.int) == (0..<cpus).map { $0 * 10 }, "\(each.text)")
        #expect(Self.int(each.json["sum"]) == (0..<cpus).reduce(0) { $0 + $1 * 10 })
        let wrongCount = try c.send("PUT", "/v1/loads/\(load)/maps/cpu_hits/entries/2", json: #"{"values": [1]}"#)
        #expect(wrongCount.status == 422, "\(wrongCount.text)")

        // LPM trie by typed key.
        let route = try c.get("/v1/loads/\(load)/maps/routes/entries/\(enc(#"{"prefixlen": 16, "addr": [192, 168, 0, 0]}"#))")
        #expect(route.status == 200 && Self.int(route.json["value"]) == 3, "\(route.text)")

        // Bad keys: wrong type, wrong size, unknown member; bad value: out of range.
        #expect(try c.get("/v1/loads/\(load)/maps/flows/entries/\(enc("\"text\""))").status == 400)
        #expect(try c.get("/v1/loads/\(load)/maps/flows/entries/\(enc("hex:00"))").status == 400)
        #expect(try c.get("/v1/loads/\(load)/maps/flows/entries/\(enc(#"{"nope": 1}"#))").status == 400)
        let range = try c.send("PUT", "/v1/loads/\(load)/maps/recent/entries/100", json: #"{"value": -1}"#)
        #expect(range.status == 422 && (range.json["type"] as? String)?.hasSuffix("bad-value") == true, "\(range.text)")
        // Nothing was written by the refused PUT.
        #expect(Self.int(try c.get("/v1/loads/\(load)/maps/recent/entries/100").json["value"]) == 7)
    }

    @Test func exportedMapsBecomePrometheusSeriesWithTheKeyAsLabels() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let (c, load) = try Self.filled(f, s)
        let cpus = try Self.possibleCPUs()

        let put = try c.send("PUT", "/v1/loads/\(load)/metrics", json: #"{"variables": ["tuning"], "maps": ["flows", "cpu_hits"]}"#)
        #expect(put.status == 200, "\(put.text)")
        #expect(put.json["maps"] as? [String] == ["cpu_hits", "flows"] && put.json["variables"] as? [String] == ["tuning"], "\(put.text)")
        #expect(try c.get("/v1/loads/\(load)/metrics").json["maps"] as? [String] == ["cpu_hits", "flows"])

        let scrape = try c.scrape()
        // A struct key: one label per member; each numeric leaf of the value one series.
        let flow2 = ["load": "\(load)", "map": "flows", "key_saddr": "167772163", "key_dport": "8002", "key_proto": "6", "key_pad": "0"]
        #expect(scrape.value("bpfdepot_map_value", flow2.merging(["field": "packets"]) { $1 }) == 3, "\(scrape.all("bpfdepot_map_value"))")
        #expect(scrape.value("bpfdepot_map_value", flow2.merging(["field": "bytes"]) { $1 }) == 300)
        #expect(scrape.all("bpfdepot_map_value").filter { $0.labels["map"] == "flows" }.count == 5 * 2, "packets and bytes of 5 flows (kind is an enum, shown by name)")
        // A per-CPU map: summed over CPUs, the scalar key as `key`.
        for i in 0..<4 {
            let sum = (0..<cpus).reduce(0) { $0 + 1000 * $1 + i + 1 }
            #expect(scrape.value("bpfdepot_map_value", ["load": "\(load)", "map": "cpu_hits", "key": "\(i)", "field": "value"]) == Double(sum))
        }
        #expect(scrape.value("bpfdepot_variable", ["load": "\(load)", "name": "tuning"]) == 43)

        // A live change shows at the next scrape.
        _ = try c.send("PUT", "/v1/loads/\(load)/maps/cpu_hits/entries/0", json: #"{"value": 2}"#)
        #expect(try c.scrape().value("bpfdepot_map_value", ["load": "\(load)", "map": "cpu_hits", "key": "0", "field": "value"]) == Double(2 * cpus))

        // Refused: a ring buffer (422), an unknown map (404); the stored lists are unchanged.
        #expect(try c.send("PUT", "/v1/loads/\(load)/metrics", json: #"{"maps": ["events"]}"#).status == 422)
        #expect(try c.send("PUT", "/v1/loads/\(load)/metrics", json: #"{"maps": ["nope"]}"#).status == 404)
        #expect(try c.get("/v1/loads/\(load)/metrics").json["maps"] as? [String] == ["cpu_hits", "flows"])
    }

    /// On `flows`, a plain hash with room to spare. Not on the LRU map `recent`: an LRU hash takes a
    /// free node before it checks BPF_EXIST/BPF_NOEXIST, and taking one may evict any entry, so on
    /// Linux 6.1 a refused `If-Match: *` write evicted the entry this test had just created.
    @Test func oneEntryIsTaggedAndWritesCanBeCreateOnlyOrReplaceOnly() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let (c, load) = try Self.filled(f, s)
        func entry(_ key: String) -> String {
            "/v1/loads/\(load)/maps/flows/entries/" + (key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key)
        }
        func packets(_ r: CurlResponse) -> Int? { Self.int((r.json["value"] as? [String: Any])?["packets"]) }
        func value(_ n: Int) -> String { #"{"value": {"packets": \#(n)}}"# }
        let flow0 = #"{"saddr": 167772161, "dport": 8000, "proto": 6}"#   // the run wrote packets 1
        let flow1 = #"{"saddr": 167772162, "dport": 8001, "proto": 17}"#  // packets 2
        let new = #"{"saddr": 200}"#
        let absent = #"{"saddr": 300}"#

        // GET by key: a content tag; the same bytes → 304 (no body), a write → a new tag.
        let first = try c.get(entry(flow0))
        let tag = try #require(first.headers["ETag"], "\(first.text)")
        #expect(first.status == 200 && packets(first) == 1)
        let same = try c.get(entry(flow0), headers: [("If-None-Match", tag)])
        #expect(same.status == 304 && same.text.isEmpty && same.headers["ETag"] == tag)
        #expect(try c.get(entry(flow1), headers: [("If-None-Match", tag)]).status == 200, "another key, other bytes, another tag")
        #expect(try c.send("PUT", entry(flow0), json: value(15)).status == 200)
        let changed = try c.get(entry(flow0), headers: [("If-None-Match", tag)])
        #expect(changed.status == 200 && changed.headers["ETag"] != tag && packets(changed) == 15)

        // If-None-Match: * creates only: a new key is made once, then refused with 412, unchanged.
        let created = try c.send("PUT", entry(new), json: value(1), headers: [("If-None-Match", "*")])
        #expect(created.status == 200 && packets(created) == 1, "\(created.text)")
        let again = try c.send("PUT", entry(new), json: value(2), headers: [("If-None-Match", "*")])
        #expect(again.status == 412 && (again.json["type"] as? String)?.hasSuffix("precondition-failed") == true, "\(again.text)")
        #expect(packets(try c.get(entry(new))) == 1)
        // An array holds every key: create-only always finds one.
        let arrayCreate = try c.send("PUT", "/v1/loads/\(load)/maps/cpu_hits/entries/0", json: #"{"value": 9}"#,
                                     headers: [("If-None-Match", "*")])
        #expect(arrayCreate.status == 412, "\(arrayCreate.text)")

        // If-Match: * replaces only: a missing key stays missing (412); a present one is replaced.
        let missing = try c.send("PUT", entry(absent), json: value(3), headers: [("If-Match", "*")])
        #expect(missing.status == 412, "\(missing.text)")
        #expect(try c.get(entry(absent)).status == 404, "nothing was created")
        let replaced = try c.send("PUT", entry(new), json: value(4), headers: [("If-Match", "*")])
        #expect(replaced.status == 200 && packets(replaced) == 4, "\(replaced.text)")

        // Entity tags would need a compare-and-swap the kernel lacks: 400, nothing written.
        let tagged = try c.send("PUT", entry(new), json: value(5), headers: [("If-Match", tag)])
        #expect(tagged.status == 400 && (tagged.json["type"] as? String)?.hasSuffix("invalid-precondition") == true, "\(tagged.text)")
        #expect(packets(try c.get(entry(new))) == 4)
    }

    @Test func exportsPastTheSeriesBudgetAreCutAndSaySo() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let (c, load) = try Self.filled(f, s)

        // 1 variable series + flows' 10 + wide's 1,100 entries: wide gets what is left of 1,000.
        let put = try c.send("PUT", "/v1/loads/\(load)/metrics", json: #"{"variables": ["tuning"], "maps": ["wide", "flows"]}"#)
        #expect(put.status == 200, "\(put.text)")
        let scrape = try c.scrape()
        let series = scrape.all("bpfdepot_map_value").filter { $0.labels["load"] == "\(load)" }
        let wide = series.filter { $0.labels["map"] == "wide" }
        #expect(series.filter { $0.labels["map"] == "flows" }.count == 10)
        #expect(wide.count == 1000 - 1 - 10, "\(wide.count) series of wide")
        #expect(Set(wide.compactMap { $0.labels["key"] }).count == wide.count, "each entry once")
        #expect(wide.allSatisfy { $0.value == 0 && $0.labels["field"] == "value" })
        #expect(scrape.value("bpfdepot_map_series_truncated", ["load": "\(load)", "map": "wide"]) == 1)
        #expect(scrape.value("bpfdepot_map_series_truncated", ["load": "\(load)", "map": "flows"]) == nil)
        #expect(scrape.value("bpfdepot_variable", ["load": "\(load)", "name": "tuning"]) == 43, "variables come first")
    }
}
