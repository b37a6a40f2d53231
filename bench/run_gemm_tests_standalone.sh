#!/bin/sh
# Runs Tests/ULLMETests/GemmTests.swift against Sources/CULLME alone, in a throw-away SwiftPM
# package under $TMPDIR (useful while the full engine target does not build on this branch).
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKG=${TMPDIR:-/tmp}/cullme-gemm-tests
mkdir -p "$PKG/Sources" "$PKG/Tests/GemmOnlyTests"
ln -sfn "$ROOT/Sources/CULLME" "$PKG/Sources/CULLME"
ln -sf "$ROOT/Tests/ULLMETests/GemmTests.swift" "$PKG/Tests/GemmOnlyTests/GemmTests.swift"
cat > "$PKG/Package.swift" <<'PKG'
// swift-tools-version:5.9
import PackageDescription
let package = Package(
    name: "gemmonly",
    targets: [
        .target(name: "CULLME", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])],
                linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("m")]),
        .testTarget(name: "GemmOnlyTests", dependencies: ["CULLME"]),
    ]
)
PKG
cd "$PKG" && swift test --scratch-path "$PKG/.build" "$@"
