import Foundation
import XCTest
@testable import ULLMESwift

/// Helpers of TokenizerTests: fixture / cache paths, a minimal GGUF metadata reader
/// (so these tests do not depend on the GGUF parser), and the corpus.
enum TokFixtures {
    static let regenerate = "python3 scripts/fixtures/make_tokenizer_fixtures.py (models: scripts/fetch_models.sh)"

    /// Tests/fixtures/tokenizer, found relative to this file.
    static var dir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/fixtures/tokenizer")
    }

    /// $ULLME_CACHE (default ~/.cache/ullme).
    static var cache: URL {
        if let c = ProcessInfo.processInfo.environment["ULLME_CACHE"], !c.isEmpty { return URL(fileURLWithPath: c) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/ullme")
    }

    /// Reads a file, failing the test loudly (with the command that creates it) when it is missing.
    static func read(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> Data {
        do { return try readQuiet(url) } catch {
            XCTFail("\(error)", file: file, line: line)
            throw error
        }
    }

    /// Reads a file; a missing one throws an error naming the command that creates it.
    static func readQuiet(_ url: URL) throws -> Data {
        guard let d = FileManager.default.contents(atPath: url.path) else {
            throw ULLMEError.io("missing fixture \(url.path): run \(regenerate)")
        }
        return d
    }

    static func json(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        try JSONValue.parse(read(url, file: file, line: line), what: url.lastPathComponent)
    }

    static func corpus() throws -> [[UInt8]] {
        let text = String(decoding: try read(dir.appendingPathComponent("corpus.jsonl")), as: UTF8.self)
        return try text.split(separator: "\n").map { line in
            let j = try JSONValue.parse(Array(line.utf8), what: "corpus.jsonl")
            guard let b = j["b64"]?.string, let d = Data(base64Encoded: b) else { throw ULLMEError.format("corpus line") }
            return [UInt8](d)
        }
    }

    /// Expected ids (without / with special tokens) of expected-<name>.json.
    static func expected(_ name: String) throws -> (ids: [[Int32]], special: [[Int32]]) {
        let j = try json(dir.appendingPathComponent("expected-\(name).json"))
        func conv(_ v: JSONValue?) -> [[Int32]] { (v?.array ?? []).map { ($0.array ?? []).map { Int32($0.int ?? -1) } } }
        return (conv(j["ids"]), conv(j["ids_special"]))
    }

    /// llama.cpp's .inp/.out test pairs of a vocab (texts separated by "\n__ggml_vocab_test__\n").
    static func llamaCppCases(_ vocab: String) throws -> [(text: [UInt8], ids: [Int32])] {
        let base = cache.appendingPathComponent("vocab/ggml-vocab-\(vocab).gguf")
        let inp = String(decoding: try read(URL(fileURLWithPath: base.path + ".inp")), as: UTF8.self)
        let out = String(decoding: try read(URL(fileURLWithPath: base.path + ".out")), as: UTF8.self)
        var texts = inp.components(separatedBy: "\n__ggml_vocab_test__\n")
        if let last = texts.last, last.isEmpty { texts.removeLast() }
        let lines = out.components(separatedBy: "\n")
        return texts.enumerated().map { (i, t) in
            let ids = i < lines.count ? lines[i].split(separator: " ").compactMap { Int32($0) } : []
            return (Array(t.utf8), ids)
        }
    }

    static func ggufMetadata(_ url: URL) throws -> [String: GGUFValue] {
        let data = try read(url)
        return try MiniGGUF.metadata(data)
    }
}

/// Just enough GGUF to get the metadata key/values (test-only; the engine has its own parser).
enum MiniGGUF {
    static func metadata(_ data: Data) throws -> [String: GGUFValue] {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [String: GGUFValue] in
            var p = 0
            func need(_ n: Int) throws { if p + n > raw.count { throw ULLMEError.format("GGUF truncated") } }
            func rd<T: FixedWidthInteger>(_: T.Type) throws -> T {
                try need(MemoryLayout<T>.size)
                let v = raw.loadUnaligned(fromByteOffset: p, as: T.self); p += MemoryLayout<T>.size; return T(littleEndian: v)
            }
            func str() throws -> String {
                let n = Int(try rd(UInt64.self)); try need(n)
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: raw[p..<(p + n)]), as: UTF8.self); p += n; return s
            }
            func value(_ t: UInt32) throws -> GGUFValue {
                switch t {
                case 0: return .uint(UInt64(try rd(UInt8.self)))
                case 1: return .int(Int64(try rd(Int8.self)))
                case 2: return .uint(UInt64(try rd(UInt16.self)))
                case 3: return .int(Int64(try rd(Int16.self)))
                case 4: return .uint(UInt64(try rd(UInt32.self)))
                case 5: return .int(Int64(try rd(Int32.self)))
                case 6: return .float(Double(Float(bitPattern: try rd(UInt32.self))))
                case 7: return .bool(try rd(UInt8.self) != 0)
                case 8: return .string(try str())
                case 9:
                    let et = try rd(UInt32.self); let n = Int(try rd(UInt64.self))
                    var a = [GGUFValue](); a.reserveCapacity(n)
                    for _ in 0..<n { a.append(try value(et)) }
                    return .array(a)
                case 10: return .uint(try rd(UInt64.self))
                case 11: return .int(try rd(Int64.self))
                case 12: return .float(Double(bitPattern: try rd(UInt64.self)))
                default: throw ULLMEError.format("GGUF value type \(t)")
                }
            }
            guard try rd(UInt32.self) == 0x4655_4747 else { throw ULLMEError.format("not GGUF") }
            _ = try rd(UInt32.self); _ = try rd(UInt64.self)
            let kv = try rd(UInt64.self)
            var out = [String: GGUFValue]()
            for _ in 0..<kv { let k = try str(); let t = try rd(UInt32.self); out[k] = try value(t) }
            return out
        }
    }
}
