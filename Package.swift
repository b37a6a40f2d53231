// swift-tools-version:5.9
import PackageDescription

// libullme: a Swift engine behind a C ABI (include/ullme.h).
// Products: libullme.so (dynamic, only ullme_* exported), the `ullme-cli` tool
// (installed as `ullme` by `make`), and the test suite.
let package = Package(
    name: "libullme",
    products: [
        .library(name: "ullme", type: .dynamic, targets: ["ULLMESwift"]),
        .executable(name: "ullme-cli", targets: ["ullme-cli"]),
        // The engine as a Swift library, for the fuzz harnesses of fuzz/ (not part of the C ABI).
        .library(name: "ULLMESwiftStatic", type: .static, targets: ["ULLMESwift"]),
    ],
    targets: [
        // C shims: OpenBLAS (cblas.h) and the SIMD kernels that need run-time CPU dispatch.
        .target(
            name: "CULLME",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])],
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("m")]
        ),
        // libyaml for the training config (Debian libyaml-dev: yaml.h, libyaml.so).
        .systemLibrary(
            name: "CYAML",
            path: "Sources/CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .target(
            name: "ULLMESwift",
            dependencies: ["CULLME", "CYAML"],
            exclude: ["CAPI/exports.map"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))],
            // Export exactly the functions of include/ullme.h. Absolute path: packages that depend on
            // this one (fuzz/) link from their own root.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/ULLMESwift/CAPI/exports.map"])]
        ),
        .executableTarget(name: "ullme-cli", dependencies: ["ULLMESwift"]),
        .testTarget(name: "ULLMETests", dependencies: ["ULLMESwift"], path: "Tests/ULLMETests"),
    ]
)
