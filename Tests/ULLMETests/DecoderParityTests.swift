import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// Packaged paths for the decoder/embedding tests (fixtures made by scripts/fixtures/make_parity_fixtures.py).
enum ParityFixtures {
    static var root: String {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/ULLMETests/<file>
        return parts.joined(separator: "/") + "/Tests/fixtures"
    }
    static func json(_ rel: String) throws -> JSONValue {
        let path = root + "/" + rel
        guard let data = FileManager.default.contents(atPath: path) else {
            XCTFail("missing fixture \(path): run scripts/fixtures/make_parity_fixtures.py")
            throw ULLMEError.io(path)
        }
        return try JSONValue.parse(Array(data), what: path)
    }
    static var smolLM2Path: String {
        get throws {
            let p = DefaultModel.path
            guard FileManager.default.fileExists(atPath: p) else {
                XCTFail("missing model \(p): run scripts/fetch_models.sh")
                throw ULLMEError.io(p)
            }
            return p
        }
    }
}

/// Flattens nested JSON number arrays into floats.
func floats(_ v: JSONValue?) -> [Float] {
    guard let v else { return [] }
    if let a = v.array { return a.flatMap { floats($0) } }
    return [Float(v.double ?? .nan)]
}

final class DecoderParityTests: XCTestCase {
    /// Final hidden states and logits of a tiny random model of every family equal transformers' within
    /// 1e-4, for a padded batch of three sequences (one longer than the sliding windows), both attention modes.
    func testTinyLlamaParity() throws {
        for name in ["tiny-llama", "tiny-llama-rope", "tiny-llama-linear", "tiny-mistral", "tiny-qwen2", "tiny-qwen2-swa", "tiny-qwen3",
                     "tiny-phi", "tiny-phi3", "tiny-phi3-longrope", "tiny-gemma2", "tiny-gemma3"] {
            let model = try Model.load(path: ParityFixtures.root + "/" + name)
            let expected = try ParityFixtures.json(name + "/expected.json")
            let ids = (expected["ids"]?.array ?? []).map { ($0.array ?? []).map { Int32($0.int!) } }
            let lengths = (expected["lengths"]?.array ?? []).map { $0.int! }
            XCTAssertEqual(ids.count, 3)
            let sequences = zip(ids, lengths).map { Array($0.prefix($1)) }
            for mode in [AttentionMode.causal, .bidirectional] {
                let key = mode == .causal ? "causal" : "bidirectional"
                // Packed batch; the longrope fixture stores each sequence run alone (its factors depend on the
                // sequence's own length), which is exactly what packing computes too.
                let out = try model.forward(sequences, attention: mode, wantLogits: true)
                let wantHidden = floats(expected[key]?["hidden"]), wantLogits = floats(expected[key]?["logits"])
                XCTAssertEqual(out.hidden.count, wantHidden.count, "\(name) \(key) hidden size")
                XCTAssertEqual(out.logits?.count, wantLogits.count, "\(name) \(key) logits size")
                let dh = zip(out.hidden, wantHidden).map { abs($0 - $1) }.max() ?? .infinity
                let dl = zip(out.logits ?? [], wantLogits).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(dh, 1e-4, "\(name) \(key) hidden max abs diff")
                XCTAssertLessThanOrEqual(dl, 1e-4, "\(name) \(key) logits max abs diff")
                // Each sequence alone gives the same rows as inside the batch.
                for (i, s) in sequences.enumerated() {
                    let alone = try model.forward([s], attention: mode).hidden
                    let start = out.offsets[i] * model.config.hiddenSize
                    let d = zip(alone, out.hidden[start..<start + alone.count]).map { abs($0 - $1) }.max()!
                    XCTAssertLessThanOrEqual(d, 1e-6, "\(name) \(key) sequence \(i) alone vs batched")
                }
            }
        }
    }

    /// tiny-qwen3 converted to GGUF with llama.cpp's qwen3 names and keys (scripts/fixtures/make_family_gguf.py) gives
    /// transformers' hidden states and logits too.
    func testQwen3GGUFParity() throws {
        let model = try Model.load(path: ParityFixtures.root + "/generated/tiny-qwen3.gguf")
        XCTAssertEqual(model.config.family, .qwen3)
        XCTAssertTrue(model.config.qkNorm); XCTAssertFalse(model.config.qkvBias); XCTAssertEqual(model.config.headDim, 24)
        let expected = try ParityFixtures.json("tiny-qwen3/expected.json")
        let ids = (expected["ids"]?.array ?? []).map { ($0.array ?? []).map { Int32($0.int!) } }
        let lengths = (expected["lengths"]?.array ?? []).map { $0.int! }
        let sequences = zip(ids, lengths).map { Array($0.prefix($1)) }
        for (mode, key) in [(AttentionMode.causal, "causal"), (.bidirectional, "bidirectional")] {
            let out = try model.forward(sequences, attention: mode, wantLogits: true)
            let dh = zip(out.hidden, floats(expected[key]?["hidden"])).map { abs($0 - $1) }.max() ?? .infinity
            let dl = zip(out.logits ?? [], floats(expected[key]?["logits"])).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertEqual(out.hidden.count, floats(expected[key]?["hidden"]).count)
            XCTAssertLessThanOrEqual(dh, 1e-4, "GGUF qwen3 \(key) hidden")
            XCTAssertLessThanOrEqual(dl, 1e-4, "GGUF qwen3 \(key) logits")
        }
    }

    func testConfigErrors() throws {
        XCTAssertThrowsError(try ModelConfig.fromHF(.object(["model_type": .string("mamba")]))) { e in
            XCTAssertEqual((e as? ULLMEError).map { if case .unsupported = $0 { return true }; return false }, true)
        }
        XCTAssertThrowsError(try ModelConfig.fromHF(.object(["model_type": .string("llama")])))
        XCTAssertThrowsError(try Model.load(path: "/nonexistent/model.gguf")) { e in
            XCTAssertEqual(e as? ULLMEError, .io("/nonexistent/model.gguf: No such file or directory"))
        }
    }

    func testOutOfVocabularyIdsAreRejected() throws {
        let model = try Model.load(path: ParityFixtures.root + "/tiny-llama")
        XCTAssertThrowsError(try model.forward([[1, 256]], attention: .causal))
        XCTAssertThrowsError(try model.forward([[-1]], attention: .causal))
        XCTAssertThrowsError(try model.forward([[]], attention: .causal))
    }
}
