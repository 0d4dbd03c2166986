import BPFObject
import BPFTestSupport
import Foundation
import Testing

/// `BTFValueEncoder`: typed JSON written into section images through the fixtures' real BTF.
@Suite struct BTFValueEncoderTests {
    typealias EncodeError = BTFValueEncoder.EncodeError

    let globals: ObjectSpec
    let arena: ObjectSpec

    init() throws {
        globals = try ObjectSpec(elf: Fixtures.bytes("globals"), name: "globals")
        arena = try ObjectSpec(elf: Fixtures.bytes("arena"), name: "arena")
    }

    /// The variable's whole section image after patching it with `json`.
    static func patch(_ spec: ObjectSpec, _ name: String, _ json: String) throws -> [UInt8] {
        let v = try #require(spec.variable(named: name))
        var image = try #require(spec.dataSection(named: v.section)).image
        let btf = try #require(spec.btf)
        try BTFValueEncoder(btf: btf).encode(JSONValue(parsing: json), as: v.btfTypeID, into: &image,
                                             at: Int(v.offset), path: v.name)
        return image
    }

    /// The error patching would give (nil when it succeeds).
    static func failure(_ spec: ObjectSpec, _ name: String, _ json: String) throws -> EncodeError? {
        let v = try #require(spec.variable(named: name))
        var image = try #require(spec.dataSection(named: v.section)).image
        let btf = try #require(spec.btf)
        let value = try JSONValue(parsing: json)
        do {
            try BTFValueEncoder(btf: btf).encode(value, as: v.btfTypeID, into: &image, at: Int(v.offset), path: v.name)
            return nil
        } catch {
            return error
        }
    }

    /// A variable decoded from a (patched) image.
    static func decoded(_ spec: ObjectSpec, _ name: String, in image: [UInt8]) throws -> String {
        let v = try #require(spec.variable(named: name))
        let btf = try #require(spec.btf)
        return try BTFValueDecoder(btf: btf).decode(v.btfTypeID, image[Int(v.offset)..<Int(v.offset + v.size)]).text
    }

    /// Indexes where two images differ.
    static func changed(_ a: [UInt8], _ b: [UInt8]) -> [Int] {
        zip(a, b).enumerated().filter { $0.1.0 != $0.1.1 }.map(\.offset)
    }

    func original(_ section: String, in spec: ObjectSpec? = nil) throws -> [UInt8] {
        try #require((spec ?? globals).dataSection(named: section)).image
    }

    // MARK: - a whole data section (a global-data map's value)

    @Test("a data section decodes to its variables and encodes back to the same bytes", arguments: [".data", ".data.custom", ".bss"])
    func dataSectionRoundTrips(section: String) throws {
        let btf = try #require(globals.btf)
        let sec = try #require(globals.dataSection(named: section))
        let datasec = try #require(btf.find(named: section, kind: .dataSection))
        let json = try BTFValueDecoder(btf: btf).decode(datasec, sec.image[...])
        guard case .object(let vars) = json else { Issue.record("\(section): \(json.text)"); return }
        #expect(!vars.isEmpty)
        var image = [UInt8](repeating: 0, count: sec.image.count)
        try BTFValueEncoder(btf: btf).encode(json, as: datasec, into: &image, at: 0, path: "")
        guard case .dataSection(_, let infos)? = btf.type(datasec)?.kind else { Issue.record("not a DATASEC"); return }
        for info in infos {
            let range = Int(info.offset)..<Int(info.offset + info.size)
            #expect(image[range] == sec.image[range], "\(section) at \(range)")
        }
    }

    @Test func aDataSectionTakesOnlyItsVariablesByName() throws {
        let btf = try #require(globals.btf)
        let datasec = try #require(btf.find(named: ".data", kind: .dataSection))
        let size = try #require(globals.dataSection(named: ".data")).image.count
        func fails(_ text: String) throws -> EncodeError? {
            var image = [UInt8](repeating: 0, count: size)
            let value = try JSONValue(parsing: text)
            do { try BTFValueEncoder(btf: btf).encode(value, as: datasec, into: &image, at: 0, path: "") } catch {
                return error
            }
            return nil
        }
        #expect(try fails(#"{"data_int": 7}"#) == nil)
        let unknown = try #require(try fails(#"{"nope": 1}"#))
        #expect(unknown.description.contains("data_int"), "names the variables there are: \(unknown)")
        #expect(try fails("7") != nil, "a data section is an object")
        // Too small an image for the section: refused, nothing written past it.
        var short = [UInt8](repeating: 0, count: 2)
        #expect(throws: EncodeError.self) {
            try BTFValueEncoder(btf: btf).encode(JSONValue(parsing: #"{"data_int": 7}"#), as: datasec, into: &short, at: 0, path: "")
        }
    }

    // MARK: - bitfields

    @Test func bitfieldChangesOnlyItsBits() throws {
        let before = try original(".data")
        let after = try Self.patch(globals, "data_bits", #"{"b":31}"#)
        #expect(Array(before[48..<52]) == [0x9d, 0xef, 0xcd, 0xab])
        #expect(Array(after[48..<52]) == [0xfd, 0xef, 0xcd, 0xab])
        #expect(Self.changed(before, after) == [48])
        #expect((before[48] ^ after[48]) & 0b0000_0111 == 0)  // a's bits untouched
        #expect(try Self.decoded(globals, "data_bits", in: after) == #"{"a":5,"b":31,"c":11259375}"#)

        let c = try Self.patch(globals, "data_bits", #"{"c":0}"#)
        #expect(Array(c[48..<52]) == [0x9d, 0, 0, 0])
        let all = try Self.patch(globals, "data_bits", #"{"c":16777215,"a":0,"b":0}"#)
        #expect(Array(all[48..<52]) == [0x00, 0xff, 0xff, 0xff])
        #expect(try Self.decoded(globals, "data_bits", in: all) == #"{"a":0,"b":0,"c":16777215}"#)
    }

    @Test func bitfieldRangesFollowTheWidth() throws {
        #expect(try Self.failure(globals, "data_bits", #"{"a":8}"#)?.description
                == "data_bits.a: value 8 is out of range for unsigned int:3 (0...7)")
        #expect(try Self.failure(globals, "data_bits", #"{"b":32}"#)?.description
                == "data_bits.b: value 32 is out of range for unsigned int:5 (0...31)")
        #expect(try Self.failure(globals, "data_bits", #"{"c":16777216}"#)?.description
                == "data_bits.c: value 16777216 is out of range for unsigned int:24 (0...16777215)")
        #expect(try Self.failure(globals, "data_bits", #"{"a":-1}"#)?.description
                == "data_bits.a: value -1 is out of range for unsigned int:3 (0...7)")
        let e = try #require(try Self.failure(globals, "data_bits", #"{"b":"x"}"#))
        #expect(e == EncodeError(path: "data_bits.b", typeName: "unsigned int:5", found: "\"x\"",
                                 reason: .typeMismatch(expected: "an integer")))
    }

    // MARK: - char arrays

    @Test func charArrayFromString() throws {
        let before = try original(".data")
        let after = try Self.patch(globals, "data_str", #""hi""#)
        #expect(Array(after[4..<20]) == Array("hi".utf8) + [UInt8](repeating: 0, count: 14))
        #expect(Self.changed(before, after).allSatisfy { (4..<20).contains($0) })
        #expect(try Self.decoded(globals, "data_str", in: after) == #""hi""#)
        // 15 bytes and the NUL fill it exactly; UTF-8 counts bytes.
        let full = try Self.patch(globals, "data_str", #""abcdefghijklmno""#)
        #expect(Array(full[4..<20]) == Array("abcdefghijklmno".utf8) + [0])
        let utf8 = try Self.patch(globals, "data_str", #""grüß""#)
        #expect(try Self.decoded(globals, "data_str", in: utf8) == #""grüß""#)
        // The empty string clears it.
        #expect(Array(try Self.patch(globals, "data_str", #""""#)[4..<20]) == [UInt8](repeating: 0, count: 16))
        // A const volatile char[8] in .rodata.
        let ro = try Self.patch(globals, "ro_name", #""abc""#)
        #expect(Array(ro[17..<25]) == Array("abc".utf8) + [0, 0, 0, 0, 0])
    }

    @Test func charArrayErrors() throws {
        #expect(try Self.failure(globals, "data_str", #""abcdefghijklmnop""#)?.description
                == "data_str: a string of 16 bytes does not fit char[16] (at most 15 bytes and a NUL)")
        #expect(try Self.failure(globals, "data_str", #""a\u0000b""#)?.description
                == "data_str: a string for char[16] cannot contain a NUL byte")
        #expect(try Self.failure(globals, "data_str", "5")?.description
                == "data_str: expected a string or an array for char[16], found 5")
        #expect(try Self.failure(globals, "ro_name", #""12345678""#)?.reason == .stringTooLong(bytes: 8, capacity: 8))
        #expect(try Self.failure(arena, "arena_msg", "\"" + String(repeating: "m", count: 32) + "\"")?.description
                == "arena_msg: a string of 32 bytes does not fit char[32] (at most 31 bytes and a NUL)")
        // As an array of numbers, like any array.
        let asArray = try Self.patch(globals, "data_str", "[104, 105, 0]")
        #expect(Array(asArray[4..<8]) == [104, 105, 0, 0x64])  // "hi\0" then the old "d" of "bpfdepot-data"
        #expect(try Self.failure(globals, "data_str", "[300]")?.description
                == "data_str[0]: value 300 is out of range for char (-128...127)")
    }

    // MARK: - structs, arrays, unions

    @Test func structMembersNotNamedKeepTheirBytes() throws {
        let before = try original(".data")
        let after = try Self.patch(globals, "data_point", #"{"y":300,"grid":[[null,9],[7]]}"#)
        #expect(try Self.decoded(globals, "data_point", in: after) == #"{"x":-5,"y":300,"grid":[[1,9,3],[7,5,6]]}"#)
        #expect(Self.changed(before, after) == [24, 25, 30, 34])  // y low/high byte, grid[0][1], grid[1][0]
        #expect(Array(after[24..<28]) == [0x2c, 0x01, 0, 0])
        let negative = try Self.patch(globals, "data_point", #"{"x":-1,"grid":[[-32768]]}"#)
        #expect(Array(negative[20..<24]) == [0xff, 0xff, 0xff, 0xff])
        #expect(Array(negative[28..<30]) == [0x00, 0x80])
    }

    @Test func structErrorsNameThePath() throws {
        #expect(try Self.failure(globals, "data_point", #"{"z":1}"#)?.description
                == #"data_point: struct gl_point has no member "z" (members: x, y, grid)"#)
        #expect(try Self.failure(globals, "data_point", #"{"grid":[[1,2,3,4]]}"#)?.description
                == "data_point.grid[0]: an array of 4 elements does not fit short[3] (at most 3)")
        #expect(try Self.failure(globals, "data_point", #"{"grid":[[],[],[]]}"#)?.description
                == "data_point.grid: an array of 3 elements does not fit short[2][3] (at most 2)")
        #expect(try Self.failure(globals, "data_point", #"{"grid":[[0,0,0],[0,0,40000]]}"#)?.description
                == "data_point.grid[1][2]: value 40000 is out of range for short (-32768...32767)")
        #expect(try Self.failure(globals, "data_point", #"{"x":"abc"}"#)?.description
                == #"data_point.x: expected an integer for int, found "abc""#)
        #expect(try Self.failure(globals, "data_point", #"{"x":null}"#)?.description
                == "data_point.x: expected an integer for int, found null")
        #expect(try Self.failure(globals, "data_point", #"{"grid":{}}"#)?.description
                == "data_point.grid: expected an array for short[2][3], found an object")
        #expect(try Self.failure(globals, "data_point", "[1,2]")?.description
                == "data_point: expected an object for struct gl_point, found an array of 2 elements")
        #expect(try Self.failure(globals, "data_point", #"{"x":1.5}"#)?.reason
                == .typeMismatch(expected: "an integer"))
    }

    @Test func unionMembersOverlap() throws {
        let half = try Self.patch(globals, "data_word", #"{"half":[1,2]}"#)
        #expect(Array(half[56..<64]) == [1, 0, 0, 0, 2, 0, 0, 0])
        #expect(try Self.decoded(globals, "data_word", in: half)
                == #"{"wide":8589934593,"half":[1,2],"bytes":[1,0,0,0,2,0,0,0]}"#)
        let oneByte = try Self.patch(globals, "data_word", #"{"bytes":[255]}"#)
        #expect(Array(oneByte[56..<64]) == [0xff, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        // Later members win where they overlap.
        let both = try Self.patch(globals, "data_word", #"{"wide":0,"bytes":[null,7]}"#)
        #expect(Array(both[56..<64]) == [0, 7, 0, 0, 0, 0, 0, 0])
        #expect(try Self.failure(globals, "data_word", #"{"bytes":[300]}"#)?.description
                == "data_word.bytes[0]: value 300 is out of range for unsigned char (0...255)")
    }

    // MARK: - scalars

    @Test func integersAreRangeChecked() throws {
        #expect(try Self.failure(globals, "ro_u32", "-1")?.description
                == "ro_u32: value -1 is out of range for __u32 (0...4294967295)")
        #expect(try Self.failure(globals, "ro_u32", "4294967296")?.description
                == "ro_u32: value 4294967296 is out of range for __u32 (0...4294967295)")
        #expect(try Self.failure(globals, "ro_s64", "9223372036854775808")?.description
                == "ro_s64: value 9223372036854775808 is out of range for __s64 (-9223372036854775808...9223372036854775807)")
        #expect(try Self.failure(globals, "data_int", "2147483648")?.description
                == "data_int: value 2147483648 is out of range for int (-2147483648...2147483647)")
        #expect(try Self.failure(globals, "data_int", "1e20")?.description
                == "data_int: value 1e+20 is out of range for int (-2147483648...2147483647)")
        #expect(try Self.failure(globals, "ro_u32", "1.5")?.description
                == "ro_u32: expected an integer for __u32, found 1.5")
        #expect(try Self.failure(globals, "ro_u32", "true")?.description
                == "ro_u32: expected an integer for __u32, found true")

        let u32 = try Self.patch(globals, "ro_u32", "4294967295")
        #expect(Array(u32[0..<4]) == [0xff, 0xff, 0xff, 0xff])
        let s64 = try Self.patch(globals, "ro_s64", "-9223372036854775808")
        #expect(Array(s64[8..<16]) == [0, 0, 0, 0, 0, 0, 0, 0x80])
        #expect(try Self.decoded(globals, "ro_s64", in: s64) == "-9223372036854775808")
        let minusOne = try Self.patch(globals, "ro_s64", "-1")
        #expect(Array(minusOne[8..<16]) == [UInt8](repeating: 0xff, count: 8))
        // An integral double is an integer.
        let thousand = try Self.patch(globals, "data_int", "1e3")
        #expect(Array(thousand[0..<4]) == [0xe8, 0x03, 0, 0])
    }

    @Test func booleans() throws {
        #expect(try Self.patch(globals, "ro_flag", "false")[16] == 0)
        #expect(try Self.patch(globals, "data_flag", "true")[40] == 1)
        #expect(try Self.patch(globals, "ro_flag", "0")[16] == 0)
        #expect(try Self.patch(globals, "ro_flag", "1")[16] == 1)
        #expect(try Self.failure(globals, "ro_flag", "2")?.description
                == "ro_flag: value 2 is out of range for _Bool (0...1)")
        #expect(try Self.failure(globals, "ro_flag", #""yes""#)?.description
                == #"ro_flag: expected true or false for _Bool, found "yes""#)
    }

    @Test func enumsByNameOrNumber() throws {
        let red = try Self.patch(globals, "data_color", #""GL_RED""#)
        #expect(Array(red[44..<48]) == [1, 0, 0, 0])
        #expect(try Self.decoded(globals, "data_color", in: red) == #""GL_RED""#)
        let two = try Self.patch(globals, "data_color", "2")
        #expect(try Self.decoded(globals, "data_color", in: two) == #""GL_GREEN""#)
        let five = try Self.patch(globals, "data_color", "5")
        #expect(try Self.decoded(globals, "data_color", in: five) == "5")
        let e = try #require(try Self.failure(globals, "data_color", #""GL_PINK""#))
        #expect(e.description == #"data_color: "GL_PINK" is not an enumerator of enum gl_color (valid: GL_RED, GL_GREEN, GL_BLUE)"#)
        #expect(e.reason == .unknownEnumerator("GL_PINK", valid: ["GL_RED", "GL_GREEN", "GL_BLUE"]))
        #expect(try Self.failure(globals, "data_color", "4294967296")?.description
                == "data_color: value 4294967296 is out of range for enum gl_color (0...4294967295)")
        #expect(try Self.failure(globals, "data_color", "true")?.description
                == "data_color: expected an enumerator name or an integer for enum gl_color, found true")
    }

    // MARK: - arena

    @Test func arenaStructIsPatched() throws {
        let before = try original(".addr_space.1", in: arena)
        let after = try Self.patch(arena, "arena_rec", #"{"stamp":1,"tag":"xyz"}"#)
        #expect(try Self.decoded(arena, "arena_rec", in: after) == #"{"id":3,"flags":16,"stamp":1,"tag":"xyz"}"#)
        #expect(Array(after[16..<24]) == [1, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(after[24..<32]) == Array("xyz".utf8) + [0, 0, 0, 0, 0])
        #expect(Self.changed(before, after).allSatisfy { (16..<32).contains($0) })
        #expect(Array(after[8..<16]) == Array(before[8..<16]))  // id, flags untouched
        #expect(try Self.failure(arena, "arena_rec", #"{"flags":-1}"#)?.description
                == "arena_rec.flags: value -1 is out of range for unsigned int (0...4294967295)")
        #expect(try Self.failure(arena, "arena_rec", #"{"tag":"12345678"}"#)?.description
                == "arena_rec.tag: a string of 8 bytes does not fit char[8] (at most 7 bytes and a NUL)")
        #expect(try Self.failure(arena, "arena_rec", #"{"idx":1}"#)?.description
                == #"arena_rec: struct arena_rec has no member "idx" (members: id, flags, stamp, tag)"#)
    }

    // MARK: - round trip

    static let roundTripFixtures = ["globals", "arena", "arena_legacy", "maps"]

    /// decode(encode(decode(image))) == decode(image), with the bytes unchanged, for every variable;
    /// and the decoded value alone (written into zeros) rebuilds the variable's bytes.
    @Test(arguments: roundTripFixtures)
    func everyVariableRoundTrips(fixture: String) throws {
        let spec = try ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture)
        let btf = try #require(spec.btf)
        let decoder = BTFValueDecoder(btf: btf), encoder = BTFValueEncoder(btf: btf)
        for v in spec.variables {
            let image = try #require(spec.dataSection(named: v.section)).image
            let range = Int(v.offset)..<Int(v.offset + v.size)
            let value = try decoder.decode(v.btfTypeID, image[range])
            var patched = image
            try encoder.encode(value, as: v.btfTypeID, into: &patched, at: Int(v.offset), path: v.name)
            #expect(patched == image, "\(fixture) \(v.name)")
            #expect(try decoder.decode(v.btfTypeID, patched[range]) == value, "\(fixture) \(v.name)")
            // Through JSON text, as an HTTP body would arrive.
            var viaText = image
            try encoder.encode(JSONValue(parsing: value.text), as: v.btfTypeID, into: &viaText, at: Int(v.offset), path: v.name)
            #expect(viaText == image, "\(fixture) \(v.name) via text")
            var fresh = [UInt8](repeating: 0, count: Int(v.size))
            try encoder.encode(value, as: v.btfTypeID, into: &fresh, at: 0, path: v.name)
            #expect(fresh == Array(image[range]), "\(fixture) \(v.name) from zeros")
        }
        #expect(!spec.variables.isEmpty)
    }

    // MARK: - kinds the fixtures lack, with hand-built BTF

    /// struct mix { __u8 tiny; int sb:4; _Bool on:1; union { int u; float f; }; double ratio;
    ///              int *p; enum big e; __int128 wide; }
    struct Synthetic {
        let btf: BTF
        var mix: UInt32 = 0, fn: UInt32 = 0, u8: UInt32 = 0

        /// A raw `.BTF` blob, written word by word as the kernel's format lays it out.
        struct Blob {
            var words: [UInt32] = []
            var strings: [UInt8] = [0]
            var count: UInt32 = 0

            mutating func name(_ s: String) -> UInt32 {
                if s.isEmpty { return 0 }
                let off = UInt32(strings.count)
                strings += Array(s.utf8) + [0]
                return off
            }

            mutating func type(_ name: String, kind: UInt32, vlen: Int = 0, kflag: Bool = false, _ sizeOrType: UInt32,
                               _ extra: [UInt32] = []) -> UInt32 {
                words += [self.name(name), kind << 24 | UInt32(vlen) | (kflag ? 0x8000_0000 : 0), sizeOrType] + extra
                count += 1
                return count
            }

            var bytes: [UInt8] {
                var out: [UInt8] = []
                func le(_ w: UInt32) { out += [UInt8(w & 0xff), UInt8(w >> 8 & 0xff), UInt8(w >> 16 & 0xff), UInt8(w >> 24)] }
                out += [0x9f, 0xeb, 1, 0]
                le(24); le(0); le(UInt32(words.count * 4)); le(UInt32(words.count * 4)); le(UInt32(strings.count))
                for w in words { le(w) }
                return out + strings
            }
        }

        init() throws {
            var b = Blob()
            let uchar = b.type("unsigned char", kind: 1, 1, [8])
            u8 = b.type("__u8", kind: 8, uchar)
            let int = b.type("int", kind: 1, 4, [1 << 24 | 32])
            let bool = b.type("_Bool", kind: 1, 1, [4 << 24 | 8])
            let float = b.type("float", kind: 16, 4)
            let double = b.type("double", kind: 16, 8)
            let ptr = b.type("", kind: 2, int)
            let neg = b.name("NEG"), huge = b.name("HUGE")
            let big = b.type("big", kind: 19, vlen: 2, kflag: true, 8,
                             [neg, UInt32(bitPattern: -5), 0xffff_ffff, huge, 0, 1 << 8])
            let wide = b.type("__int128", kind: 1, 16, [1 << 24 | 128])
            let u = b.name("u"), f = b.name("f")
            let anon = b.type("", kind: 5, vlen: 2, 4, [u, int, 0, f, float, 0])
            func member(_ n: String, _ t: UInt32, bit: UInt32, bits: UInt32 = 0) -> [UInt32] {
                [b.name(n), t, bits << 24 | bit]
            }
            let ms = member("tiny", u8, bit: 0) + member("sb", int, bit: 8, bits: 4) + member("on", bool, bit: 12, bits: 1)
                + member("", anon, bit: 32) + member("ratio", double, bit: 64) + member("p", ptr, bit: 128)
                + member("e", big, bit: 192) + member("wide", wide, bit: 256)
            mix = b.type("mix", kind: 4, vlen: 8, kflag: true, 48, ms)
            let proto = b.type("", kind: 13, int)
            fn = b.type("fn", kind: 12, vlen: 1, proto)
            btf = try BTF(parsing: b.bytes)
        }

        func encode(_ json: String, as type: UInt32? = nil, into bytes: [UInt8]? = nil) throws -> [UInt8] {
            var out = bytes ?? [UInt8](repeating: 0, count: 48)
            try BTFValueEncoder(btf: btf).encode(JSONValue(parsing: json), as: type ?? mix, into: &out, at: 0, path: "m")
            return out
        }

        func failure(_ json: String, as type: UInt32? = nil, size: Int = 48, at offset: Int = 0) throws -> EncodeError? {
            var out = [UInt8](repeating: 0, count: size)
            let value = try JSONValue(parsing: json)
            do {
                try BTFValueEncoder(btf: btf).encode(value, as: type ?? mix, into: &out, at: offset, path: "m")
                return nil
            } catch { return error }
        }

        func decode(_ bytes: [UInt8]) throws -> String {
            try BTFValueDecoder(btf: btf).decode(mix, bytes[...]).text
        }
    }

    @Test func otherKindsEncodeAndDecodeBack() throws {
        let s = try Synthetic()
        let json = #"{"tiny":255,"sb":-8,"on":true,"u":-2,"ratio":0.5,"p":4096,"e":"NEG","wide":-1}"#
        let bytes = try s.encode(json)
        #expect(bytes[0] == 0xff)
        #expect(bytes[1] == 0b0001_1000)  // sb = -8 (1000) at bits 8..11, on at bit 12
        #expect(Array(bytes[4..<8]) == [0xfe, 0xff, 0xff, 0xff])
        #expect(Array(bytes[8..<16]) == Array(withUnsafeBytes(of: (0.5).bitPattern.littleEndian, Array.init)))
        #expect(Array(bytes[16..<24]) == [0, 0x10, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes[24..<32]) == [0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        #expect(Array(bytes[32..<48]) == [UInt8](repeating: 0xff, count: 16))
        let text = try s.decode(bytes)
        #expect(text == #"{"tiny":255,"sb":-8,"on":true,"u":-2,"f":null,"ratio":0.5,"p":4096,"e":"NEG","#
                + #""wide":"0xffffffffffffffffffffffffffffffff"}"#)  // f: the NaN that -2 is as a float
        // The decoder's own output goes back to the same bytes (NaN aside: it is a float member
        // overlapping `u`, so leave it out).
        var decoded = try BTFValueDecoder(btf: s.btf).decode(s.mix, bytes[...])
        if case .object(let members) = decoded { decoded = .object(members.filter { $0.0 != "f" }) }
        #expect(try s.encode(decoded.text) == bytes)

        let f = try s.encode(#"{"f":1.5,"e":"HUGE","wide":"0x0102"}"#)
        #expect(Array(f[4..<8]) == Array(withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian, Array.init)))
        #expect(Array(f[24..<32]) == [0, 0, 0, 0, 0, 1, 0, 0])  // 1 << 40
        #expect(Array(f[32..<48]) == [2, 1] + [UInt8](repeating: 0, count: 14))
        #expect(try s.decode(f).contains(#""f":1.5"#))
        #expect(try s.decode(f).contains(#""wide":"0x00000000000000000000000000000102""#))
        let n = try s.encode(#"{"e":7,"wide":18446744073709551615}"#)
        #expect(Array(n[24..<32]) == [7, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(n[32..<48]) == [UInt8](repeating: 0xff, count: 8) + [UInt8](repeating: 0, count: 8))
    }

    @Test func bitfieldsLeaveNeighboursAlone() throws {
        let s = try Synthetic()
        let ones = [UInt8](repeating: 0xff, count: 48)
        let cleared = try s.encode(#"{"sb":0}"#, into: ones)
        #expect(cleared[1] == 0b1111_0000)
        #expect(Self.changed(ones, cleared) == [1])
        let off = try s.encode(#"{"on":false}"#, into: ones)
        #expect(off[1] == 0b1110_1111)
        let on = try s.encode(#"{"on":1,"sb":7}"#)
        #expect(on[1] == 0b0001_0111)
    }

    @Test func syntheticErrors() throws {
        let s = try Synthetic()
        #expect(try s.failure(#"{"tiny":300}"#)?.description == "m.tiny: value 300 is out of range for __u8 (0...255)")
        #expect(try s.failure("300", as: s.u8)?.description == "m: value 300 is out of range for __u8 (0...255)")
        #expect(try s.failure(#"{"sb":8}"#)?.description == "m.sb: value 8 is out of range for int:4 (-8...7)")
        #expect(try s.failure(#"{"sb":-9}"#)?.description == "m.sb: value -9 is out of range for int:4 (-8...7)")
        #expect(try s.failure(#"{"on":2}"#)?.description == "m.on: value 2 is out of range for _Bool:1 (0...1)")
        #expect(try s.failure(#"{"f":1e39}"#)?.description
                == "m.f: value 1e+39 is out of range for float (-3.4028235e+38...3.4028235e+38)")
        #expect(try s.failure(#"{"ratio":"x"}"#)?.description == #"m.ratio: expected a number for double, found "x""#)
        #expect(try s.failure(#"{"p":-1}"#)?.description == "m.p: value -1 is out of range for int * (0...18446744073709551615)")
        #expect(try s.failure(#"{"p":"0x10"}"#)?.description == #"m.p: expected an integer address for int *, found "0x10""#)
        #expect(try s.failure(#"{"e":"NOPE"}"#)?.description == #"m.e: "NOPE" is not an enumerator of enum big (valid: NEG, HUGE)"#)
        #expect(try s.failure(#"{"wide":"0x"}"#)?.reason
                == .typeMismatch(expected: "an integer or a \"0x…\" hex string of at most 32 digits"))
        #expect(try s.failure(#"{"wide":"0x"# + String(repeating: "f", count: 33) + #""}"#)?.reason
                == .typeMismatch(expected: "an integer or a \"0x…\" hex string of at most 32 digits"))
        #expect(try s.failure(#"{"nope":1,"tiny":1}"#)?.description
                == #"m: struct mix has no member "nope" (members: tiny, sb, on, u, f, ratio, p, e, wide)"#)
        #expect(try s.failure("1", as: s.fn)?.description == "m: cannot write a value of type fn")
        #expect(try s.failure("1", as: 0)?.description == "m: cannot write a value of type void")
        #expect(try s.failure("1", as: 9999)?.description == "m: cannot write a value of type <bad type 9999>")
        #expect(try s.failure("{}", size: 40)?.reason == .outOfBounds(offset: 0, needed: 48, available: 40))
        #expect(try s.failure("{}", size: 48, at: 1)?.description == "m: a struct mix needs 48 bytes at offset 1, 47 available")
        #expect(try s.failure("{}", size: 48, at: -1)?.reason == .outOfBounds(offset: -1, needed: 48, available: 48))
        #expect(try s.failure("{}", size: 48, at: Int.max)?.reason == .outOfBounds(offset: Int.max, needed: 48, available: 0))
        // A member named twice (possible only in a JSONValue built in code: the parser refuses it).
        var out = [UInt8](repeating: 0, count: 48)
        #expect(throws: EncodeError(path: "m", typeName: "struct mix", found: "an object", reason: .duplicateMember("tiny"))) {
            try BTFValueEncoder(btf: s.btf).encode(.object([("tiny", .int(1)), ("tiny", .int(2))]), as: s.mix,
                                                   into: &out, at: 0, path: "m")
        }
    }

    // MARK: - randomized: arbitrary values against real types never trap

    @Test func arbitraryValuesNeverTrap() throws {
        var rng = JSONParserTests.Random(state: 0xE4C0_DE)
        let leaves: [JSONValue] = [
            .null, .bool(true), .bool(false), .int(0), .int(-1), .int(1), .int(Int64.min), .int(Int64.max),
            .uint(UInt64.max), .double(0.5), .double(-1e300), .double(.nan), .double(.infinity), .double(1e3),
            .string(""), .string("GL_RED"), .string("x"), .string(String(repeating: "y", count: 40)), .string("0xff"),
            .array([]), .array([.int(1), .null]), .object([]), .object([("x", .int(1))]), .object([("", .int(0))]),
        ]
        func mutate(_ v: JSONValue, depth: Int) -> JSONValue {
            if depth > 6 || rng.below(5) == 0 { return leaves[rng.below(leaves.count)] }
            switch v {
            case .array(let items):
                var out = items.map { mutate($0, depth: depth + 1) }
                if rng.below(4) == 0 { out.append(leaves[rng.below(leaves.count)]) }
                return .array(out)
            case .object(let members):
                var out = members.filter { _ in rng.below(3) != 0 }.map { ($0.0, mutate($0.1, depth: depth + 1)) }
                if rng.below(4) == 0 { out.append(("bogus", .int(1))) }
                return .object(out)
            default:
                return rng.below(2) == 0 ? v : leaves[rng.below(leaves.count)]
            }
        }
        var ok = 0, failed = 0
        for fixture in ["globals", "arena"] {
            let spec = try ObjectSpec(elf: Fixtures.bytes(fixture), name: fixture)
            let btf = try #require(spec.btf)
            for v in spec.variables {
                let image = try #require(spec.dataSection(named: v.section)).image
                let value = try spec.initialValue(of: v)
                for _ in 0..<300 {
                    var bytes = image
                    do {
                        try BTFValueEncoder(btf: btf).encode(mutate(value, depth: 0), as: v.btfTypeID, into: &bytes,
                                                             at: Int(v.offset), path: v.name)
                        ok += 1
                        // Only the variable's own bytes may change.
                        #expect(Self.changed(image, bytes).allSatisfy { $0 >= Int(v.offset) && $0 < Int(v.offset + v.size) })
                    } catch {
                        failed += 1
                        #expect(error.description.hasPrefix(v.name))
                    }
                }
            }
        }
        #expect(ok > 100 && failed > 100, "ok \(ok) failed \(failed)")
    }
}
