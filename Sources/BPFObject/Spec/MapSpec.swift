public enum MapPinning: UInt32, Sendable, Equatable {
    case none = 0
    /// `LIBBPF_PIN_BY_NAME`: pinned at `<root>/<map name>`, reused when compatible.
    case byName = 1
}

/// What a map is for, beyond its kernel definition.
public enum MapRole: Sendable, Equatable {
    /// Declared by the user in `SEC(".maps")`; `offset` is the variable's offset in `.maps`.
    case user(offset: UInt32)
    /// Holds a global-data section (`.data`, `.rodata.*`, `.bss` …).
    case globalData(section: String, kind: DataSectionKind)
    /// `.kconfig` externs.
    case kconfig
}

/// What an initial slot of a map-in-map or prog array points at.
public enum MapSlotTarget: Sendable, Equatable {
    case map(index: Int)
    case program(name: String)
}

public struct MapSpec: Sendable, Equatable {
    /// Kernel-visible name (libbpf's `internal_map_name` for global data, ≤ 15 chars).
    public var name: String
    /// libbpf's `real_name` (the section name for global data; the variable name otherwise).
    public var realName: String
    public var type: BPFMapType
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: UInt32
    public var numaNode: UInt32
    public var mapExtra: UInt64
    public var pinning: MapPinning
    /// ELF section the map comes from (`.maps` or the data section).
    public var section: String
    public var role: MapRole
    /// BTF ids libbpf would pass at create time (0 = none).
    public var btfKeyTypeID: UInt32
    public var btfValueTypeID: UInt32
    /// Size of `bpf_map__initial_value` (0 when the map has none).
    public var initialValueSize: Int
    /// Initial slots (`values = { [i] = &x }`), by slot index.
    public var initialSlots: [UInt32: MapSlotTarget]
    private var innerStorage: [MapSpec]

    /// The inner map definition of a map-in-map (`<outer>.inner`).
    public var innerMap: MapSpec? {
        get { innerStorage.first }
        set { innerStorage = newValue.map { [$0] } ?? [] }
    }

    public init(name: String, realName: String, type: BPFMapType, keySize: UInt32, valueSize: UInt32,
                maxEntries: UInt32, flags: UInt32, numaNode: UInt32 = 0, mapExtra: UInt64 = 0,
                pinning: MapPinning = .none, section: String, role: MapRole,
                btfKeyTypeID: UInt32 = 0, btfValueTypeID: UInt32 = 0, initialValueSize: Int = 0,
                initialSlots: [UInt32: MapSlotTarget] = [:], innerMap: MapSpec? = nil) {
        self.name = name
        self.realName = realName
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.numaNode = numaNode
        self.mapExtra = mapExtra
        self.pinning = pinning
        self.section = section
        self.role = role
        self.btfKeyTypeID = btfKeyTypeID
        self.btfValueTypeID = btfValueTypeID
        self.initialValueSize = initialValueSize
        self.initialSlots = initialSlots
        self.innerStorage = innerMap.map { [$0] } ?? []
    }
}

extension MapSpec {
    /// libbpf v1.8's `bpf_map__name`: the whole section name for a map of a custom `.data.*` or
    /// `.rodata.*` section (`.data.read_mostly`), although the kernel keeps only its first 15
    /// characters; the kernel-visible name for every other map. libbpf's `map_uses_real_name`
    /// leaves `.bss.*` out: such a map is named like the kernel's (the section's first 15
    /// characters, `[A-Za-z0-9_.]` only).
    public var libbpfName: String {
        guard case .globalData(_, let kind) = role else { return name }
        switch kind {
        case .data where realName != ".data", .rodata where realName != ".rodata": return realName
        default: return name
        }
    }
}
