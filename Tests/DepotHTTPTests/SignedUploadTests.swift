import BPFTestSupport
import DepotCore
import DepotHTTP
@testable import DepotStore
import Foundation
import Testing

/// `serve --trusted-keys`: uploads need an Ed25519 signature of the object's SHA-256 by a trusted
/// key (keys and signatures made by `bpfdepot sign`, as a pipeline would); unsigned, badly
/// signed and tampered uploads are 403 and store nothing; the signer is kept and shown.
@Suite("signed uploads", .serialized)
struct SignedUploadTests {
    struct Setup {
        let directory: String
        let store: DepotStore
        let server: LoopbackServer
        let client: ServiceClient
        let keyPath: String
        let objectPath: String
    }

    static func sign(_ object: String, key: String) throws -> String {
        let r = try runProcess(ServeProcess.binary, ["sign", "file", object, "--key", key])
        #expect(r.code == 0, "\(r.err)")
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func setup() throws -> Setup {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-signed-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let gen = try runProcess(ServeProcess.binary, ["sign", "keygen", "ci-pipeline", "--dir", dir])
        #expect(gen.code == 0, "\(gen.err)")
        let other = try runProcess(ServeProcess.binary, ["sign", "keygen", "laptop", "--dir", dir])
        // Only ci-pipeline is trusted; laptop's key signs what the service must refuse.
        let keys = try TrustedKeys(text: "# trusted\n" + gen.out)
        #expect(keys.keys.map(\.name) == ["ci-pipeline"] && other.code == 0)
        let store = try DepotStore(path: dir + "/depot.sqlite")
        let depot = Depot(store: store, trustedKeys: keys)
        let server = try LoopbackServer(router: DepotRoutes.router(depot: depot, openAPI: "x"))
        let objectPath = dir + "/globals.o"
        try Data(try Fixtures.bytes("globals")).write(to: URL(fileURLWithPath: objectPath))
        return Setup(directory: dir, store: store, server: server, client: ServiceClient(server),
                     keyPath: dir + "/ci-pipeline.key", objectPath: objectPath)
    }

    @Test func aSignedUploadIsStoredWithItsSignerAndOthersAreRefused() throws {
        let s = try Self.setup()
        defer { s.server.stop(); try? FileManager.default.removeItem(atPath: s.directory) }
        let elf = try Fixtures.bytes("globals")
        func objects() throws -> Int { try s.store.objectCount() }

        let unsigned = try s.client.send("POST", "/v1/objects?name=globals.o", bytes: elf)
        #expect(unsigned.status == 403 && (unsigned.json["type"] as? String)?.hasSuffix("signature-required") == true, "\(unsigned.text)")
        let laptop = try Self.sign(s.objectPath, key: s.directory + "/laptop.key")
        let untrusted = try s.client.send("POST", "/v1/objects?name=globals.o", bytes: elf, headers: [("X-Object-Signature", laptop)])
        #expect(untrusted.status == 403 && (untrusted.json["type"] as? String)?.hasSuffix("bad-signature") == true, "\(untrusted.text)")
        let signature = try Self.sign(s.objectPath, key: s.keyPath)
        var tampered = elf
        tampered[tampered.count - 1] ^= 0xff
        let changed = try s.client.send("POST", "/v1/objects?name=globals.o", bytes: tampered, headers: [("X-Object-Signature", signature)])
        #expect(changed.status == 403, "a signature of other bytes: \(changed.text)")
        #expect(try s.client.send("POST", "/v1/objects", bytes: elf, headers: [("X-Object-Signature", "not base64!")]).status == 403)
        #expect(try objects() == 0, "nothing stored by a refused upload")

        let signed = try s.client.send("POST", "/v1/objects?name=globals.o", bytes: elf, headers: [("X-Object-Signature", signature)])
        #expect(signed.status == 201 && signed.json["signer"] as? String == "ci-pipeline", "\(signed.text)")
        let id = try #require(signed.json["id"] as? String)
        #expect(try s.client.get("/v1/objects/\(id)").json["signer"] as? String == "ci-pipeline")
        #expect(try objects() == 1)
    }

    @Test func withoutTrustedKeysUploadsStayOpenAndShowNoSigner() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let s = try f.server()
        defer { s.stop() }
        let r = try ServiceClient(s).send("POST", "/v1/objects?name=globals.o", bytes: try Fixtures.bytes("globals"))
        #expect(r.status == 201 && r.json["signer"] is NSNull, "\(r.text)")
    }

    @Test func aTrustedKeysFileIsCheckedLineByLine() {
        #expect(throws: TrustedKeysError.self) { try TrustedKeys(text: "# nothing\n\n") }
        #expect(throws: TrustedKeysError.self) { try TrustedKeys(text: "name notbase64") }
        #expect(throws: TrustedKeysError.self) { try TrustedKeys(text: "name \(Data(count: 31).base64EncodedString())") }
        #expect(throws: TrustedKeysError.self) { try TrustedKeys(text: "a b c") }
    }
}
