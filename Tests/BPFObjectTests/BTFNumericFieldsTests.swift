import BPFObject
import BPFTestSupport
import Testing

/// `BTFNumericFields` on clang's BTF for the fixtures' variables, read from their initial images:
/// the series names and values `GET /metrics` exports.
@Suite struct BTFNumericFieldsTests {
    let globals: ObjectSpec

    init() throws {
        globals = try ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals")
    }

    func fields(_ spec: ObjectSpec, _ name: String, limit: Int = 1000) throws -> [String] {
        let v = try #require(spec.variable(named: name))
        let image = try #require(spec.dataSection(named: v.section)).image
        let bytes = image[Int(v.offset)..<Int(v.offset + v.size)]
        var out: [(name: String, value: Double)] = []
        try BTFNumericFields(btf: try #require(spec.btf)).append(v.btfTypeID, bytes, name: name, limit: limit, into: &out)
        let count = try BTFNumericFields(btf: try #require(spec.btf)).count(v.btfTypeID, limit: limit)
        #expect(count == out.count, "count() agrees with the fields read for \(name)")
        return out.map { "\($0.name)=\($0.value)" }
    }

    @Test func structsFlattenWithDotsAndArraysWithIndexes() throws {
        // struct gl_point { int x = -5; int y = 17; short grid[2][3] = {{1,2,3},{4,5,6}}; }
        #expect(try fields(globals, "data_point") == [
            "data_point.x=-5.0", "data_point.y=17.0",
            "data_point.grid[0][0]=1.0", "data_point.grid[0][1]=2.0", "data_point.grid[0][2]=3.0",
            "data_point.grid[1][0]=4.0", "data_point.grid[1][1]=5.0", "data_point.grid[1][2]=6.0",
        ])
        #expect(try fields(globals, "data_int") == ["data_int=1234.0"])
        #expect(try fields(globals, "bss_arr") == ["bss_arr[0]=0.0", "bss_arr[1]=0.0", "bss_arr[2]=0.0", "bss_arr[3]=0.0"])
    }

    @Test func boolsEnumsBitfieldsAndUnions() throws {
        #expect(try fields(globals, "data_flag") == ["data_flag=1.0"])
        #expect(try fields(globals, "data_color") == ["data_color=7.0"])  // GL_BLUE, by value
        #expect(try fields(globals, "data_bits") == ["data_bits.a=5.0", "data_bits.b=19.0", "data_bits.c=\(Double(0xABCDEF))"])
        // union gl_word: every member that is a number; `unsigned char bytes[8]` is text.
        #expect(try fields(globals, "data_word") == [
            "data_word.wide=\(Double(0x1122_3344_5566_7788 as UInt64))",
            "data_word.half[0]=\(Double(0x5566_7788))", "data_word.half[1]=\(Double(0x1122_3344))",
        ])
        #expect(try fields(globals, "ro_s64") == ["ro_s64=-42.0"])
    }

    @Test func charArraysHaveNoNumbers() throws {
        #expect(try fields(globals, "data_str") == [])
        #expect(try fields(globals, "ro_name") == [])
    }

    @Test func aLimitIsEnforcedWithoutWalkingTheArray() throws {
        // arena_big: __u32 big_table[3072] in the arena.
        let big = try ObjectSpec(elf: Fixtures.bytes("arena_big"), name: "arena_big")
        let table = try #require(big.variable(named: "big_table"))
        let numbers = BTFNumericFields(btf: try #require(big.btf))
        #expect(try numbers.count(table.btfTypeID, limit: 5000) == 3072)
        #expect(throws: BTFNumericFields.FieldError.tooMany(limit: 1000)) { try numbers.count(table.btfTypeID, limit: 1000) }
        #expect(throws: BTFNumericFields.FieldError.tooMany(limit: 1000)) { try fields(big, "big_table", limit: 1000) }
        let first = try fields(big, "big_table", limit: 3072)
        #expect(first.count == 3072)
        #expect(first[1024] == "big_table[1024]=2.0")
        #expect(first[3071] == "big_table[3071]=\(Double(0xc0ffee))")
    }
}
