import CULLME
import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// The opt-in bf16 inference mode at the model level: which path runs (and saying so), accuracy against
/// transformers on the SmolLM2 parity texts, batch invariance, the forced fallback (bit-identical to exact),
/// training refusing bf16 models, and the C parameter (older struct sizes, bad values).
final class PrecisionTests: XCTestCase {
    let sequences: [[Int32]] = [[5, 17, 200, 3, 44, 90, 12], [9, 8, 7, 6, 5, 4, 3, 100, 101, 102, 103, 104], [250, 1, 60]]
    var tinyLlama: String { ParityFixtures.root + "/tiny-llama" }

    override func tearDown() {
        cullme_gemm_bf16_disable(0)
        cullme_gemm_i8_force_path("auto")
        super.tearDown()
    }

    func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { dot += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y) }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    func testPathsAndNames() throws {
        let exact = try Model.load(path: tinyLlama, precision: .exact)
        XCTAssertEqual(exact.precision, .exact)
        XCTAssertEqual(exact.precisionPath, "exact")
        XCTAssertFalse(exact.usesBF16Weights)
        let fast = try Model.load(path: tinyLlama, precision: .bf16)
        let available = cullme_gemm_bf16_available() != 0
        XCTAssertEqual(fast.precisionPath, available ? "avx512_bf16" : "exact fallback: CPU has no AVX512_BF16")
        XCTAssertEqual(fast.usesBF16Weights, available)
        print("precision bf16 runs: \(fast.precisionPath)")
        if available { XCTAssertLessThan(fast.weightBytes, exact.weightBytes, "bf16 panels are half the size") }
        let stored = try Model.load(path: tinyLlama, storage: .stored, precision: .bf16)
        XCTAssertEqual(stored.precisionPath, "exact fallback: stored weights run the float32 kernels")
        XCTAssertNil(Precision(rawValue: "fp16"))
    }

    /// Forcing "no AVX512_BF16" makes a bf16 load fall back to the exact kernels: bit-identical results.
    func testForcedFallbackIsExact() throws {
        let cpuHasBF16 = cullme_gemm_bf16_available() != 0
        cullme_gemm_bf16_disable(1)
        let fast = try Model.load(path: tinyLlama, precision: .bf16)
        // A CPU without the instructions says so first (the AVX2-only machines).
        XCTAssertEqual(fast.precisionPath, cpuHasBF16 ? "exact fallback: AVX512_BF16 disabled" : "exact fallback: CPU has no AVX512_BF16")
        XCTAssertFalse(fast.usesBF16Weights)
        let exact = try Model.load(path: tinyLlama, precision: .exact)
        for attention in [AttentionMode.causal, .bidirectional] {
            let a = try exact.forward(sequences, attention: attention, wantLogits: true)
            let b = try fast.forward(sequences, attention: attention, wantLogits: true)
            XCTAssertEqual(a.hidden, b.hidden)
            XCTAssertEqual(a.logits, b.logits)
        }
    }

    /// bf16 hidden states stay close to exact, and a sequence gives the same bits alone and in any batch.
    func testBF16CloseToExactAndBatchInvariant() throws {
        let exact = try Model.load(path: tinyLlama, precision: .exact)
        let fast = try Model.load(path: tinyLlama, precision: .bf16)
        let C = exact.config.hiddenSize
        let a = try exact.forward(sequences, attention: .bidirectional, wantLogits: false)
        let b = try fast.forward(sequences, attention: .bidirectional, wantLogits: false)
        for t in 0..<(b.hidden.count / C) {
            XCTAssertGreaterThan(cosine(a.hidden[(t * C)..<((t + 1) * C)], b.hidden[(t * C)..<((t + 1) * C)]), 0.999, "token \(t)")
        }
        for (i, s) in sequences.enumerated() {
            let alone = try fast.forward([s], attention: .bidirectional, wantLogits: false)
            XCTAssertEqual(alone.hidden, Array(b.hidden[(b.offsets[i] * C)..<(b.offsets[i + 1] * C)]), "sequence \(i)")
        }
    }

    /// SmolLM2 (Q4_1 GGUF) embeddings of the parity texts in bf16 mode: cosine >= 0.999 to transformers per vector.
    func testSmolLM2BF16MatchesTransformers() throws {
        let model = try Model.load(path: ParityFixtures.smolLM2Path, precision: .bf16)
        print("SmolLM2 precision bf16 runs: \(model.precisionPath)")
        var worst = 1.0
        for mode in [AttentionMode.causal, .bidirectional] {
            for e in try parityEmbeddings(model, mode) {
                let c = cosine(e.got[...], e.want[...])
                worst = min(worst, c)
                XCTAssertGreaterThanOrEqual(c, 0.999, "\(mode) \(e.text)")
            }
        }
        print("SmolLM2 bf16: min cosine to transformers \(worst)")
    }

    /// Training needs exact weights: a bf16 model is refused with a clear error (also after a fallback).
    func testTrainingRefusesBF16() throws {
        let fast = try Model.load(path: tinyLlama, precision: .bf16)
        let tm = TrainingModel(model: fast, lora: LoRAModel(config: fast.config, rank: 2, alpha: 4, dropout: 0, seed: 1),
                               head: ProjectionHead(dim: fast.config.hiddenSize, seed: 1))
        XCTAssertThrowsError(try TrainingSession(model: tm, settings: OptimizerSettings())) { e in
            XCTAssertTrue("\(e)".contains("precision exact"), "\(e)")
        }
    }

    // MARK: int8

    /// Embeddings of the SmolLM2 parity texts, one call per text, in one precision.
    func parityEmbeddings(_ model: Model, _ mode: AttentionMode) throws -> [(text: String, got: [Float], want: [Float])] {
        let expected = try ParityFixtures.json("smollm2/expected.json")
        let C = model.config.hiddenSize
        return try (expected["texts"]?.array ?? []).map { e in
            var options = EmbedOptions()
            options.instruction = Array((e["instruction"]?.string ?? "").utf8)
            options.isQuery = e["is_query"]?.bool ?? true
            options.attention = mode
            var out = [Float](repeating: 0, count: C)
            _ = try out.withUnsafeMutableBufferPointer {
                try model.embed([Array((e["text"]?.string ?? "").utf8)], options: options, into: $0)
            }
            return (e["text"]?.string ?? "", out, floats(e[mode == .causal ? "causal" : "bidirectional"]))
        }
    }

    /// SmolLM2 (Q4_1 GGUF) in int8 mode: cosine >= 0.999 to transformers per text in both attention modes,
    /// reported per text beside the exact and bf16 modes.
    func testSmolLM2Int8MatchesTransformers() throws {
        let models = try [Precision.exact, .bf16, .int8].map { try Model.load(path: ParityFixtures.smolLM2Path, precision: $0) }
        XCTAssertEqual(models[2].precisionPath, String(cString: cullme_gemm_i8_path()))
        print("SmolLM2 precision int8 runs: \(models[2].precisionPath)")
        for mode in [AttentionMode.causal, .bidirectional] {
            let rows = try models.map { try parityEmbeddings($0, mode) }
            var worst = 1.0
            for i in rows[0].indices {
                let c = rows.map { cosine($0[i].got[...], $0[i].want[...]) }
                print(String(format: "%@ exact %.6f bf16 %.6f int8 %.6f  %@", "\(mode)", c[0], c[1], c[2], String(rows[0][i].text.prefix(40))))
                worst = min(worst, c[2])
                XCTAssertGreaterThanOrEqual(c[2], 0.999, "int8 \(mode) \(rows[0][i].text)")
            }
            print("SmolLM2 int8 \(mode): min cosine to transformers \(worst)")
        }
    }

    /// Every int8 kernel this CPU has (AVX512-VNNI, AVX-VNNI, AVX2, plain C: the AVX2-only emulation) gives the
    /// same bits, and a sequence gives the same bits alone and in a batch.
    func testInt8PathsAgreeAndAreBatchInvariant() throws {
        let model = try Model.load(path: ParityFixtures.smolLM2Path, precision: .int8)
        let best = String(cString: cullme_gemm_i8_path())
        let reference = try model.forward(sequences, attention: .bidirectional, wantLogits: false)
        var ran: [String] = []
        for path in ["avx512_vnni", "avx_vnni", "avx2", "generic"] {
            cullme_gemm_i8_force_path(path)
            guard String(cString: cullme_gemm_i8_path()) == path else { continue }  // not on this CPU
            ran.append(path)
            let r = try model.forward(sequences, attention: .bidirectional, wantLogits: false)
            XCTAssertEqual(r.hidden, reference.hidden, "path \(path) vs \(best)")
        }
        print("int8 paths checked: \(ran)")
        XCTAssertTrue(ran.contains("generic") && ran.contains(best), "\(ran)")
        cullme_gemm_i8_force_path("auto")
        let C = model.config.hiddenSize
        for (i, s) in sequences.enumerated() {
            let alone = try model.forward([s], attention: .bidirectional, wantLogits: false)
            XCTAssertEqual(alone.hidden, Array(reference.hidden[(reference.offsets[i] * C)..<(reference.offsets[i + 1] * C)]), "sequence \(i)")
        }
    }

    /// Weights without an integer form (the tiny HF model's float32 safetensors) run exact, and say so;
    /// training refuses an int8 model.
    func testInt8FallbackAndTrainingRefusal() throws {
        let model = try Model.load(path: tinyLlama, precision: .int8)
        XCTAssertEqual(model.precisionPath, "exact fallback: no linear layer has integer (GGUF-quantised) weights")
        let exact = try Model.load(path: tinyLlama, precision: .exact)
        XCTAssertEqual(try model.forward(sequences, attention: .causal, wantLogits: true).hidden,
                       try exact.forward(sequences, attention: .causal, wantLogits: true).hidden)
        let tm = TrainingModel(model: model, lora: LoRAModel(config: model.config, rank: 2, alpha: 4, dropout: 0, seed: 1),
                               head: ProjectionHead(dim: model.config.hiddenSize, seed: 1))
        XCTAssertThrowsError(try TrainingSession(model: tm, settings: OptimizerSettings())) { e in
            XCTAssertTrue("\(e)".contains("precision int8"), "\(e)")
        }
    }

    /// ullme_model_params.precision (0 default, 1 exact, 2 bf16, 3 int8), reserved0, ullme_model_precision_path, and
    /// the struct of the previous header (up to weight_storage, 40 bytes) still accepted with the default.
    func testCAPI() throws {
        func load(_ p: inout ullme_model_params) -> String? {
            var m: OpaquePointer? = nil
            guard capi_model_load(tinyLlama, &p, &m) == Int32(ULLME_OK) else { return nil }
            defer { capi_model_free(m) }
            var path: UnsafePointer<CChar>? = nil
            XCTAssertEqual(capi_model_precision_path(m, &path), Int32(ULLME_OK))
            var got = ullme_model_params()
            got.struct_size = p.struct_size
            XCTAssertEqual(capi_model_get_params(m, &got), Int32(ULLME_OK))
            XCTAssertEqual(got.precision, p.struct_size == modelParamsSize ? p.precision : 0)
            return path.map { String(cString: $0) }
        }
        var p = capi_model_default_params()
        XCTAssertEqual(p.precision, 0)
        XCTAssertEqual(p.struct_size, modelParamsSize)
        XCTAssertEqual(load(&p), Precision.defaultPrecision.path(storage: .dense))
        p.precision = 1
        XCTAssertEqual(load(&p), "exact")
        p.precision = 2
        XCTAssertEqual(load(&p), String(cString: cullme_gemm_bf16_path()))
        p.precision = 3
        XCTAssertEqual(load(&p), "exact fallback: no linear layer has integer (GGUF-quantised) weights")
        p.precision = 4
        XCTAssertNil(load(&p))
        p.precision = 2; p.reserved0 = 1
        XCTAssertNil(load(&p))
        XCTAssertTrue(String(cString: ullme_last_error()).contains("reserved0"))
        // A caller built against the previous header: 40 bytes, whatever sits in its tail padding.
        p.reserved0 = 0; p.precision = 2; p.struct_size = modelParamsSizeV3
        XCTAssertEqual(load(&p), Precision.defaultPrecision.path(storage: .dense))
        var none: UnsafePointer<CChar>? = nil
        XCTAssertEqual(capi_model_precision_path(nil, &none), Int32(ULLME_E_ARG))
    }
}
