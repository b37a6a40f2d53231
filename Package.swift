// swift-tools-version:5.9
import PackageDescription

// libullme: a Swift engine behind a C ABI (include/ullme.h).
// Products: libullme.so (dynamic, only ullme_* exported), the `ullme-cli` tool
// (installed as `ullme` by `make`), and the test suite.

// Self-contained shipped binaries (libullme.so and the CLI): the Swift runtime, FoundationEssentials and
// libdispatch are linked statically from the toolchain's swift_static, so at run time they need only libc,
// libm, libgcc_s, libstdc++, OpenBLAS and libyaml (no Swift toolchain, no RUNPATH into it).
// - `-static-stdlib` given to the link (SwiftPM's `--static-swift-stdlib` cannot link a dynamic library).
// - FoundationEssentials' own static dependencies are not autolinked: without them the library has an
//   undefined `_FoundationCollections` symbol that fails at load time.
// - lld (the toolchain's own ld.lld): gold leaves the engine's local Swift type metadata (and, with static
//   libdispatch, `__dispatch_tsd`) in `.dynsym` despite the version script; lld leaves only `ullme_*`.
// Only these two products get the flags: the test runner links XCTest, which brings the dynamic runtime.
// Linux only (Apple platforms have the Swift runtime in the OS and no static one).
let staticSwiftRuntime: [LinkerSetting] = [
    .unsafeFlags(["-static-stdlib", "-use-ld=lld"], .when(platforms: [.linux])),
    .linkedLibrary("_FoundationCollections", .when(platforms: [.linux])),
    .linkedLibrary("_FoundationCShims", .when(platforms: [.linux])),
]

let package = Package(
    name: "libullme",
    products: [
        .library(name: "ullme", type: .dynamic, targets: ["ULLMELibrary"]),
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
        // The dynamic library product's own (empty) target: it carries the static-runtime link flags, which
        // SwiftPM can only attach to targets, so that they reach libullme.so and not the tests or fuzz/.
        .target(name: "ULLMELibrary", dependencies: ["ULLMESwift"], linkerSettings: staticSwiftRuntime),
        .executableTarget(name: "ullme-cli", dependencies: ["ULLMESwift"], linkerSettings: staticSwiftRuntime),
        .testTarget(name: "ULLMETests", dependencies: ["ULLMESwift"], path: "Tests/ULLMETests"),
    ]
)
