import BPFKernel
import BPFTestSupport
import Foundation
import Glibc
import KernelTestSupport
import Testing

/// `POST /v1/objects/{id}/loads?dryRun=true`: the whole load, then nothing kept — no load
/// record, no program or map left in the kernel (their ids are gone).
@Suite("dry-run loads", .serialized, .needsBPF)
struct DryRunTests {
    /// True once no program or map with these ids exists (the kernel frees them after the last
    /// fd closes, at an RCU grace period: waited for up to 3 s).
    static func gone(programs: [UInt32], maps: [UInt32]) -> Bool {
        let deadline = Date().addingTimeInterval(3)
        repeat {
            var alive = 0
            for id in programs { if let fd = try? BPFSys.progGetFDByID(id) { fd.close(); alive += 1 } }
            for id in maps { if let fd = try? BPFSys.mapGetFDByID(id) { fd.close(); alive += 1 } }
            if alive == 0 { return true }
            usleep(20_000)
        } while Date() < deadline
        return false
    }

    static func ids(_ items: Any?) -> [UInt32] {
        (items as? [[String: Any]] ?? []).compactMap { ($0["kernelId"] as? NSNumber)?.uint32Value }
    }

    @Test func aGoodObjectVerifiesAndLeavesNothingBehind() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let up = try c.send("POST", "/v1/objects?name=globals_run.o", bytes: try Fixtures.bytes("globals_run"))
        let oid = try #require(up.json["id"] as? String)
        _ = try f.snapshot()  // checkpoints the upload out of the WAL
        let before = try f.snapshot()

        let r = try c.send("POST", "/v1/objects/\(oid)/loads?dryRun=true")
        #expect(r.status == 200, "\(r.text)")
        #expect(r.json["dryRun"] as? Bool == true && r.json["revision"] as? Int == 1)
        let programs = try #require(r.json["programs"] as? [[String: Any]])
        let compute = try #require(programs.first { $0["name"] as? String == "compute" }, "\(r.text)")
        #expect(((compute["verifiedInstructions"] as? NSNumber)?.intValue ?? 0) > 50, "\(compute)")
        #expect(((compute["verifierTimeNs"] as? NSNumber)?.intValue ?? 0) > 0)
        let programIDs = Self.ids(r.json["programs"]), mapIDs = Self.ids(r.json["maps"])
        #expect(!programIDs.isEmpty && mapIDs.count >= 3, "\(r.text)")
        #expect(Self.gone(programs: programIDs, maps: mapIDs), "the kernel still holds a program or map of the dry run")
        #expect(try f.snapshot() == before, "nothing recorded")
        #expect((try c.get("/v1/loads").json["loads"] as? [Any])?.isEmpty == true)

        // A dry run attaches and exports nothing.
        #expect(try c.send("POST", "/v1/objects/\(oid)/loads?dryRun=true", json: #"{"attach": true}"#).status == 422)
        #expect(try c.send("POST", "/v1/objects/\(oid)/loads?dryRun=maybe").status == 400)
    }

    @Test func aVerifierRejectionIsTheProblemARealLoadGetsAndNothingIsKept() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let c = ServiceClient(s)
        let up = try c.send("POST", "/v1/objects?name=verifier_reject.o", bytes: try Fixtures.bytes("verifier_reject"))
        let oid = try #require(up.json["id"] as? String, "\(up.text)")
        _ = try f.snapshot()  // checkpoints the upload out of the WAL
        let before = try f.snapshot()
        let r = try c.send("POST", "/v1/objects/\(oid)/loads?dryRun=true")
        #expect(r.status == 422 && (r.json["type"] as? String)?.hasSuffix("verifier-rejected") == true, "\(r.text)")
        #expect(((r.json["log"] as? String) ?? "").isEmpty == false)
        #expect(try f.snapshot() == before, "a refused dry run records nothing either (a real load would leave a failed row)")
    }
}
