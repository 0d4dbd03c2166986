import BPFTestSupport
import BPFKernel
import DepotCore
import DepotHTTP
import DepotStore
import Foundation
import Glibc
import KernelTestSupport
import Testing

/// `GET /v1/system` checked against this host as a user would check it: `uname`, the BTF file,
/// /proc/self/mounts and /proc/self/status read here, and a real arena map create.
@Suite("GET /v1/system") struct SystemReportTests {
    static func system(_ f: ServiceFixture) throws -> [String: Any] {
        let r = CurlResponse(f.dispatcher().respond(to: try request(.GET, "/v1/system")))
        #expect(r.status == 200, "\(r.text)")
        #expect(r.headers["Content-Type"] == "application/json")
        return try #require(jsonObject(r.body))
    }

    static func uname(_ flag: String) throws -> String {
        let (code, out, err) = try runProcess("/usr/bin/uname", [flag])
        try #require(code == 0, "uname \(flag): \(err)")
        return out.trimmingCharacters(in: .newlines)
    }

    /// `CapEff` of this process, read without the code under test.
    static var capEff: String? {
        let status = ProcFile.text("/proc/self/status") ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }?
            .dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces)
    }

    @Test func kernelBTFBpffsCapabilitiesAndProbesAreThisHosts() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let o = try Self.system(f)

        let kernel = try #require(o["kernel"] as? [String: Any])
        #expect(kernel["release"] as? String == (try Self.uname("-r")))
        #expect(kernel["version"] as? String == (try Self.uname("-v")))
        #expect(kernel["machine"] as? String == (try Self.uname("-m")))

        let btf = try #require(o["btf"] as? [String: Any])
        let attributes = try? FileManager.default.attributesOfItem(atPath: "/sys/kernel/btf/vmlinux")
        #expect(btf["present"] as? Bool == (attributes != nil))
        #expect(btf["size"] as? Int == (attributes?[.size] as? NSNumber)?.intValue)
        if attributes == nil { #expect(btf["size"] is NSNull) }

        let mounts = ProcFile.text("/proc/self/mounts") ?? ""
        let bpffsMounted = mounts.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 2 && fields[1] == "/sys/fs/bpf" && fields[2] == "bpf"
        }
        #expect(jsonText(o["bpffs"]) == jsonText(["path": "/sys/fs/bpf", "mounted": bpffsMounted] as [String: Any]))

        // Every probe, in order, as the loader sees it.
        let features = try #require(o["features"] as? [[String: Any]])
        #expect(features.map { $0["name"] as? String } == FeatureProbe.Feature.allCases.map(\.rawValue))
        for (json, feature) in zip(features, FeatureProbe.Feature.allCases) {
            let probe = FeatureProbes.result(feature)
            #expect(json["available"] as? Bool == probe.available, "\(feature)")
            #expect(json["reason"] as? String == probe.reason, "\(feature)")
            #expect((json["errno"] as? Int).map(Int32.init) == probe.errno, "\(feature)")
        }

        let caps = try #require(o["capabilities"] as? [String: Any])
        let raw = try #require(Self.capEff)
        #expect(caps["effective"] as? String == raw)
        let bits = try #require(UInt64(raw, radix: 16))
        let names = caps["names"] as? [String] ?? []
        #expect(names.count == bits.nonzeroBitCount)
        for (name, key, bit) in [("cap_net_admin", "netAdmin", 12), ("cap_sys_admin", "sysAdmin", 21),
                                 ("cap_sys_resource", nil, 24), ("cap_perfmon", "perfmon", 38), ("cap_bpf", "bpf", 39)] {
            let set = bits & (1 << UInt64(bit)) != 0
            #expect(names.contains(name) == set, "\(name)")
            if let key { #expect(caps[key] as? Bool == set, "\(key)") }
        }
        if geteuid() == 0 && KernelRequirements.bpfPermitted {
            #expect(names.contains("cap_bpf"), "root that may use bpf() has CAP_BPF: \(names)")
        }

        // The fixture's depot pins nothing; its router was built for a server with the defaults.
        #expect(jsonText(o["pinRoot"]) == jsonText(["path": NSNull(), "enabled": false, "exists": false, "onBpffs": false] as [String: Any]))
        let limits = try #require(o["limits"] as? [String: Any])
        #expect(limits["maxBodyBytes"] as? Int == HTTPServerConfiguration.defaultMaxBodyBytes)
        #expect(limits["maxConcurrentLoads"] as? Int == DepotLimits.defaultMaxConcurrentLoads)
        #expect((limits["maxArenaBytes"] as? NSNumber)?.uint64Value == DepotLimits.defaultMaxArenaBytes)
    }

    /// Ground truth for `arena_maps`: a real one-page arena map of another name.
    @Test(.needsBPF) func arenaMapsAgreesWithARealArenaMap() throws {
        let f = try ServiceFixture()
        defer { f.close() }
        let features = try #require(try Self.system(f)["features"] as? [[String: Any]])
        let arena = try #require(features.first { $0["name"] as? String == "arena_maps" })
        let attempt = Result {
            try BPFSys.mapCreate(type: BPFConstants.MapType.arena, keySize: 0, valueSize: 0, maxEntries: 1,
                                 flags: BPFConstants.MapFlag.mmapable, name: "system_truth")
        }
        switch attempt {
        case .success(let map):
            map.close()
            #expect(arena["available"] as? Bool == true, "\(arena)")
            #expect(arena["errno"] == nil)
        case .failure(let error):
            let errno = try #require((error as? BPFError)?.errno, "\(error)")
            print("arena map create: errno \(errno); /v1/system says: \(arena["reason"] ?? "")")
            #expect(arena["available"] as? Bool == false)
            #expect(arena["errno"] as? Int == Int(errno))
            if errno == EPERM {
                #expect((arena["reason"] as? String)?.hasPrefix("kernel refuses BPF arena maps: EPERM") == true, "\(arena)")
            }
            if errno == EINVAL { #expect((arena["reason"] as? String)?.contains("has no BPF arena maps") == true) }
        }
    }

    /// Over a socket, with a token (a read needs none, as every GET): the limits are the ones the
    /// server and the depot were given, and the pin root is reported as asked for and as found.
    @Test func limitsAndPinRootEchoTheConfiguration() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-system-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try DepotStore(path: dir + "/depot.sqlite")
        defer { try? store.close() }
        // Asked for a pin root that could not be prepared (not on bpffs), so loads are not pinned.
        let depot = Depot(store: store, limits: DepotLimits(maxConcurrentLoads: 3, maxArenaBytes: 5 << 20), requestedPinRoot: dir)
        var config = HTTPServerConfiguration(listen: .init(host: "127.0.0.1", port: 0), maxBodyBytes: 123_456,
                                             connectionLimit: 77, connectionTimeoutSeconds: 9, bearerToken: "s3cret")
        config.headerTimeoutSeconds = 7
        config.requestsPerSecondPerClient = 500
        let server = try LoopbackServer(router: DepotRoutes.router(depot: depot, openAPI: "x", server: config)) { c in
            // The loopback server's threads, this test's everything else.
            let (pool, workers) = (c.threadPoolSize, c.workerThreads)
            c = config
            c.threadPoolSize = pool
            c.workerThreads = workers
        }
        defer { server.stop() }
        let r = try Curl.get(server.url("/v1/system"), ["-H", "Authorization: Bearer s3cret"])
        #expect(r.status == 200, "\(r.text)")
        let o = try #require(jsonObject(r.body))
        #expect(jsonText(o["limits"]) == jsonText([
            "maxBodyBytes": 123_456, "maxConnections": 77, "headerTimeoutSeconds": 7, "connectionTimeoutSeconds": 9,
            "requestsPerSecondPerClient": 500, "maxConcurrentLoads": 3, "maxArenaBytes": 5 << 20,
        ] as [String: Any]))
        #expect(jsonText(o["pinRoot"]) == jsonText(["path": dir, "enabled": false, "exists": true, "onBpffs": false] as [String: Any]))
        // Writes need the token, and this path has none.
        #expect(try Curl.fetch("POST", server.url("/v1/system")).status == 401)
    }

    @Test(.needsBPF, .enabled(if: KernelFacts.bpffsPath("/sys/fs/bpf").onBPFFS, "needs bpffs at /sys/fs/bpf"))
    func aPreparedPinRootIsEnabledAndOnBpffs() throws {
        let root = "/sys/fs/bpf/bpfdepot-system-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try PinRoot.prepare(root)
        defer { rmdir(root) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpfdepot-system-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try DepotStore(path: dir + "/depot.sqlite")
        defer { try? store.close() }
        let router = DepotRoutes.router(depot: Depot(store: store, pinRoot: root), openAPI: "x")
        let o = try #require(jsonObject(router.respond(to: try request(.GET, "/v1/system")).body))
        #expect(jsonText(o["pinRoot"]) == jsonText(["path": root, "enabled": true, "exists": true, "onBpffs": true] as [String: Any]))
    }

    /// BPF descriptors of this process that are the probes' maps and programs (by their names).
    static func probeObjectsOpen() -> [String] {
        let probeNames: Set = ["arena_probe", "segv_probe", "ldimm64_probe", "bind_probe"]
        var found: [String] = []
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let n = Int32(fd),
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                  target == "anon_inode:bpf-map" || target == "anon_inode:bpf-prog" else { continue }
            // A duplicate of our own, so the descriptor (another test's, maybe) is never closed here.
            let copy = dup(n)
            guard copy >= 0 else { continue }
            let owned = BPFFD(adopting: copy)
            defer { owned.close() }
            let name = target.hasSuffix("map")
                ? (try? BPFSys.objGetInfoByFD(mapFD: owned))?.name : (try? BPFSys.objGetInfoByFD(programFD: owned))?.name
            if let name, probeNames.contains(name) { found.append("\(target) \(name) (fd \(fd))") }
        }
        return found
    }

    /// bpf and btf descriptors of this process.
    static func bpfDescriptors() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).filter { fd in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
            return target.hasPrefix("anon_inode:bpf") || target.hasPrefix("anon_inode:btf")
        }.count
    }

    /// The report and the probes behind it (run again, uncached) leave no map, program or BTF
    /// descriptor open: none named like a probe's is left at all, and the count of bpf/btf
    /// descriptors is where it was, allowing for loads of tests running in parallel.
    @Test(.needsBPF) func reportingLeavesNoBPFDescriptorBehind() throws {
        // The name check sees a probe's map when one is open.
        let decoy = try BPFSys.mapCreate(type: BPFConstants.MapType.array, keySize: 4, valueSize: 4, maxEntries: 1, name: "bind_probe")
        #expect(Self.probeObjectsOpen().count >= 1)
        decoy.close()

        let f = try ServiceFixture()
        defer { f.close() }
        _ = try Self.system(f)  // the cached probes have run
        let before = Self.bpfDescriptors()
        for _ in 0..<20 { _ = try Self.system(f) }
        let rounds = 5
        for _ in 0..<rounds {
            for feature in FeatureProbe.Feature.allCases { _ = FeatureProbes.probe(feature) }
        }
        let after = Self.bpfDescriptors()
        print("GET /v1/system ×20 and \(rounds) rounds of every probe: bpf/btf descriptors \(before) → \(after)")
        // Probes of another suite (BPFKernelTests runs them in this process too) hold theirs for
        // a moment; a leaked one stays.
        var open = Self.probeObjectsOpen()
        for _ in 0..<40 where !open.isEmpty {
            usleep(50_000)
            open = Self.probeObjectsOpen()
        }
        #expect(open == [])
        // One leaked descriptor per probe run would add at least 7 × rounds.
        #expect(after - before < 7 * rounds, "bpf/btf descriptors \(before) → \(after)")
    }

    /// CapEff as the kernel prints it, and lines that are not.
    @Test func capEffIsReadAsTheKernelPrintsIt() throws {
        let caps = try Capabilities.effective(inStatus: "Name:\tbpfdepot\nCapInh:\t0000000000000000\nCapEff:\t000000c000001000\n")
        #expect(caps.hex == "000000c000001000")
        #expect(caps.names == ["cap_net_admin", "cap_perfmon", "cap_bpf"])
        #expect(caps.contains(.bpf) && caps.contains(.perfmon) && caps.contains(.netAdmin) && !caps.contains(.sysAdmin))
        #expect(Capabilities(bits: 1 << 45 | 1).names == ["cap_chown", "cap_45"])
        #expect(throws: CapabilityError.noCapEff) { try Capabilities.effective(inStatus: "CapPrm:\t0000000000000000\n") }
        #expect(throws: CapabilityError.malformedCapEff("CapEff:\tzz")) { try Capabilities.effective(inStatus: "CapEff:\tzz\n") }
        #expect(throws: CapabilityError.malformedCapEff("CapEff:\t")) { try Capabilities.effective(inStatus: "CapEff:\t\n") }
    }

    /// The spec's enum of feature names is the probes' list (a new probe needs both).
    @Test func openAPIEnumListsEveryProbe() throws {
        let yaml = OpenAPIDocument.yaml
        let block = try #require(yaml.range(of: "    FeatureProbe:\n"))
        let rest = yaml[block.upperBound...]
        let open = try #require(rest.range(of: "enum: ["))
        let close = try #require(rest[open.upperBound...].firstIndex(of: "]"))
        let names = rest[open.upperBound..<close].split(whereSeparator: { ", \n".contains($0) }).map(String.init)
        #expect(names == FeatureProbe.Feature.allCases.map(\.rawValue))
        #expect(yaml.contains("  /v1/system:\n    get:\n"))
    }
}

/// `bpfdepot features`: the binary the tests were built with, run as a person would.
@Suite("bpfdepot features") struct FeaturesCommandTests {
    @Test func jsonIsTheSystemDocumentWithoutLimits() throws {
        let (code, out, err) = try runProcess(ServeProcess.binary, ["features", "--json"])
        #expect(code == 0, "\(err)")
        let cli = try #require(jsonObject(Array(out.utf8)), "not a JSON object: \(out)")
        #expect(cli["limits"] == nil)
        #expect((cli["kernel"] as? [String: Any])?["release"] as? String == (try SystemReportTests.uname("-r")))
        // The same probes answer the same in another process on this kernel.
        let features = try #require(cli["features"] as? [[String: Any]])
        #expect(features.map { $0["name"] as? String } == FeatureProbe.Feature.allCases.map(\.rawValue))
        for (json, feature) in zip(features, FeatureProbe.Feature.allCases) {
            let probe = FeatureProbes.result(feature)
            #expect(json["available"] as? Bool == probe.available, "\(feature): \(json)")
            #expect((json["errno"] as? Int).map(Int32.init) == probe.errno, "\(feature)")
        }
        #expect(jsonText(cli["pinRoot"]) == jsonText([
            "path": "/sys/fs/bpf/bpfdepot", "enabled": true,
            "exists": KernelFacts.bpffsPath("/sys/fs/bpf/bpfdepot").exists,
            "onBpffs": KernelFacts.bpffsPath("/sys/fs/bpf/bpfdepot").onBPFFS,
        ] as [String: Any]))
        // And the rest is what the service answers, member for member.
        let f = try ServiceFixture()
        defer { f.close() }
        let service = try SystemReportTests.system(f)
        for key in ["kernel", "btf", "features", "bpffs", "capabilities"] {
            #expect(jsonText(cli[key]) == jsonText(service[key]), "\(key)")
        }
        #expect(Set(cli.keys) == Set(service.keys).subtracting(["limits"]))

        let off = try runProcess(ServeProcess.binary, ["features", "--json", "--pin-root", ""])
        #expect(off.code == 0, "\(off.err)")
        #expect(jsonText(jsonObject(Array(off.out.utf8))?["pinRoot"])
                == jsonText(["path": NSNull(), "enabled": false, "exists": false, "onBpffs": false] as [String: Any]))
    }

    @Test func tableShowsEveryProbeAndTheHost() throws {
        let (code, out, err) = try runProcess(ServeProcess.binary, ["features"])
        #expect(code == 0, "\(err)")
        let lines = out.split(separator: "\n").map(String.init)
        for prefix in ["kernel ", "vmlinux BTF ", "bpffs ", "pin root ", "capabilities "] {
            #expect(lines.contains { $0.hasPrefix(prefix) }, "no '\(prefix)' line in:\n\(out)")
        }
        #expect(lines.contains { $0.hasPrefix("kernel") && $0.contains(KernelVersion.release) })
        for feature in FeatureProbe.Feature.allCases {
            let probe = FeatureProbes.result(feature)
            let row = lines.first { $0.hasPrefix(feature.rawValue + " ") }
            let cells = row?.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true) ?? []
            #expect(cells.count == 3, "\(feature): \(row ?? "no row")")
            #expect(cells.dropFirst().first == (probe.available ? "yes" : "no"), "\(feature): \(row ?? "")")
        }
        print(out)
    }
}
