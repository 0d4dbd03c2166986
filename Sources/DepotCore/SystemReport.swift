import BPFKernel
import BPFObject

/// What this host can take, as `GET /v1/system` and `bpfdepot features` show it: the kernel
/// facts and probes (`KernelFacts`), the pin root, and the limits the service enforces.
public struct SystemReport: Sendable, Equatable {
    /// Where loads are pinned, and whether that can work.
    public struct PinRoot: Sendable, Equatable {
        /// The pin root asked for (`serve --pin-root`); nil when pinning is off (`''`).
        public var path: String?
        /// Whether loads are pinned (and survive a restart): false when pinning is off, or when
        /// the pin root could not be prepared at start-up.
        public var enabled: Bool
        public var exists: Bool
        public var onBPFFS: Bool

        /// `exists` and `onBPFFS` looked up now.
        public init(path: String?, enabled: Bool) {
            self.path = path
            self.enabled = enabled
            let state = path.map(KernelFacts.bpffsPath)
            exists = state?.exists ?? false
            onBPFFS = state?.onBPFFS ?? false
        }
    }

    public var facts: KernelFacts
    public var pinRoot: PinRoot
    /// The service's load limits; nil outside the service (`bpfdepot features`).
    public var limits: DepotLimits?

    public init(facts: KernelFacts, pinRoot: PinRoot, limits: DepotLimits?) {
        self.facts = facts
        self.pinRoot = pinRoot
        self.limits = limits
    }

    /// The document. `serverLimits` (the HTTP server's, which the depot does not know) come
    /// first in `limits`; without `limits` and `serverLimits` there is no `limits` member.
    public func json(serverLimits: [(String, JSONValue)] = []) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("kernel", .object([
                ("release", .string(facts.kernel.release)),
                ("version", .string(facts.kernel.version)),
                ("machine", .string(facts.kernel.machine)),
            ])),
            ("btf", .object([
                ("path", .string(facts.btf.path)),
                ("present", .bool(facts.btf.present)),
                ("size", facts.btf.size.map { .int($0) } ?? .null),
            ])),
            ("features", .array(facts.features.map(Self.json))),
            ("bpffs", .object([
                ("path", .string(facts.bpffs.path)),
                ("mounted", .bool(facts.bpffs.onBPFFS)),
            ])),
            ("pinRoot", .object([
                ("path", pinRoot.path.map { .string($0) } ?? .null),
                ("enabled", .bool(pinRoot.enabled)),
                ("exists", .bool(pinRoot.exists)),
                ("onBpffs", .bool(pinRoot.onBPFFS)),
            ])),
            ("capabilities", facts.capabilities.map(Self.json) ?? .null),
        ]
        var limitMembers = serverLimits
        if let limits {
            limitMembers.append(("maxConcurrentLoads", .int(Int64(limits.maxConcurrentLoads))))
            limitMembers.append(("maxArenaBytes", .uint(limits.maxArenaBytes)))
        }
        if !limitMembers.isEmpty { members.append(("limits", .object(limitMembers))) }
        return .object(members)
    }

    static func json(_ probe: FeatureProbe) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(probe.feature.rawValue)),
            ("available", .bool(probe.available)),
            ("reason", .string(probe.reason)),
        ]
        if let errno = probe.errno { members.append(("errno", .int(Int64(errno)))) }
        return .object(members)
    }

    static func json(_ caps: Capabilities) -> JSONValue {
        .object([
            ("effective", .string(caps.hex)),
            ("names", .array(caps.names.map { .string($0) })),
            ("bpf", .bool(caps.contains(.bpf))),
            ("perfmon", .bool(caps.contains(.perfmon))),
            ("netAdmin", .bool(caps.contains(.netAdmin))),
            ("sysAdmin", .bool(caps.contains(.sysAdmin))),
        ])
    }
}

extension Depot {
    /// This host's kernel facts and probes, the pin root and the load limits. Runs the feature
    /// probes on the first call of the process (bpf() calls: not for a server's own threads).
    public func systemReport() -> SystemReport {
        SystemReport(facts: .gather(), pinRoot: .init(path: requestedPinRoot, enabled: pinRoot != nil), limits: limits)
    }
}
