import BPFObject
import BPFTestSupport
@testable import DepotCore
import Testing

/// The live-variable routes write each variable's JSON straight into the body
/// (`VariableView.appendJSON`); it must be the same text as the `json` tree other routes send.
@Suite struct VariableJSONTests {
    @Test(arguments: ["globals", "arena", "service_arena"])
    func appendJSONWritesTheTextOfJSON(fixture: String) throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture)
        #expect(!spec.variables.isEmpty)
        for v in spec.variables {
            let view = VariableView(spec: v, value: (try? spec.initialValue(of: v)) ?? .null)
            var out: [UInt8] = Array("[".utf8)
            view.appendJSON(to: &out)
            #expect(out == Array(("[" + view.json.text).utf8), "\(fixture) \(v.name)")
            #expect(try JSONValue(parsing: Array(out.dropFirst())) == view.json, "\(fixture) \(v.name)")
        }
    }
}
