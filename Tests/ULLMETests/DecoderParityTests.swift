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
                // Logits of some rows only (the generation losses' labelled positions): those rows' bits.
                let V = model.config.vocabSize, rows = [out.offsets[2] - 1, 0, out.offsets[1] + 2]
                let some = try XCTUnwrap(try model.decoder.forward(sequences, attention: mode, wantLogits: true, logitRows: rows).logits)
                XCTAssertEqual(some, rows.flatMap { out.logits![($0 * V)..<(($0 + 1) * V)] }, "\(name) \(key) logit rows")
                XCTAssertThrowsError(try model.decoder.forward(sequences, attention: mode, wantLogits: true, logitRows: [out.offsets[3]]))
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

    /// The config keys a family reads come from its row of the family table: the same key is read by the
    /// families that list it and ignored by the others, and a flag a family does not implement is refused.
    func testFamilyConfigKeysFollowTheFamilyTable() throws {
        func config(_ type: String, _ extra: String) throws -> ModelConfig {
            try ModelConfig.fromHF(JSONValue.parse(Array("""
                {"model_type":"\(type)","hidden_size":64,"num_attention_heads":4,"num_hidden_layers":2,
                 "intermediate_size":128,"vocab_size":256\(extra)}
                """.utf8), what: "config.json"))
        }
        let caps = #","attn_logit_softcapping":4.0,"final_logit_softcapping":5.0,"query_pre_attn_scalar":16"#
        let gemma2 = try config("gemma2", caps), gemma3 = try config("gemma3_text", caps), llama = try config("llama", caps)
        XCTAssertEqual(gemma2.attentionSoftcap, 4); XCTAssertEqual(gemma2.finalLogitSoftcap, 5)
        XCTAssertEqual(gemma2.attentionScale, 0.25)
        XCTAssertNil(gemma3.attentionSoftcap); XCTAssertEqual(gemma3.finalLogitSoftcap, 5)
        XCTAssertNil(llama.attentionSoftcap); XCTAssertNil(llama.finalLogitSoftcap); XCTAssertEqual(llama.attentionScale, 0)
        XCTAssertEqual(gemma3.localRopeTheta, 10000); XCTAssertNil(gemma2.localRopeTheta)
        XCTAssertTrue(try config("llama", #","mlp_bias":true"#).mlpBias)
        XCTAssertFalse(try config("mistral", #","mlp_bias":true"#).mlpBias)
        for (type, key) in [("phi", "qk_layernorm"), ("gemma3_text", "use_bidirectional_attention")] {
            XCTAssertThrowsError(try config(type, ",\"\(key)\":true")) { e in
                guard case .unsupported(let m)? = e as? ULLMEError else { return XCTFail("\(type): \(e)") }
                XCTAssertTrue(m.contains(key), m)
            }
            XCTAssertNoThrow(try config(type, ",\"\(key)\":false"))
        }
        XCTAssertThrowsError(try config("mistral", #","pretraining_tp":2"#))
    }

    func testOutOfVocabularyIdsAreRejected() throws {
        let model = try Model.load(path: ParityFixtures.root + "/tiny-llama")
        XCTAssertThrowsError(try model.forward([[1, 256]], attention: .causal))
        XCTAssertThrowsError(try model.forward([[-1]], attention: .causal))
        XCTAssertThrowsError(try model.forward([[]], attention: .causal))
    }
}
