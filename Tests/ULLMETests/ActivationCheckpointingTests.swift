import CULLME
import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// Activation checkpointing (recompute each layer in backward from its recorded input) must give the same
/// gradients as the full tape, bit for bit, while the tape holds only n_layers × [T, C] (+ [T, C]).
final class ActivationCheckpointingTests: XCTestCase {
    let sequences: [[Int32]] = [[5, 17, 200, 3, 44, 90, 12], [9, 8, 7, 6, 5, 4, 3, 100, 101, 102, 103, 104], [250, 1, 60]]

    /// Largest |a − b| / max(|a|, |b|, tiny) over every LoRA and head gradient.
    func maxRelativeDiff(_ a: TrainingModel.Gradients, _ b: TrainingModel.Gradients) -> Float {
        var worst: Float = 0
        func cmp(_ x: [Float], _ y: [Float]) {
            XCTAssertEqual(x.count, y.count)
            for (u, v) in zip(x, y) where u != v { worst = max(worst, abs(u - v) / max(abs(u), abs(v), 1e-30)) }
        }
        for l in a.lora.dA.indices { for t in a.lora.dA[l].indices { cmp(a.lora.dA[l][t], b.lora.dA[l][t]); cmp(a.lora.dB[l][t], b.lora.dB[l][t]) } }
        cmp(a.head.w1, b.head.w1); cmp(a.head.w2, b.head.w2); cmp(a.head.b1, b.head.b1); cmp(a.head.b2, b.head.b2)
        return worst
    }

    func gradientNorm(_ g: TrainingModel.Gradients) -> Double {
        var s = 0.0
        for l in g.lora.dA.indices { for t in g.lora.dA[l].indices {
            s += g.lora.dA[l][t].reduce(0.0) { $0 + Double($1 * $1) } + g.lora.dB[l][t].reduce(0.0) { $0 + Double($1 * $1) }
        } }
        return s.squareRoot()
    }

    func testGradientsAreBitIdenticalWithCheckpointing() throws {
        for name in TrainingGradientTests.families {
            let tm = try makeTinyTrainingModel(name)
            let C = tm.model.config.hiddenSize, nL = tm.model.config.nLayers, T = sequences.reduce(0) { $0 + $1.count }
            let d = tm.head.dim
            let G = (0..<(3 * d)).map { Float(sin(Double($0) * 0.37)) }
            let labels = sequences.map { s in s.enumerated().map { $0.offset == 2 ? -100 : $0.element } }
            var runs: [(TrainingModel.Gradients, [Float], Float, Int)] = []
            for on in [false, true] {
                tm.activationCheckpointing = on
                var g = tm.zeroGradients()
                let reps = try tm.embeddingBackward(sequences, examples: [0, 1, 2], dReps: G, grads: &g)
                let embedTape = tm.lastTapeBytes
                let loss = try tm.causalLMBackward(sequences, labels: labels, examples: [3, 4, 5], grads: &g)
                runs.append((g, reps, loss, embedTape))
            }
            let (off, on) = (runs[0], runs[1])
            XCTAssertGreaterThan(gradientNorm(off.0), 0, name)
            XCTAssertEqual(maxRelativeDiff(off.0, on.0), 0, "\(name): gradients differ with checkpointing")
            XCTAssertEqual(off.1, on.1, name)
            XCTAssertEqual(off.2, on.2, name)
            // The checkpointed tape holds each layer's input and the final residual stream, nothing else.
            XCTAssertEqual(on.3, (nL + 1) * T * C * 4, name)
            XCTAssertGreaterThan(off.3, 5 * on.3, name)
        }
    }

    /// The switch is the YAML key (and HF's name for it) and a C trainer param; an older struct_size still works.
    func testSwitchFromConfigAndCAPI() throws {
        let data = "data:\n  - {file: a.jsonl, instruction: I}\n"
        XCTAssertFalse(try TrainConfig.parse(yaml: data).activationCheckpointing)
        let c = try TrainConfig.parse(yaml: data + "activation_checkpointing: true\n")
        XCTAssertTrue(c.activationCheckpointing)
        XCTAssertTrue(c.warnings.isEmpty, "\(c.warnings)")
        XCTAssertTrue(try TrainConfig.parse(yaml: data + "gradient_checkpointing: yes\n").activationCheckpointing)
        XCTAssertThrowsError(try TrainConfig.parse(yaml: data + "activation_checkpointing: 3\n"))
        XCTAssertTrue(c.activationCheckpointing)

        var m: OpaquePointer? = nil
        XCTAssertEqual(capi_model_load(ParityFixtures.root + "/tiny-llama", nil, &m), Int32(ULLME_OK))
        defer { capi_model_free(m) }
        var p = capi_trainer_default_params()
        XCTAssertEqual(p.activation_checkpointing, 0)
        func session(_ p: inout ullme_trainer_params) throws -> TrainingModel? {
            var t: OpaquePointer? = nil
            guard capi_trainer_new(m, &p, &t) == Int32(ULLME_OK) else { return nil }
            defer { capi_trainer_free(t) }
            return try trainer(t).session.model
        }
        p.activation_checkpointing = 1
        XCTAssertEqual(try session(&p)?.activationCheckpointing, true)
        p.activation_checkpointing = 2
        XCTAssertNil(try session(&p))
        p = capi_trainer_default_params(); p.base_precision = 3  // int8: not a training precision
        XCTAssertNil(try session(&p))
        // A caller built against the first header (struct ends after is_cosine_annealing) gets the default.
        p = capi_trainer_default_params(); p.activation_checkpointing = 1; p.struct_size = trainerParamsSizeV1
        XCTAssertEqual(trainerParamsSizeV1, 80)
        XCTAssertEqual(try session(&p)?.activationCheckpointing, false)
    }
}
