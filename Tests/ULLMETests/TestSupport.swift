import FoundationEssentials
import XCTest

/// The package root, found from this file's location (Tests/ULLMETests/TestSupport.swift).
let packageRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// The model cache: $ULLME_CACHE, else ~/.cache/ullme.
func ullmeCache() -> String {
    let env = ProcessInfo.processInfo.environment
    if let c = env["ULLME_CACHE"], !c.isEmpty { return c }
    return (env["HOME"] ?? "/root") + "/.cache/ullme"
}

struct MissingFile: Error, CustomStringConvertible {
    let description: String
}

/// Path of a model in the cache; throws (failing the test) with the command that fetches it.
func modelPath(_ name: String) throws -> String {
    let p = ullmeCache() + "/models/" + name
    guard FileManager.default.fileExists(atPath: p) else {
        throw MissingFile(description: "model \(p) is missing: run scripts/fetch_models.sh --gemma3 (set ULLME_CACHE to use another cache)")
    }
    return p
}

/// Path of a fixture under Tests/fixtures/; throws (failing the test) naming the generator script.
func fixturePath(_ rel: String) throws -> String {
    let p = packageRoot + "/Tests/fixtures/" + rel
    guard FileManager.default.fileExists(atPath: p) else {
        let script = rel.hasPrefix("generated/") || rel.hasPrefix("dequant/")
            ? "python3 scripts/fixtures/make_dequant_fixtures.py" : "the fixture scripts in scripts/"
        throw MissingFile(description: "fixture \(p) is missing: run \(script)")
    }
    return p
}

/// A fresh empty directory under the system temporary directory.
func makeTempDir(_ tag: String = "ullme-test") throws -> String {
    let p = FileManager.default.temporaryDirectory.path + "/\(tag)-\(UInt64.random(in: 0 ..< UInt64.max))"
    try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func writeFile(_ path: String, _ text: String) throws {
    try writeFile(path, Array(text.utf8))
}
