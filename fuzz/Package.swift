// swift-tools-version:5.9
import PackageDescription

// libFuzzer harnesses for libullme's parsers (a separate package so that `swift build` of the main
// package is unaffected). Build (see fuzz/run.sh):
//   swift build -c debug --package-path fuzz --scratch-path /tmp/build-rel-fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// `-parse-as-library` keeps Swift from emitting `main`, so libFuzzer's main is used.
let package = Package(
    name: "ullme-fuzz",
    dependencies: [.package(name: "libullme", path: "..")],
    targets: [
        .executableTarget(
            name: "ullme-fuzz",
            dependencies: [.product(name: "ULLMESwiftStatic", package: "libullme")]
        ),
    ]
)
