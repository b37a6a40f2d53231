import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// The real default model (SmolLM2-135M-Instruct, Q4_1 GGUF) against transformers on the same weights.
final class EmbeddingParityTests: XCTestCase {
    static let model: Result<Model, Error> = Result { try Model.load(path: ParityFixtures.smolLM2Path) }

    func cosine(_ a: ArraySlice<Float>, _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for (x, y) in zip(a, b) { dot += x * y; na += x * x; nb += y * y }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    func testSmolLM2MatchesTransformers() throws {
        let model = try Self.model.get()
        let expected = try ParityFixtures.json("smollm2/expected.json")
        let entries = expected["texts"]?.array ?? []
        XCTAssertGreaterThanOrEqual(entries.count, 10)
        let C = model.config.hiddenSize
        for mode in [AttentionMode.causal, .bidirectional] {
            let key = mode == .causal ? "causal" : "bidirectional"
            // Embed every fixture text through the public path (format, tokenize, batch, pool, normalise),
            // grouped by (instruction, query/candidate) since those are per-call options.
            var groups: [String: [JSONValue]] = [:]
            for e in entries { groups["\(e["is_query"]?.bool ?? true)|\(e["instruction"]?.string ?? "")", default: []].append(e) }
            for group in groups.values {
                var options = EmbedOptions()
                options.instruction = Array((group[0]["instruction"]?.string ?? "").utf8)
                options.isQuery = group[0]["is_query"]?.bool ?? true
                options.attention = mode
                options.batchSize = 4
                var out = [Float](repeating: 0, count: group.count * C)
                _ = try out.withUnsafeMutableBufferPointer {
                    try model.embed(group.map { Array(($0["text"]?.string ?? "").utf8) }, options: options, into: $0)
                }
                for (i, e) in group.enumerated() {
                    let c = cosine(out[i * C..<(i + 1) * C], floats(e[key]))
                    XCTAssertGreaterThanOrEqual(c, 0.9999, "\(key) \(e["text"]?.string ?? "") cosine")
                }
            }
        }
    }

    func testTokenIdsMatchTransformers() throws {
        let model = try Self.model.get()
        let tok = try XCTUnwrap(model.tokenizer)
        let expected = try ParityFixtures.json("smollm2/expected.json")
        for e in expected["texts"]?.array ?? [] {
            let formatted = e["formatted"]?.string ?? ""
            let want = (e["ids"]?.array ?? []).map { Int32($0.int!) }
            XCTAssertEqual(tok.encode(Array(formatted.utf8), addSpecial: true), want, formatted)
        }
    }

    /// A text's embedding does not depend on the rest of its batch (≤ 1e-6), and edge cases are defined.
    func testBatchIndependenceAndEdgeCases() throws {
        let model = try Self.model.get()
        let C = model.config.hiddenSize
        let texts = ["short", "a somewhat longer sentence about lighthouses and ships at sea", "", "mid length text here"]
            .map { Array($0.utf8) }
        var options = EmbedOptions()
        options.batchSize = 3
        var together = [Float](repeating: 0, count: texts.count * C)
        _ = try together.withUnsafeMutableBufferPointer { try model.embed(texts, options: options, into: $0) }
        for (i, t) in texts.enumerated() {
            var alone = [Float](repeating: 0, count: C)
            _ = try alone.withUnsafeMutableBufferPointer { try model.embed([t], options: options, into: $0) }
            // Bit-identical: every product computes a row with one fixed FMA order (cullme_gemm).
            XCTAssertEqual(alone, Array(together[i * C..<(i + 1) * C]), "text \(i) alone vs in batch")
        }
        // Empty batch: nothing written, no error.
        var none: [Float] = []
        let s = try none.withUnsafeMutableBufferPointer { try model.embed([], options: options, into: $0) }
        XCTAssertEqual(s.texts, 0)
        // Truncation is counted; invalid UTF-8 is embedded (replacement characters), not rejected.
        options.maxLength = 4
        var two = [Float](repeating: 0, count: 2 * C)
        let st = try two.withUnsafeMutableBufferPointer {
            try model.embed([Array("one two three four five six seven".utf8), [0xff, 0xfe, 0x41]], options: options, into: $0)
        }
        XCTAssertEqual(st.truncated, 1)
        XCTAssertEqual(st.tokens, 4 + 3)
        options.maxLength = 0
        XCTAssertThrowsError(try two.withUnsafeMutableBufferPointer { try model.embed([[0x41]], options: options, into: $0) })
        XCTAssertThrowsError(try Pooling(name: "max"))
        XCTAssertThrowsError(try AttentionMode(name: "sideways"))
    }

    func testPoolingVariants() throws {
        let model = try Self.model.get()
        let ids = try XCTUnwrap(model.tokenizer).encode(Array("pooling check sentence".utf8), addSpecial: true)
        let h = try model.forward([ids], attention: .bidirectional).hidden
        let C = model.config.hiddenSize, L = ids.count
        var out = [Float](repeating: 0, count: C)
        h.withUnsafeBufferPointer { hp in Pooling.weightedMean.pool(hp.baseAddress!, L: L, C: C, into: &out) }
        var want = [Float](repeating: 0, count: C)
        for t in 0..<L { for c in 0..<C { want[c] += Float(t + 1) * h[t * C + c] } }
        let norm = Float(L * (L + 1) / 2)
        XCTAssertLessThanOrEqual(zip(out, want).map { abs($0 - $1 / norm) }.max()!, 1e-5)
        h.withUnsafeBufferPointer { hp in Pooling.lastToken.pool(hp.baseAddress!, L: L, C: C, into: &out) }
        XCTAssertEqual(out, Array(h[(L - 1) * C..<L * C]))
        h.withUnsafeBufferPointer { hp in Pooling.cls.pool(hp.baseAddress!, L: L, C: C, into: &out) }
        XCTAssertEqual(out, Array(h[0..<C]))
    }
}
