// swift-tools-version:6.0
// bpfdepot-bench: benchmarks of our parser and loader against libbpf (see run.sh, RESULTS.md).
// A separate package so the main package's manifest stays untouched; it uses the main package's
// BPFObject and BPFKernel products by path. Build with --scratch-path bench/.build.
import PackageDescription

let package = Package(
    name: "bpfdepot-bench",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "bpfdepot", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "bpfdepot-bench",
            dependencies: [
                .product(name: "BPFObject", package: "bpfdepot"),
                .product(name: "BPFKernel", package: "bpfdepot"),
            ],
            path: "Sources/bpfdepot-bench"),
    ],
    swiftLanguageModes: [.v6]
)
