/// A parsed `.maps` definition (libbpf's `struct btf_map_def`).
struct BTFMapDefinition {
    var type: UInt32 = 0
    var keySize: UInt32 = 0
    var valueSize: UInt32 = 0
    var maxEntries: UInt32 = 0
    var flags: UInt32 = 0
    var numaNode: UInt32 = 0
    var mapExtra: UInt64 = 0
    var pinning: UInt32 = 0
    var keyTypeID: UInt32 = 0
    var valueTypeID: UInt32 = 0
    /// Byte offset of the `values` member within the definition struct.
    var valuesOffset: UInt32?
    var inner: [BTFMapDefinition] = []
}

/// What `.rel.maps` relocations need of a BTF-defined map: the size of its `.maps` variable and
/// where its `values` member starts.
struct UserMapLayout {
    var variableSize: UInt32
    var valuesOffset: UInt32?
}

extension ObjectParser {
    /// libbpf's `init_maps` order: BTF-defined maps, the arena binding, then one map per
    /// global-data section, then `.kconfig`.
    mutating func collectMaps() throws(ObjectError) {
        if let mapsIndex { try collectBTFMaps(mapsIndex) }
        try bindArena()
        try collectGlobalDataMaps()
        if let mapsIndex { try collectMapSlots(mapsIndex) }
    }

    private mutating func collectBTFMaps(_ shndx: Int) throws(ObjectError) {
        let btf = try requireBTF("SEC(\".maps\") needs BTF")
        guard let secID = datasecID(named: ".maps", in: btf),
              case .dataSection(_, let vars)? = btf.type(secID)?.kind else {
            throw .mapDefinition(map: ".maps", reason: "no DATASEC '.maps' in BTF")
        }
        let sectionSize = elf.sections[shndx].size
        for (k, vi) in vars.enumerated() {
            guard let v = btf.type(vi.type) else { throw .mapDefinition(map: "#\(k)", reason: "bad BTF type \(vi.type)") }
            let name = btf.string(at: v.nameOffset)
            guard !name.isEmpty else { throw .mapDefinition(map: "#\(k)", reason: "empty name") }
            guard UInt64(vi.offset) + UInt64(vi.size) <= sectionSize else {
                throw .mapDefinition(map: name, reason: "BTF data is corrupted: [\(vi.offset), +\(vi.size)) outside .maps (\(sectionSize) bytes)")
            }
            guard case .variable(let defType, let linkage) = v.kind else {
                throw .mapDefinition(map: name, reason: "unexpected var kind \(v.kind.tag)")
            }
            guard linkage == BTFVarLinkage.globalAllocated.rawValue else {
                throw .mapDefinition(map: name, reason: "unsupported map linkage (maps must be global, not static)")
            }
            let defID = try btfCall { () throws(BTFError) in try btf.skipModifiersAndTypedefs(defType) }
            guard let def = btf.type(defID), case .structure(let defSize, _, _) = def.kind else {
                throw .mapDefinition(map: name, reason: "definition is not a struct")
            }
            guard defSize <= vi.size else { throw .mapDefinition(map: name, reason: "invalid def size") }
            let d = try parseMapDefinition(name, btf: btf, structID: defID, isInner: false)
            var spec = mapSpec(from: d, name: name, role: .user(offset: vi.offset))
            if let inner = d.inner.first {
                spec.innerMap = mapSpec(from: inner, name: "\(name).inner", role: .user(offset: vi.offset))
            }
            maps.append(spec)
            userMapLayouts.append(UserMapLayout(variableSize: vi.size, valuesOffset: d.valuesOffset))
        }
    }

    private func mapSpec(from d: BTFMapDefinition, name: String, role: MapRole) -> MapSpec {
        var maxEntries = d.maxEntries
        if d.type == BPFMapType.ringbuf.rawValue || d.type == BPFMapType.userRingbuf.rawValue {
            maxEntries = roundRingbufSize(maxEntries)
        }
        return MapSpec(
            name: name, realName: name, type: BPFMapType(rawValue: d.type), keySize: d.keySize,
            valueSize: d.valueSize, maxEntries: maxEntries, flags: d.flags, numaNode: d.numaNode,
            mapExtra: d.mapExtra, pinning: MapPinning(rawValue: d.pinning) ?? .none, section: ".maps",
            role: role, btfKeyTypeID: d.keyTypeID, btfValueTypeID: d.valueTypeID)
    }

    /// Ring buffers must be a power-of-2 multiple of the page size; libbpf rounds up.
    private func roundRingbufSize(_ size: UInt32) -> UInt32 {
        guard size > 0 else { return size }
        var m = options.pageSize
        while m < UInt64(size) {
            m <<= 1
            if m > UInt64(UInt32.max) { return size }
        }
        return UInt32(m)
    }

    func btfCall<T>(_ body: () throws(BTFError) -> T) throws(ObjectError) -> T {
        do { return try body() } catch { throw .btf(error) }
    }

    /// The members `parseMapDefinition` knows, with their UTF-8 bytes.
    private static let mapDefinitionFields: [(name: String, bytes: [UInt8])] =
        ["type", "max_entries", "key_size", "key", "value_size", "value", "map_flags", "numa_node",
         "values", "pinning", "map_extra"].map { ($0, Array($0.utf8)) }

    /// libbpf's `parse_btf_map_def`.
    private func parseMapDefinition(_ name: String, btf: BTF, structID: UInt32, isInner: Bool) throws(ObjectError) -> BTFMapDefinition {
        guard case .structure(_, let members, let bitfieldOffsets)? = btf.type(structID)?.kind else {
            throw .mapDefinition(map: name, reason: "definition is not a struct")
        }
        var d = BTFMapDefinition()
        func fail(_ reason: String) -> ObjectError { .mapDefinition(map: name, reason: reason) }
        func intField(_ m: BTFMember, _ field: String) throws(ObjectError) -> UInt32 {
            let t = try btfCall { () throws(BTFError) in try btf.skipModifiersAndTypedefs(m.type) }
            guard case .pointer(let arr)? = btf.type(t)?.kind else {
                throw fail("attr '\(field)': expected PTR, got \(btf.type(t)?.kind.tag.name ?? "void")")
            }
            guard case .array(_, _, let n)? = btf.type(arr)?.kind else {
                throw fail("attr '\(field)': expected ARRAY behind the pointer")
            }
            return n
        }
        func sizedType(_ m: BTFMember, _ field: String) throws(ObjectError) -> (UInt32, UInt32) {
            guard case .pointer(let pointee)? = btf.type(m.type)?.kind else { throw fail("\(field) spec is not PTR") }
            let size = try btfCall { () throws(BTFError) in try btf.resolveSize(pointee) }
            return (UInt32(size), pointee)
        }
        for (i, m) in members.enumerated() {
            // The known names are compared in place in the string table; a `String` is decoded
            // from the table only for a name that is none of them (for its error message).
            var field = ""
            for known in Self.mapDefinitionFields where btf.stringEquals(m.nameOffset, known.bytes) {
                field = known.name
                break
            }
            if field.isEmpty { field = btf.string(at: m.nameOffset) }
            guard !field.isEmpty else { throw fail("invalid field #\(i)") }
            switch field {
            case "type": d.type = try intField(m, field)
            case "max_entries": d.maxEntries = try intField(m, field)
            case "map_flags": d.flags = try intField(m, field)
            case "numa_node": d.numaNode = try intField(m, field)
            case "key_size", "value_size":
                let sz = try intField(m, field)
                let cur = field == "key_size" ? d.keySize : d.valueSize
                if cur != 0 && cur != sz { throw fail("conflicting \(field == "key_size" ? "key" : "value") size \(cur) != \(sz)") }
                if field == "key_size" { d.keySize = sz } else { d.valueSize = sz }
            case "key", "value":
                let (sz, id) = try sizedType(m, field)
                let cur = field == "key" ? d.keySize : d.valueSize
                if cur != 0 && cur != sz { throw fail("conflicting \(field) size \(cur) != \(sz)") }
                if field == "key" { d.keySize = sz; d.keyTypeID = id } else { d.valueSize = sz; d.valueTypeID = id }
            case "values":
                let mapType = BPFMapType(rawValue: d.type)
                let isMapInMap = mapType == .arrayOfMaps || mapType == .hashOfMaps
                let isProgArray = mapType == .progArray
                if isInner { throw fail("multi-level inner maps not supported") }
                if i != members.count - 1 { throw fail("'values' member should be last") }
                if !isMapInMap && !isProgArray { throw fail("'values' needs a map-in-map or prog-array map type") }
                if d.valueSize != 0 && d.valueSize != 4 { throw fail("conflicting value size \(d.valueSize) != 4") }
                d.valueSize = 4
                guard case .array(let elem, _, 0)? = btf.type(m.type)?.kind else {
                    throw fail("\(isMapInMap ? "map-in-map inner" : "prog-array value") spec is not a zero-sized array")
                }
                let p = try btfCall { () throws(BTFError) in try btf.skipModifiersAndTypedefs(elem) }
                guard case .pointer(let target)? = btf.type(p)?.kind else {
                    throw fail("\(isMapInMap ? "map-in-map inner" : "prog-array value") def is of unexpected kind")
                }
                let t = try btfCall { () throws(BTFError) in try btf.skipModifiersAndTypedefs(target) }
                d.valuesOffset = (bitfieldOffsets ? m.offset & 0xff_ffff : m.offset) / 8
                if isProgArray {
                    guard btf.type(t)?.kind.tag == .functionProto else { throw fail("prog-array value def is not a function prototype") }
                    continue
                }
                guard btf.type(t)?.kind.tag == .structure else { throw fail("map-in-map inner def is not a struct") }
                d.inner = [try parseMapDefinition("\(name).inner", btf: btf, structID: t, isInner: true)]
            case "pinning":
                if isInner { throw fail("inner def can't be pinned") }
                let v = try intField(m, field)
                guard v <= 1 else { throw fail("invalid pinning value \(v)") }
                d.pinning = v
            case "map_extra":
                let t = try btfCall { () throws(BTFError) in try btf.skipModifiersAndTypedefs(m.type) }
                switch btf.type(t)?.kind {
                case .pointer?:
                    d.mapExtra = UInt64(try intField(m, field))
                case .enumeration(_, _, let values)?:
                    guard values.count == 1 else { throw fail("attr 'map_extra': invalid number of enum values \(values.count)") }
                    // A 32-bit enum value is a signed int, widened as libbpf widens it.
                    d.mapExtra = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: values[0].value)))
                case .enum64(_, _, let values)?:
                    guard values.count == 1 else { throw fail("attr 'map_extra': invalid number of enum values \(values.count)") }
                    d.mapExtra = UInt64(bitPattern: values[0].value)
                default:
                    throw fail("attr 'map_extra': expected PTR, ENUM or ENUM64")
                }
            default:
                if options.strictMaps { throw fail("unknown field '\(field)'") }
            }
        }
        if d.type == 0 { throw fail("map type isn't specified") }
        return d
    }

    /// One ARENA map per object; `.addr_space.1` data is its initial image.
    private mutating func bindArena() throws(ObjectError) {
        for (i, m) in maps.enumerated() where m.type == .arena {
            if let first = arenaMapIndex { throw .duplicateArena(first: maps[first].name, second: m.name) }
            arenaMapIndex = i
        }
        guard let arenaIndex else { return }
        guard let arenaMapIndex else { throw .arenaDataWithoutArenaMap }
        let sec = elf.sections[arenaIndex]
        let image = sec.isNobits ? [UInt8](repeating: 0, count: Int(sec.size)) : sec.data
        let page = options.pageSize
        let rounded = (UInt64(image.count) + page - 1) / page * page
        let arenaSize = page * UInt64(maps[arenaMapIndex].maxEntries)
        guard rounded <= arenaSize else { throw .arenaImageTooLarge(imageSize: Int(rounded), arenaSize: arenaSize) }
        maps[arenaMapIndex].initialValueSize = image.count
        dataSections.append(DataSectionSpec(name: sec.name, kind: .arena, sectionIndex: arenaIndex,
                                            mapIndex: arenaMapIndex, image: image,
                                            fileOffset: sec.isNobits ? nil : Int(exactly: sec.fileOffset)))
    }

    /// `init_global_data_maps` + `init_kconfig_map`.
    private mutating func collectGlobalDataMaps() throws(ObjectError) {
        for s in elf.sections {
            guard case .data(let kind) = roles[s.index] else { continue }
            let image = kind == .bss ? [UInt8](repeating: 0, count: Int(s.size)) : s.data
            appendInternalMap(realName: s.name, kind: kind, sectionIndex: s.index, image: image,
                              fileOffset: kind == .bss || s.isNobits ? nil : Int(exactly: s.fileOffset))
        }
        if let size = kconfigImageSize {
            appendInternalMap(realName: ".kconfig", kind: .kconfig, sectionIndex: 0,
                              image: [UInt8](repeating: 0, count: size))
        }
    }

    private mutating func appendInternalMap(realName: String, kind: DataSectionKind, sectionIndex: Int, image: [UInt8],
                                            fileOffset: Int? = nil) {
        let datasecID = btf.flatMap { self.datasecID(named: realName, in: $0) } ?? 0
        var flags: UInt32 = kind == .rodata || kind == .kconfig ? BPFMapFlags.rdonlyProg.rawValue : 0
        if datasecID != 0, isMmapable(datasecID) { flags |= BPFMapFlags.mmapable.rawValue }
        maps.append(MapSpec(
            name: ObjectParser.internalMapName(object: name, realName: realName), realName: realName,
            type: .array, keySize: 4, valueSize: UInt32(image.count), maxEntries: 1, flags: flags,
            section: realName, role: kind == .kconfig ? .kconfig : .globalData(section: realName, kind: kind),
            btfKeyTypeID: 0, btfValueTypeID: datasecID, initialValueSize: image.count))
        dataSections.append(DataSectionSpec(name: realName, kind: kind, sectionIndex: sectionIndex,
                                            mapIndex: maps.count - 1, image: image, fileOffset: fileOffset))
    }

    /// A global-data map is mmapable when its DATASEC has a VAR that is not static.
    private func isMmapable(_ datasecID: UInt32) -> Bool {
        guard let btf, case .dataSection(_, let vars)? = btf.type(datasecID)?.kind else { return false }
        return vars.contains { v in
            if case .variable(_, let linkage)? = btf.type(v.type)?.kind {
                return linkage != BTFVarLinkage.staticLinkage.rawValue
            }
            return false
        }
    }

    /// libbpf's `internal_map_name`: up to 15 characters, the object name as prefix unless the
    /// section name has a second dot (`.data.foo`), characters outside `[A-Za-z0-9_.]` → `_`.
    static func internalMapName(object: String, realName: String) -> String {
        let maxName = 15
        let real = realName.utf8
        let obj = object.utf8
        let sfxLen = min(max(7, real.count), maxName)
        let customDot = real.dropFirst().contains(UInt8(ascii: "."))
        let pfxLen = customDot ? 0 : min(maxName - sfxLen, obj.count)
        // Written straight into the String's storage (at most 15 bytes, all ASCII once replaced).
        return String(unsafeUninitializedCapacity: maxName) { out in
            var n = 0
            func put(_ c: UInt8) {
                guard n < maxName, n < out.count else { return }
                let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2e
                out[n] = ok ? c : 0x5f
                n += 1
            }
            for c in obj.prefix(pfxLen) { put(c) }
            for c in real.prefix(sfxLen) { put(c) }
            return n
        }
    }

    /// libbpf's `collect_map_relos`: `.rel.maps` entries fill the initial slots of map-in-map and
    /// prog-array maps.
    private mutating func collectMapSlots(_ shndx: Int) throws(ObjectError) {
        for (target, relIndex) in relocationSections where target == shndx {
            let entries = try relocationEntries(relIndex)
            for (k, e) in entries.enumerated() {
                guard e.symbol > 0, e.symbol < elf.symbols.count else {
                    throw .mapSlot(map: ".maps", reason: "relocation #\(k) names symbol \(e.symbol), which does not exist")
                }
                let sym = elf.symbols[e.symbol]
                // The map whose `.maps` variable holds the relocated pointer (libbpf compares with
                // each map's own VAR, as here).
                guard let mi = userMapLayouts.indices.first(where: { i in
                    guard case .user(let off) = maps[i].role else { return false }
                    let vsize = userMapLayouts[i].variableSize
                    return UInt64(off) <= e.offset && e.offset <= UInt64(UInt32.max) && e.offset + 8 <= UInt64(off) + UInt64(vsize)
                }), case .user(let varOffset) = maps[mi].role else {
                    throw .mapSlot(map: ".maps", reason: "relocation #\(k) ('\(sym.name)') at offset \(e.offset) is in no map")
                }
                let m = (name: maps[mi].name, type: maps[mi].type, keySize: maps[mi].keySize)
                let isMapInMap = m.type == .arrayOfMaps || m.type == .hashOfMaps
                let slotTarget: MapSlotTarget
                if isMapInMap {
                    guard Int(sym.sectionIndex) == shndx else {
                        throw .mapSlot(map: m.name, reason: "'\(sym.name)' isn't a BTF-defined map")
                    }
                    if m.type == .hashOfMaps && m.keySize != 4 {
                        throw .mapSlot(map: m.name, reason: "hash-of-maps should have key size 4, has \(m.keySize)")
                    }
                    guard let t = maps.firstIndex(where: { $0.name == sym.name }) else {
                        throw .mapSlot(map: m.name, reason: "'\(sym.name)' isn't a valid map reference")
                    }
                    slotTarget = .map(index: t)
                } else if m.type == .progArray {
                    guard sym.isFunction, let sec = section(Int(sym.sectionIndex)), roles[sec.index] == .program,
                          sym.value % 8 == 0 else {
                        throw .mapSlot(map: m.name, reason: "'\(sym.name)' isn't an entry-point program")
                    }
                    slotTarget = .program(name: sym.name)
                } else {
                    throw .mapSlot(map: m.name, reason: "initial slots need a map-in-map or prog-array map")
                }
                guard let valuesOffset = userMapLayouts[mi].valuesOffset else {
                    throw .mapSlot(map: m.name, reason: "definition has no 'values' member")
                }
                let rel = e.offset - UInt64(varOffset)
                guard rel >= UInt64(valuesOffset), (rel - UInt64(valuesOffset)) % 8 == 0 else {
                    throw .mapSlot(map: m.name, reason: "relocation at \(e.offset) is not on a 'values' slot")
                }
                let slot = (rel - UInt64(valuesOffset)) / 8
                guard slot < UInt64(UInt32.max) else { throw .mapSlot(map: m.name, reason: "slot \(slot) too large") }
                maps[mi].initialSlots[UInt32(slot)] = slotTarget
            }
        }
    }

}

extension BTFKindTag {
    var name: String {
        switch self {
        case .void: "void"
        case .int: "INT"
        case .pointer: "PTR"
        case .array: "ARRAY"
        case .structure: "STRUCT"
        case .union: "UNION"
        case .enumeration: "ENUM"
        case .forward: "FWD"
        case .typedef: "TYPEDEF"
        case .volatile: "VOLATILE"
        case .const: "CONST"
        case .restrict: "RESTRICT"
        case .function: "FUNC"
        case .functionProto: "FUNC_PROTO"
        case .variable: "VAR"
        case .dataSection: "DATASEC"
        case .float: "FLOAT"
        case .declTag: "DECL_TAG"
        case .typeTag: "TYPE_TAG"
        case .enum64: "ENUM64"
        }
    }
}
