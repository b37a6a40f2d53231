import CULLME
import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// Training with the frozen base's products in bf16 (`base_precision: bf16`): the gradients against the exact
/// path on the real SmolLM2 base, the forced fallback (bit-identical to exact, and saying so), the config key and
/// the C parameter. A short GRL run against the exact one: bindings/python/tests/test_bf16_training.py.
final class BF16TrainingTests: XCTestCase {
    /// Documented tolerance (README, "Training in bf16"): the bf16 LoRA + head gradient of one embedding and one
    /// causal-LM backward differs from the exact one by at most this much, relative in L2 over all parameters
    /// (measured 0.027, cosine 0.99964, on an Intel Xeon 2026-12-07; 0.053, cosine 0.99860, on an AMD Zen 4
    /// 2026-12-08, where the embedding backward alone is 0.053 away and the causal-LM one 0.013), and their cosine
    /// is at least `gradientCosine`.
    static let gradientRelativeError = 0.08, gradientCosine = 0.998

    override func tearDown() {
        cullme_gemm_bf16_disable(0)
        super.tearDown()
    }

    /// LoRA with B away from zero (so the A gradients are not zero too) and no dropout: a fixed function to
    /// differentiate.
    func lora(_ model: Model) -> LoRAModel {
        let lora = LoRAModel(config: model.config, rank: 8, alpha: 16, dropout: 0, seed: 3)
        let rng = KeyedRandom(rawKey: 11)
        var i: UInt64 = 0
        for l in lora.adapters.indices { for t in lora.adapters[l].indices { for j in lora.adapters[l][t].b.indices {
            lora.adapters[l][t].b[j] = (rng.uniform(i) * 2 - 1) * 0.02; i += 1
        } } }
        return lora
    }

    /// Every trainable gradient after one embedding backward (bidirectional, mean pooling) and one causal-LM
    /// backward on the same texts.
    func gradients(_ tm: TrainingModel, _ sequences: [[Int32]]) throws -> [Float] {
        var grads = tm.zeroGradients()
        let d = tm.head.dim
        let rng = KeyedRandom(rawKey: 5)
        let dReps = (0..<(sequences.count * d)).map { rng.uniform(UInt64($0)) * 2 - 1 }
        try tm.embeddingBackward(sequences, examples: Array(sequences.indices), dReps: dReps, grads: &grads)
        _ = try tm.causalLMBackward(sequences, labels: sequences, examples: Array(sequences.indices), grads: &grads)
        return TrainingSession.flatten(grads).flatMap { $0 }
    }

    func texts(_ model: Model) throws -> [[Int32]] {
        let tok = try XCTUnwrap(model.tokenizer)
        return ["The lighthouse keeper climbed the spiral stairs every evening to light the great lamp.",
                "A function that returns the greatest common divisor of two integers.",
                "Rain is expected over the northern hills tomorrow, clearing by the afternoon."]
            .map { tok.encode(Array($0.utf8), addSpecial: true) }
    }

    func testGradientsAgreeWithExact() throws {
        try XCTSkipIf(cullme_gemm_bf16_available() == 0,
                      "base_precision bf16 needs AVX512_BF16 (\(String(cString: cullme_gemm_bf16_path()))); testForcedFallbackIsExact covers this CPU")
        let model = try Model.load(path: ParityFixtures.smolLM2Path, precision: .exact)
        let lora = lora(model), sequences = try texts(model)
        let exact = TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: 1))
        let fast = TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: 1))
        fast.basePrecision = .bf16
        XCTAssertEqual(fast.basePrecisionPath, "avx512_bf16")
        XCTAssertEqual(exact.basePrecisionPath, "exact")
        let g = try gradients(exact, sequences), h = try gradients(fast, sequences)
        var diff = 0.0, norm = 0.0, dot = 0.0, normH = 0.0
        for (x, y) in zip(g, h) {
            diff += Double(x - y) * Double(x - y); norm += Double(x) * Double(x)
            dot += Double(x) * Double(y); normH += Double(y) * Double(y)
        }
        let relative = (diff / norm).squareRoot(), cosine = dot / (norm * normH).squareRoot()
        print("bf16 training gradients vs exact (SmolLM2, \(g.count) parameters): relative L2 error \(relative), cosine \(cosine)")
        XCTAssertGreaterThan(norm, 0)
        XCTAssertLessThan(relative, Self.gradientRelativeError)
        XCTAssertGreaterThan(cosine, Self.gradientCosine)
        XCTAssertGreaterThan(relative, 0, "bf16 products must differ from exact ones somewhere")
    }

    /// Forcing "no AVX512_BF16": base_precision bf16 keeps the exact products, says why, and gives the exact bits.
    func testForcedFallbackIsExact() throws {
        let cpuHasBF16 = cullme_gemm_bf16_available() != 0
        cullme_gemm_bf16_disable(1)
        let model = try Model.load(path: ParityFixtures.root + "/tiny-llama", precision: .exact)
        let lora = lora(model)
        let sequences: [[Int32]] = [[5, 17, 200, 3, 44, 90, 12], [9, 8, 7, 6, 5, 4, 3, 100]]
        let exact = TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: 1))
        let fallback = TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: 1))
        fallback.basePrecision = .bf16
        XCTAssertEqual(fallback.basePrecisionPath,
                       cpuHasBF16 ? "exact fallback: AVX512_BF16 disabled" : "exact fallback: CPU has no AVX512_BF16")
        XCTAssertEqual(try gradients(exact, sequences), try gradients(fallback, sequences))
    }

    /// The config key and the C parameter reach the session; int8 is no training precision.
    func testConfigAndCParameter() throws {
        let yaml = "model_name_or_path: m.gguf\nbase_precision: bf16\ndata:\n  - file: d.jsonl\n    instruction: Retrieve.\n"
        XCTAssertEqual(try TrainConfig.parse(yaml: yaml).basePrecision, .bf16)
        XCTAssertEqual(try TrainConfig.parse(yaml: "model_name_or_path: m.gguf\ndata:\n  - file: d.jsonl\n    instruction: Retrieve.\n").basePrecision, .exact)
        XCTAssertThrowsError(try TrainConfig.parse(yaml: "model_name_or_path: m.gguf\nbase_precision: int8\ndata:\n  - file: d.jsonl\n    instruction: Retrieve.\n"))

        var mp = capi_model_default_params()
        var m: OpaquePointer? = nil
        XCTAssertEqual(ParityFixtures.root.appending("/tiny-llama").withCString { capi_model_load($0, &mp, &m) }, Int32(ULLME_OK))
        defer { capi_model_free(m) }
        func path(_ precision: ullme_precision) -> String? {
            var p = capi_trainer_default_params()
            p.base_precision = Int32(precision.rawValue)
            var t: OpaquePointer? = nil
            guard capi_trainer_new(m, &p, &t) == Int32(ULLME_OK) else { return nil }
            defer { capi_trainer_free(t) }
            var s: UnsafePointer<CChar>? = nil
            XCTAssertEqual(capi_trainer_base_precision_path(t, &s), Int32(ULLME_OK))
            return s.map { String(cString: $0) }
        }
        XCTAssertEqual(path(ULLME_PRECISION_DEFAULT), "exact")
        XCTAssertEqual(path(ULLME_PRECISION_EXACT), "exact")
        XCTAssertEqual(path(ULLME_PRECISION_BF16), cullme_gemm_bf16_available() != 0 ? "avx512_bf16" : String(cString: cullme_gemm_bf16_path()))
        XCTAssertNil(path(ULLME_PRECISION_INT8))
        XCTAssertTrue(String(cString: ullme_last_error()).contains("base_precision"))
        XCTAssertEqual(capi_trainer_base_precision_path(nil, nil), Int32(ULLME_E_ARG))
    }
}
