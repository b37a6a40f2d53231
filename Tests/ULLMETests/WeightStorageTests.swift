import CULLME
import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// Stored weights (QLoRA-style frozen base: the file's rows, dequantised panel by panel inside every product)
/// and quantized weights (int8 panels with group scales) give bit-identical forward outputs and LoRA
/// gradients to dense float32 weights, for every family, the real Q4_1 SmolLM2 GGUF (llama rotary
/// permutation, Q8_0 embedding) and gemma-3's K-quants, while a stored model holds no copy of its weights.
final class WeightStorageTests: XCTestCase {
    let sequences: [[Int32]] = [[5, 17, 200, 3, 44, 90, 12], [9, 8, 7, 6, 5, 4, 3, 100, 101, 102, 103, 104], [250, 1, 60]]

    func trainingModel(_ model: Model) -> TrainingModel {
        let lora = LoRAModel(config: model.config, rank: 4, alpha: 8, dropout: 0.1, seed: 7)
        for l in lora.adapters.indices { for t in lora.adapters[l].indices {
            let rng = KeyedRandom(rawKey: UInt64(l * 100 + t))
            lora.adapters[l][t].b = (0..<lora.adapters[l][t].b.count).map { (rng.uniform(UInt64($0)) - 0.5) * 0.2 }
        } }
        return TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: 3))
    }

    /// Forward (both attentions, logits) and both objectives' gradients, dense vs stored vs quantized, bit for bit.
    func assertSameResults(_ name: String, path: String, sequences: [[Int32]], file: StaticString = #filePath, line: UInt = #line) throws {
        let dense = try Model.load(path: path, storage: .dense), stored = try Model.load(path: path, storage: .stored)
        let quantized = try Model.load(path: path, storage: .quantized)
        XCTAssertEqual(dense.weightStorage, .dense); XCTAssertEqual(stored.weightStorage, .stored)
        XCTAssertEqual(stored.weightBytes, 0, "\(name): stored weights hold no float32 copy", file: file, line: line)
        XCTAssertGreaterThan(dense.weightBytes, 4 * dense.parameterCount / 2, file: file, line: line)
        for attention in [AttentionMode.causal, .bidirectional] {
            let a = try dense.forward(sequences, attention: attention, wantLogits: true)
            for other in [stored, quantized] {
                let b = try other.forward(sequences, attention: attention, wantLogits: true)
                XCTAssertEqual(a.hidden, b.hidden, "\(name) \(other.weightStorage) \(attention) hidden", file: file, line: line)
                XCTAssertEqual(a.logits, b.logits, "\(name) \(other.weightStorage) \(attention) logits", file: file, line: line)
            }
        }
        var grads: [TrainingModel.Gradients] = []
        for m in [dense, stored, quantized] {
            let tm = trainingModel(m)
            var g = tm.zeroGradients()
            let G = (0..<(sequences.count * tm.head.dim)).map { Float(sin(Double($0) * 0.37)) }
            try tm.embeddingBackward(sequences, examples: Array(sequences.indices), dReps: G, grads: &g)
            _ = try tm.causalLMBackward(sequences, labels: sequences, examples: Array(sequences.indices), grads: &g)
            grads.append(g)
        }
        for i in 1...2 {
            XCTAssertEqual(grads[0].lora.dA, grads[i].lora.dA, "\(name) dA (\(i))", file: file, line: line)
            XCTAssertEqual(grads[0].lora.dB, grads[i].lora.dB, "\(name) dB (\(i))", file: file, line: line)
            XCTAssertEqual(grads[0].head.w1, grads[i].head.w1, "\(name) head (\(i))", file: file, line: line)
        }
        XCTAssertTrue(grads[0].lora.dA.joined().joined().contains { $0 != 0 }, name, file: file, line: line)
    }

    func testTinyFamiliesStoredEqualsDense() throws {
        for name in TrainingGradientTests.families + ["tiny-phi3", "tiny-qwen2", "tiny-llama-linear"] {
            try assertSameResults(name, path: ParityFixtures.root + "/" + name, sequences: sequences)
        }
    }

    func testQuantisedGGUFStoredEqualsDense() throws {
        try assertSameResults("SmolLM2 Q4_1", path: ParityFixtures.smolLM2Path, sequences: [[1, 504, 3458, 314, 260, 1345, 30], [42, 7, 9000]])
        let gemma = DefaultModel.cacheDirectory + "/models/gemma-3-270m-q4_k_m.gguf"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: gemma), "gemma-3-270m not fetched")
        try assertSameResults("gemma-3 Q4_K_M", path: gemma, sequences: [[2, 818, 5279, 529, 7001, 563], [2, 9000, 17]])
    }

    /// The transposed product (backward's dX = dY · W) from dense panels and from stored rows equals the
    /// plain sum in float64 to float32 accuracy, for shapes with partial panels and partial 256-blocks.
    func testTransposedProductMatchesReference() throws {
        let N = 37, K = 300, T = 5
        var w = [Float](repeating: 0, count: N * K)
        for i in w.indices { w[i] = Float(sin(Double(i) * 0.11)) }
        let dY = (0..<(T * N)).map { Float(cos(Double($0) * 0.7)) }
        let dense = PackedMatrix(w, rows: N, cols: K)
        let stored = w.withUnsafeBytes { raw in
            PackedMatrix(storedRows: (0..<N).map { StoredRow(bytes: raw.baseAddress! + $0 * K * 4, type: .f32) }, cols: K)
        }
        var outs: [[Float]] = []
        for m in [dense, stored] {
            var dX = [Float](repeating: 1, count: T * K)
            w.withUnsafeBytes { _ in linearBackwardInput(&dX, dY, m, T: T) }
            outs.append(dX)
        }
        XCTAssertEqual(outs[0], outs[1])
        for t in 0..<T { for k in 0..<K {
            var s = 1.0
            for n in 0..<N { s += Double(dY[t * N + n]) * Double(w[n * K + k]) }
            XCTAssertEqual(Double(outs[0][t * K + k]), s, accuracy: 1e-4)
        } }
    }

    /// The choice from a training config, the C model params (older struct sizes get the default) and names.
    func testStorageFromConfigAndCAPI() throws {
        XCTAssertEqual(WeightStorage(rawValue: "stored"), .stored)
        XCTAssertNil(WeightStorage(rawValue: "fp32"))
        let data = "data:\n  - {file: a.jsonl, instruction: I}\n"
        XCTAssertNil(try TrainConfig.parse(yaml: data).weightStorage)
        XCTAssertEqual(try TrainConfig.parse(yaml: data + "weight_storage: dense\n").weightStorage, .dense)
        XCTAssertEqual(try TrainConfig.parse(yaml: data + "weight_storage: stored\n").weightStorage, .stored)
        XCTAssertNil(try TrainConfig.parse(yaml: data + "weight_storage: auto\n").weightStorage)
        XCTAssertThrowsError(try TrainConfig.parse(yaml: data + "weight_storage: fp8\n"))

        func load(_ p: inout ullme_model_params) -> WeightStorage? {
            var m: OpaquePointer? = nil
            guard capi_model_load(ParityFixtures.root + "/tiny-llama", &p, &m) == Int32(ULLME_OK) else { return nil }
            defer { capi_model_free(m) }
            return try? handle(m).model.weightStorage
        }
        var p = capi_model_default_params()
        XCTAssertEqual(p.weight_storage, 0)
        p.weight_storage = 2
        XCTAssertEqual(load(&p), .stored)
        p.weight_storage = 1
        XCTAssertEqual(load(&p), .dense)
        p.weight_storage = 3
        XCTAssertEqual(load(&p), .quantized)
        p.weight_storage = 7
        XCTAssertNil(load(&p))
        p.weight_storage = 2; p.struct_size = modelParamsSizeV2   // built against the header with adapter_path
        XCTAssertEqual(load(&p), Model.defaultWeightStorage)
    }
}
