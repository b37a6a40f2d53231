import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// Final hidden states and top logits of the real SmolLM2 GGUF on fixed token ids vs transformers.
final class SmolHiddenTests: XCTestCase {
    func testHiddenStatesAndLogitsOnIds() throws {
        let model = try Model.load(path: ParityFixtures.smolLM2Path)
        let expected = try ParityFixtures.json("smollm2/expected.json")
        var checked = 0
        for e in expected["texts"]?.array ?? [] where e["hidden_causal"] != nil {
            let ids = (e["embed_ids"]?.array ?? []).map { Int32($0.int!) }
            for mode in [AttentionMode.causal, .bidirectional] {
                let key = mode == .causal ? "hidden_causal" : "hidden_bidirectional"
                let out = try model.forward([ids], attention: mode, wantLogits: mode == .causal)
                let want = floats(e[key])
                let got = Array(out.hidden.prefix(want.count))
                let d = zip(got, want).map { abs($0 - $1) }.max()!
                let scale = want.map(abs).max()!
                XCTAssertLessThanOrEqual(d / scale, 1e-5, "\(key) rel diff (max |h| \(scale))")
                if mode == .causal, let top = e["logits_top5"] {
                    let V = model.config.vocabSize
                    let wantIds = (top["ids"]?.array ?? []).map { ($0.array ?? []).map { $0.int! } }
                    for (row, rowIds) in wantIds.enumerated() {
                        let logits = out.logits![row * V..<(row + 1) * V]
                        let best = logits.indices.max { logits[$0] < logits[$1] }! - row * V
                        XCTAssertEqual(best, rowIds.first, "row \(row) argmax")
                    }
                }
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
    }
}
