import XCTest
@testable import ULLMESwift

/// GradCache: the gradients of a GRL step (CL + DPO + KL) do not depend on the chunk size.
final class GradCacheTests: XCTestCase {
    func makeBatch(B: Int, P: Int, N: Int) -> [GRLTokenizedExample] {
        let rng = KeyedRandom(rawKey: 11)
        var c: UInt64 = 0
        func ids(_ n: Int) -> [Int32] { (0..<n).map { _ in c += 1; return Int32(3 + Int(rng.uniform(c) * 250)) } }
        return (0..<B).map { b in
            let gen = (0..<(P + N)).map { _ in ids(6 + b % 3) }
            let labels = gen.map { g in g.enumerated().map { $0.offset < 3 ? Int32(-100) : $0.element } }
            return GRLTokenizedExample(sequences: (0..<(1 + P + N)).map { _ in ids(4 + b) }, generation: gen,
                              generationLabels: labels, index: 100 + b, label: b)
        }
    }

    func testChunkSizeDoesNotChangeGradients() throws {
        let batch = makeBatch(B: 4, P: 1, N: 2)
        var results: [(GRLStepLosses, TrainingModel.Gradients)] = []
        for chunk in [1, 2, 4] {
            let tm = try makeTinyTrainingModel("tiny-llama")
            var config = GRLLossConfig.grl
            config.chunkSize = chunk
            var grads = tm.zeroGradients()
            let losses = try tm.grlStep(batch, P: 1, N: 2, config: config, grads: &grads)
            results.append((losses, grads))
        }
        let (l0, g0) = results[0]
        XCTAssertGreaterThan(l0.contrastive, 0); XCTAssertNotEqual(l0.generative, 0); XCTAssertGreaterThan(l0.kl, 0)
        func flat(_ g: TrainingModel.Gradients) -> [Float] {
            var out: [Float] = Array(g.lora.dA.joined().joined())
            out += Array(g.lora.dB.joined().joined())
            out += g.head.w1; out += g.head.b1; out += g.head.w2; out += g.head.b2
            return out
        }
        let ref = flat(g0)
        let scale = ref.map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        for (i, (l, g)) in results.enumerated().dropFirst() {
            XCTAssertEqual(l.total, l0.total, accuracy: 1e-5 * abs(l0.total), "chunk variant \(i) loss")
            let d = zip(flat(g), ref).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(d / scale, 1e-4, "chunk variant \(i): max gradient difference \(d) (scale \(scale))")
        }
    }

    func testKLRequiresPreferenceLoss() throws {
        let tm = try makeTinyTrainingModel("tiny-llama")
        var config = GRLLossConfig.grl
        config.gen.kind = .sft
        var grads = tm.zeroGradients()
        XCTAssertThrowsError(try tm.grlStep(makeBatch(B: 2, P: 1, N: 1), P: 1, N: 1, config: config, grads: &grads))
        config.useKL = false
        XCTAssertNoThrow(try tm.grlStep(makeBatch(B: 2, P: 1, N: 1), P: 1, N: 1, config: config, grads: &grads))
    }

    /// The step's gradient is the gradient of its loss, by directional derivatives, for CL and for DPO.
    /// (With KL the target softmax(gen) is detached, as the reference does, so the step's gradient is by
    /// design not the derivative of the total loss; the KL term is checked against PyTorch in TrainBlocksTests.)
    func testGRLGradientMatchesFiniteDifferences() throws {
      for variant in ["cl", "dpo"] {
        let tm = try makeTinyTrainingModel("tiny-qwen2-swa")
        let batch = makeBatch(B: 3, P: 1, N: 2)
        var config = GRLLossConfig.grl
        config.useCL = variant != "dpo"; config.useKL = variant == "grl"; config.useGen = variant != "cl"
        config.chunkSize = 2
        config.contrastive.useMiner = false  // the miner's pair selection is a step function of the reps
        var grads = tm.zeroGradients()
        _ = try tm.grlStep(batch, P: 1, N: 2, config: config, grads: &grads)
        try checkDirectionalDerivatives(variant, tm, grads) {
            var g = tm.zeroGradients()
            return Double(try tm.grlStep(batch, P: 1, N: 2, config: config, grads: &g).total)
        }
      }
    }
}
