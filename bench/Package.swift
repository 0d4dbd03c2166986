// swift-tools-version:6.0
// bpfdepot-bench: benchmarks of our parser and loader against libbpf, and the raw store cost
// under an upload (see run.sh, service.sh, RESULTS.md). A separate package so the main package's
// manifest stays untouched; it uses the main package's BPFObject and BPFKernel products by path,
// and builds its `bpfdepot` executable too (`--product bpfdepot`). Build with
// --scratch-path bench/.build.
import PackageDescription

let package = Package(
    name: "bpfdepot-bench",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "bpfdepot", path: ".."),
        // The SHA-256 DepotStore uses (its Digest), for the raw store cost.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // Debian's libsqlite3, which GRDB links on Linux.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .executableTarget(
            name: "bpfdepot-bench",
            dependencies: [
                .product(name: "BPFObject", package: "bpfdepot"),
                .product(name: "BPFKernel", package: "bpfdepot"),
                .product(name: "Crypto", package: "swift-crypto"),
                "CSQLite",
            ],
            path: "Sources/bpfdepot-bench"),
    ],
    swiftLanguageModes: [.v6]
)
