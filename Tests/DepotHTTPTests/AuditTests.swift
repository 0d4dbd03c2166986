import BPFTestSupport
import DepotCore
import DepotHTTP
@testable import DepotStore
import Foundation
import KernelTestSupport
import Testing

/// The audit trail through a loopback server with scoped tokens: each kind of mutation leaves a
/// row naming its client, what it touched and what it changed; refusals are rows too; the
/// trail reads back filtered and paged (admin only); SQLite refuses to edit it.
@Suite("audit trail", .serialized, .needsBPF)
struct AuditTests {
    static func rows(_ c: ServiceClient, _ query: String = "") throws -> [[String: Any]] {
        let r = try c.get("/v1/audit\(query)")
        #expect(r.status == 200, "\(r.text)")
        return r.json["entries"] as? [[String: Any]] ?? []
    }

    @Test func everyKindOfMutationAndRefusalIsRecordedWithItsClient() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server(audited: true) { $0.credentials = try? ScopeTests.credentials() }
        defer { s.stop() }
        let admin = ServiceClient(s, token: ScopeTests.secrets[.admin]), reader = ServiceClient(s, token: ScopeTests.secrets[.read])
        let writer = ServiceClient(s, token: ScopeTests.secrets[.write]), nobody = ServiceClient(s)

        let elf = try Fixtures.bytes("globals_run")
        let up = try writer.send("POST", "/v1/objects?name=globals_run.o", bytes: elf)
        let oid = try #require(up.json["id"] as? String)
        #expect(try writer.send("POST", "/v1/objects?name=again.o", bytes: elf).status == 200)
        #expect(try writer.send("PATCH", "/v1/objects/\(oid)/variables", json: #"{"input": 5}"#).status == 200)
        let load = try #require(try writer.send("POST", "/v1/objects/\(oid)/loads").json["id"] as? Int)
        #expect(try writer.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": 9}"#).status == 200)
        #expect(try reader.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"input": 1}"#).status == 403)
        #expect(try nobody.get("/v1/loads/\(load)/variables").status == 401)
        #expect(try writer.send("PATCH", "/v1/loads/\(load)/variables", json: #"{"nope": 1}"#).status == 422)
        #expect(try admin.send("DELETE", "/v1/loads/\(load)").status == 204)
        #expect(try writer.get("/v1/audit").status == 403, "the trail is for admins")

        let all = try Self.rows(admin)
        func row(_ method: String, _ route: String, status: Int) -> [String: Any]? {
            all.first { $0["method"] as? String == method && $0["route"] as? String == route && $0["status"] as? Int == status }
        }
        let upload = try #require(row("POST", "/v1/objects", status: 201), "\(all)")
        #expect(upload["client"] as? String == "pipeline" && upload["object"] as? String == oid)
        #expect((upload["change"] as? [String: Any])?["bytes"] as? Int == elf.count, "an upload is recorded by its size (its id is its digest)")
        let patch = try #require(row("PATCH", "/v1/objects/{id}/variables", status: 200))
        #expect(jsonText(patch["change"]) == #"{"request":{"input":5}}"#)
        let loaded = try #require(row("POST", "/v1/objects/{id}/loads", status: 201))
        #expect(loaded["load"] as? Int == load && loaded["object"] as? String == oid)
        let live = try #require(row("PATCH", "/v1/loads/{id}/variables", status: 200))
        #expect(jsonText(live["change"]) == #"{"variables":[{"name":"input","new":9,"old":5}]}"#, "\(jsonText(live["change"]))")
        let forbidden = try #require(row("PATCH", "/v1/loads/{id}/variables", status: 403))
        #expect(forbidden["client"] as? String == "dashboard")
        let anonymous = try #require(row("GET", "/v1/loads/{id}/variables", status: 401))
        #expect(anonymous["client"] is NSNull && (anonymous["address"] as? String)?.hasPrefix("127.0.0.1") == true, "\(anonymous)")
        #expect(row("PATCH", "/v1/loads/{id}/variables", status: 422)?["client"] as? String == "pipeline")
        #expect(row("DELETE", "/v1/loads/{id}", status: 204)?["client"] as? String == "operator")
        #expect(row("POST", "/v1/objects", status: 200)?["object"] as? String == oid, "a second upload of the same bytes names the object")
        #expect(all.allSatisfy { ($0["requestId"] as? String)?.isEmpty == false })

        // Filters and pages.
        #expect(try Self.rows(admin, "?load=\(load)").allSatisfy { $0["load"] as? Int == load })
        #expect(try Self.rows(admin, "?client=dashboard").count == 1)
        #expect(row("GET", "/v1/audit", status: 403)?["client"] as? String == "pipeline", "a refused read of the trail is a row too")
        let page1 = try admin.get("/v1/audit?limit=3")
        let next = try #require(page1.json["next"] as? String)
        let page2 = try Self.rows(admin, String(next.dropFirst("/v1/audit".count)))
        let ids = ((page1.json["entries"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? Int } + page2.compactMap { $0["id"] as? Int }
        #expect(ids == ids.sorted(by: >) && Set(ids).count == ids.count, "newest first, no row twice")
        #expect(try Self.rows(admin, "?since=2999-01-01T00:00:00Z").isEmpty)

        // Append-only: SQLite itself refuses edits and deletes of recent rows.
        #expect(throws: StoreError.self) { try f.store.executeRaw("UPDATE audit SET status = 200") }
        #expect(throws: StoreError.self) { try f.store.executeRaw("DELETE FROM audit") }
        #expect(try f.store.rowCount("audit") == all.count, "every row still there (reads of the trail add none)")
    }

    @Test func retentionPrunesOnlyOldRows() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let old = Date().addingTimeInterval(-100 * 86_400)
        try f.store.appendAudit(AuditRecord(at: old, client: "x", address: nil, requestID: "old", method: "POST", route: "/v1/objects",
                                            path: "/v1/objects", status: 201))
        try f.store.appendAudit(AuditRecord(at: Date(), client: "x", address: nil, requestID: "new", method: "POST",
                                            route: "/v1/objects", path: "/v1/objects", status: 201))
        #expect(try f.store.pruneAudit(retentionDays: 90) == 1)
        var filter = AuditFilter()
        filter.limit = 10
        #expect(try f.store.audit(filter).map(\.requestID) == ["new"])
    }
}
