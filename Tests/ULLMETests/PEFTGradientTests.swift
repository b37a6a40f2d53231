import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// LoRA and projection-head gradients equal PyTorch + PEFT's on a tiny random model of every family, for
/// the embedding objective (bidirectional, pooled, projected, normalised; dL/dreps = G) and the causal LM
/// loss. Fixtures: scripts/fixtures/make_lora_grad_fixtures.py.
final class PEFTGradientTests: XCTestCase {
    static let fixtures = ["tiny-llama", "tiny-llama-rope", "tiny-mistral", "tiny-qwen2", "tiny-qwen2-swa", "tiny-qwen3", "tiny-phi",
                           "tiny-phi3", "tiny-phi3-longrope", "tiny-gemma2", "tiny-gemma3"]

    func tensor(_ file: SafetensorsFile, _ name: String) throws -> [Float] {
        guard let t = file.tensor(named: name) else { XCTFail("missing \(name)"); throw ULLMEError.format(name) }
        return try t.toFloat32()
    }

    /// Loads a fixture's model with PEFT's adapter and head.
    func load(_ name: String) throws -> (TrainingModel, JSONValue, SafetensorsFile) {
        let dir = ParityFixtures.root + "/lora-grads/" + name
        let expected = try ParityFixtures.json("lora-grads/\(name)/expected.json")
        let model = try Model.load(path: ParityFixtures.root + "/" + name)
        let r = try XCTUnwrap(expected["lora"]?["r"]?.int), alpha = Float(try XCTUnwrap(expected["lora"]?["lora_alpha"]?.double))
        let lora = LoRAModel(config: model.config, rank: r, alpha: alpha, dropout: 0, seed: 0)
        let adapter = try SafetensorsFile(file: MappedFile(path: dir + "/adapter.safetensors"))
        for layer in lora.adapters.indices { for (t, target) in lora.targets.enumerated() {
            let key = model.config.peftModuleName(layer: layer, target: target, causalLM: true)
            lora.adapters[layer][t].a = try tensor(adapter, key + ".lora_A.weight")
            lora.adapters[layer][t].b = try tensor(adapter, key + ".lora_B.weight")
        } }
        let headFile = try SafetensorsFile(file: MappedFile(path: dir + "/head.safetensors"))
        let head = ProjectionHead(dim: model.config.hiddenSize, w1: try tensor(headFile, "0.weight"), b1: try tensor(headFile, "0.bias"),
                                  w2: try tensor(headFile, "2.weight"), b2: try tensor(headFile, "2.bias"))
        let grads = try SafetensorsFile(file: MappedFile(path: dir + "/grads.safetensors"))
        return (TrainingModel(model: model, lora: lora, head: head), expected, grads)
    }

    /// Compares every LoRA gradient (and the head's, for embedding objectives) with rel ≤ 1e-3, abs ≤ 1e-5.
    func compare(_ name: String, _ objective: String, _ tm: TrainingModel, _ g: TrainingModel.Gradients,
                 _ grads: SafetensorsFile, head: Bool) throws {
        var pairs: [(String, [Float], [Float])] = []
        for layer in tm.lora.adapters.indices { for (t, target) in tm.lora.targets.enumerated() {
            let key = tm.model.config.peftModuleName(layer: layer, target: target, causalLM: true)
            pairs.append((key + " A", g.lora.dA[layer][t], try tensor(grads, "\(objective)/\(key).lora_A.weight")))
            pairs.append((key + " B", g.lora.dB[layer][t], try tensor(grads, "\(objective)/\(key).lora_B.weight")))
        } }
        if head {
            pairs += [("head w1", g.head.w1, try tensor(grads, "\(objective)/head.0.weight")),
                      ("head b1", g.head.b1, try tensor(grads, "\(objective)/head.0.bias")),
                      ("head w2", g.head.w2, try tensor(grads, "\(objective)/head.2.weight")),
                      ("head b2", g.head.b2, try tensor(grads, "\(objective)/head.2.bias"))]
        }
        for (what, ours, theirs) in pairs {
            XCTAssertEqual(ours.count, theirs.count, "\(name) \(objective) \(what) size")
            let scale = theirs.map(abs).max() ?? 0
            let diff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertTrue(diff <= 1e-5 || diff <= 1e-3 * scale, "\(name) \(objective) \(what): max diff \(diff), max |grad| \(scale)")
        }
    }

    func testEmbeddingGradientsMatchPEFT() throws {
        for name in Self.fixtures {
            let (tm, expected, grads) = try load(name)
            let ids = (expected["ids"]?.array ?? []).map { ($0.array ?? []).map { Int32($0.int!) } }
            let lengths = (expected["lengths"]?.array ?? []).map { $0.int! }
            let sequences = zip(ids, lengths).map { Array($0.prefix($1)) }
            let G = floats(expected["G"])
            var variants: [(String, Pooling, AttentionMode)] = [("embed_mean", .mean, .bidirectional)]
            if name == "tiny-llama" {
                variants += [("embed_weightedmean", .weightedMean, .bidirectional), ("embed_cls", .cls, .bidirectional),
                             ("embed_lasttoken", .lastToken, .bidirectional), ("embed_mean_causal", .mean, .causal)]
            }
            for (objective, pooling, attention) in variants {
                tm.pooling = pooling
                var g = tm.zeroGradients()
                let reps = try tm.embeddingBackward(sequences, examples: [0, 1, 2], dReps: G, attention: attention, grads: &g)
                let loss = zip(reps, G).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                let want = Float(try XCTUnwrap(expected["objectives"]?[objective]?["loss"]?.double))
                XCTAssertEqual(loss, want, accuracy: 1e-4 * max(1, abs(want)), "\(name) \(objective) loss")
                try compare(name, objective, tm, g, grads, head: true)
            }
        }
    }

    func testCausalLMGradientsMatchPEFT() throws {
        for name in Self.fixtures {
            let (tm, expected, grads) = try load(name)
            let ids = (expected["ids"]?.array ?? []).map { ($0.array ?? []).map { Int32($0.int!) } }
            let lengths = (expected["lengths"]?.array ?? []).map { $0.int! }
            let sequences = zip(ids, lengths).map { Array($0.prefix($1)) }
            var g = tm.zeroGradients()
            let loss = try tm.causalLMBackward(sequences, labels: sequences, examples: [0, 1, 2], grads: &g)
            let want = Float(try XCTUnwrap(expected["objectives"]?["lm"]?["loss"]?.double))
            XCTAssertEqual(loss, want, accuracy: 1e-4 * max(1, abs(want)), "\(name) lm loss")
            try compare(name, "lm", tm, g, grads, head: false)
        }
    }
}
