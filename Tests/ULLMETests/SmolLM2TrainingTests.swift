import XCTest
@testable import ULLMESwift

/// Training on the real SmolLM2 GGUF base (quantised, dequantised at load): 20 LoRA steps of causal LM
/// loss on a fixed text lower the loss by at least 10 %.
final class SmolLM2TrainingTests: XCTestCase {
    func testTwentyLoRAStepsLowerTheLoss() throws {
        let model = try Model.load(path: ParityFixtures.smolLM2Path)
        let tok = try XCTUnwrap(model.tokenizer)
        let text = "The lighthouse keeper climbed the spiral stairs every evening to light the great lamp, so that ships at sea could find the harbour."
        let ids = tok.encode(Array(text.utf8), addSpecial: true)
        let lora = LoRAModel(config: model.config, rank: 8, alpha: 16, dropout: 0, seed: 1)
        let tm = TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: 1))
        var settings = OptimizerSettings()
        settings.learningRate = 1e-3
        settings.warmupProportion = 0
        settings.stepsPerEpoch = 20
        let session = try TrainingSession(model: tm, settings: settings)
        var losses: [Float] = []
        for _ in 0..<20 {
            losses.append(try tm.causalLMBackward([ids], labels: [ids], examples: [0], grads: &session.grads))
            session.optimizerStep()
        }
        print("SmolLM2 LoRA causal LM losses: \(losses.map { ($0 * 1000).rounded() / 1000 })")
        XCTAssertLessThanOrEqual(losses.last!, 0.9 * losses.first!, "loss \(losses.first!) -> \(losses.last!)")
    }
}
