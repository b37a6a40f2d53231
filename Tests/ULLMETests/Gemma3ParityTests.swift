import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// The second real model: gemma-3-270m (Q4_K_M GGUF: K-quants, SentencePiece tokenizer, q/k norms, local
/// rope, sliding windows) against transformers on the same dequantised weights.
final class Gemma3ParityTests: XCTestCase {
    func testGemma3MatchesTransformers() throws {
        let path = DefaultModel.cacheDirectory + "/models/gemma-3-270m-q4_k_m.gguf"
        guard FileManager.default.fileExists(atPath: path) else {
            return XCTFail("missing \(path): run scripts/fetch_models.sh --gemma3")
        }
        let model = try Model.load(path: path)
        let expected = try ParityFixtures.json("gemma3/expected.json")
        let entries = try XCTUnwrap(expected["texts"]?.array)
        XCTAssertGreaterThanOrEqual(entries.count, 5)
        let C = model.config.hiddenSize
        for e in entries {
            let text = try XCTUnwrap(e["text"]?.string)
            let ids = (e["ids"]?.array ?? []).map { Int32($0.int!) }
            XCTAssertEqual(try XCTUnwrap(model.tokenizer).encode(Array(text.utf8), addSpecial: true), ids, text)
            for mode in [AttentionMode.causal, .bidirectional] {
                var options = EmbedOptions()
                options.attention = mode
                var out = [Float](repeating: 0, count: C)
                _ = try out.withUnsafeMutableBufferPointer { try model.embed([Array(text.utf8)], options: options, into: $0) }
                let want = floats(e[mode == .causal ? "causal" : "bidirectional"])
                let dot = zip(out, want).map { $0 * $1 }.reduce(0, +)
                XCTAssertGreaterThanOrEqual(dot, 0.9999, "\(mode) \(text)")
            }
        }
    }
}
