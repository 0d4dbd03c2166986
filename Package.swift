// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bpfdepot",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "bpfdepot", targets: ["bpfdepot"]),
        .library(name: "BPFObject", targets: ["BPFObject"]),
        .library(name: "BPFKernel", targets: ["BPFKernel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // libelf from Debian (libelf-dev).
        .systemLibrary(name: "CLibELF", pkgConfig: "libelf", providers: [.apt(["libelf-dev"])]),
        // The gelf.h macros Swift cannot call, as static inline functions.
        .target(name: "CELFShim", dependencies: ["CLibELF"]),
        // zlib, to read /proc/config.gz for __kconfig externs.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The variadic syscall(2)s (bpf, perf_event_open) and ioctl(2) Swift cannot call.
        .target(name: "CBPFSys"),
        // Pure: ELF bytes -> ObjectSpec. No syscalls.
        .target(name: "BPFObject", dependencies: ["CLibELF", "CELFShim"]),
        // Everything that touches the kernel.
        // (Probes/*.bpf.c are the BPF programs it loads itself, embedded by scripts/embed-probes.sh.)
        .target(name: "BPFKernel", dependencies: ["BPFObject", "CBPFSys", "CZlib", "CLibELF", "CELFShim"],
                exclude: ["Probes/arena_pages.bpf.c"]),
        // SQLite store: objects, image revisions, loads. Migrations live in /migrations.
        .target(name: "DepotStore", dependencies: [
            "BPFObject", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The service's operations (upload, patch, load, live values): store + parser + loader,
        // no HTTP and no SQL of its own.
        .target(name: "DepotCore", dependencies: [
            "BPFObject", "BPFKernel", "DepotStore", .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // libmicrohttpd (Debian's libmicrohttpd-dev) and the variadic calls Swift cannot make.
        .target(name: "CMicroHTTPD", linkerSettings: [.linkedLibrary("microhttpd"), .linkedLibrary("gnutls")]),
        // HTTP: server, routing, JSON, auth, problem+json.
        .target(name: "DepotHTTP", dependencies: [
            "CMicroHTTPD", "BPFObject", "DepotCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .executableTarget(
            name: "bpfdepot",
            dependencies: [
                "BPFObject", "BPFKernel", "DepotStore", "DepotCore", "DepotHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Test-only helpers: compiling the BPF C fixtures.
        .target(name: "BPFTestSupport", path: "Tests/Support"),
        // Test-only: what this kernel lets the tests do (probes), as Swift Testing traits.
        .target(name: "KernelTestSupport", dependencies: ["BPFKernel"], path: "Tests/KernelSupport"),
        .testTarget(name: "BPFObjectTests", dependencies: ["BPFObject", "BPFTestSupport"]),
        .testTarget(name: "BPFKernelTests", dependencies: ["BPFKernel", "BPFObject", "BPFTestSupport", "KernelTestSupport"]),
        .testTarget(name: "DepotStoreTests", dependencies: ["DepotStore", "BPFObject", "BPFTestSupport"]),
        .testTarget(name: "DepotHTTPTests", dependencies: [
            "DepotHTTP", "DepotCore", "DepotStore", "BPFObject", "BPFKernel", "BPFTestSupport", "KernelTestSupport",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
