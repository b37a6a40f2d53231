import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// A training model with non-zero B (so A gets gradients) and dropout on, from fixed seeds.
func makeTinyTrainingModel(_ name: String, dropout: Float = 0.1) throws -> TrainingModel {
    let model = try Model.load(path: ParityFixtures.root + "/" + name)
    let lora = LoRAModel(config: model.config, rank: 4, alpha: 8, dropout: dropout, seed: 7)
    for l in lora.adapters.indices { for t in lora.adapters[l].indices {
        let rng = KeyedRandom(rawKey: UInt64(l * 100 + t))
        lora.adapters[l][t].b = (0..<lora.adapters[l][t].b.count).map { (rng.uniform(UInt64($0)) - 0.5) * 0.2 }
    } }
    return TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: 3))
}

/// The decoder backward pass against finite differences of the forward pass, for every family.
final class TrainingGradientTests: XCTestCase {
    static let families = ["tiny-llama", "tiny-llama-rope", "tiny-mistral", "tiny-qwen2-swa", "tiny-phi", "tiny-phi3-longrope",
                           "tiny-gemma2", "tiny-gemma3"]

    let sequences: [[Int32]] = [[5, 17, 200, 3, 44, 90, 12], [9, 8, 7, 6, 5, 4, 3, 100, 101, 102, 103, 104], [250, 1, 60]]

    func testEmbeddingGradientsMatchFiniteDifferences() throws {
        for name in Self.families {
            let tm = try makeTinyTrainingModel(name)
            let d = tm.head.dim
            let G = (0..<(3 * d)).map { Float(sin(Double($0) * 0.37)) }
            func loss() throws -> Double {
                let reps = try tm.encode(sequences, examples: [0, 1, 2]).projected
                return zip(reps, G).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            }
            var grads = tm.zeroGradients()
            try tm.embeddingBackward(sequences, examples: [0, 1, 2], dReps: G, grads: &grads)
            try checkDirectionalDerivatives(name, tm, grads, loss)
        }
    }

    func testEmptySequenceIsAnErrorNotACrash() throws {
        let tm = try makeTinyTrainingModel("tiny-llama")
        var g = tm.zeroGradients()
        XCTAssertThrowsError(try tm.causalLMBackward([[5, 6, 7], []], labels: [[5, 6, 7], []], examples: [0, 1], grads: &g))
    }

    func testCausalLMGradientsMatchFiniteDifferences() throws {
        for name in Self.families {
            let tm = try makeTinyTrainingModel(name)
            let labels = sequences.map { s in s.enumerated().map { $0.offset == 2 ? -100 : $0.element } }
            func loss() throws -> Double {
                var g = tm.zeroGradients()
                return Double(try tm.causalLMBackward(sequences, labels: labels, examples: [0, 1, 2], grads: &g))
            }
            var grads = tm.zeroGradients()
            _ = try tm.causalLMBackward(sequences, labels: labels, examples: [0, 1, 2], grads: &grads)
            try checkDirectionalDerivatives(name + " lm", tm, grads, loss)
        }
    }

}

    /// Directional derivatives: for a random ±1 direction u over every LoRA A and B (and, separately, for the
/// gradient direction itself), (L(θ + hu) − L(θ − hu)) / 2h must equal Σ g·u. Summing over all
/// parameters gives a signal far above float32 noise, so a wrong term anywhere shows.
func checkDirectionalDerivatives(_ name: String, _ tm: TrainingModel, _ grads: TrainingModel.Gradients,
                            _ loss: () throws -> Double) throws {
    let layers = tm.lora.adapters.indices, targets = tm.lora.targets.indices
    var gradNorm2 = 0.0
    for l in layers { for t in targets {
        gradNorm2 += grads.lora.dA[l][t].reduce(0.0) { $0 + Double($1 * $1) }
        gradNorm2 += grads.lora.dB[l][t].reduce(0.0) { $0 + Double($1 * $1) }
    } }
    let gradNorm = gradNorm2.squareRoot()
    XCTAssertGreaterThan(gradNorm, 1e-6, "\(name): all LoRA gradients are zero")
    let rng = KeyedRandom(rawKey: 99)
    for direction in ["random", "gradient"] {
        // u: ±1 per entry (random) or g / |g| (gradient).
        func u(_ l: Int, _ t: Int, _ isA: Bool, _ i: Int) -> Float {
            if direction == "gradient" { return Float(Double(isA ? grads.lora.dA[l][t][i] : grads.lora.dB[l][t][i]) / gradNorm) }
            return rng.uniform(UInt64(((l * 64 + t) * 2 + (isA ? 1 : 0)) * 1_000_000 + i)) < 0.5 ? -1 : 1
        }
        var analytic = 0.0
        for l in layers { for t in targets {
            for i in grads.lora.dA[l][t].indices { analytic += Double(grads.lora.dA[l][t][i] * u(l, t, true, i)) }
            for i in grads.lora.dB[l][t].indices { analytic += Double(grads.lora.dB[l][t][i] * u(l, t, false, i)) }
        } }
        func shift(_ h: Float) {
            for l in layers { for t in targets {
                for i in tm.lora.adapters[l][t].a.indices { tm.lora.adapters[l][t].a[i] += h * u(l, t, true, i) }
                for i in tm.lora.adapters[l][t].b.indices { tm.lora.adapters[l][t].b[i] += h * u(l, t, false, i) }
            } }
        }
        func central(_ eps: Float) throws -> Double {
            shift(eps); let up = try loss()
            shift(-2 * eps); let down = try loss()
            shift(eps)
            return (up - down) / Double(2 * eps)
        }
        func richardson(_ h: Float) throws -> Double { (4 * (try central(h / 2)) - (try central(h))) / 3 }
        // The step where two Richardson estimates (h, h/2) agree best: large steps carry truncation error
        // (curvature), small ones the float32 rounding of the loss, and where the balance lies depends on the
        // model and on the CPU's GEMM kernels.
        var numeric = 0.0, spread = Double.infinity
        for h: Float in direction == "gradient" ? [1e-2] : [1e-3, 5e-4, 2e-4] {
            let coarse = try richardson(h), fine = try richardson(h / 2)
            if abs(coarse - fine) < spread { spread = abs(coarse - fine); numeric = fine }
        }
        // Relative to the derivative's expected size: along a random ±1 direction Σ g·u has rms |g|, and when
        // it falls far below that by chance (tiny-mistral's embedding: 0.33 against |g| = 7.5), the float32
        // noise of the loss, not the gradient, sets the digits left.
        let rel = abs(numeric - analytic) / max(abs(numeric), abs(analytic), direction == "random" ? gradNorm : 0)
        XCTAssertLessThan(rel, 1e-2, "\(name) \(direction) direction: numeric \(numeric) analytic \(analytic)")
    }
}
