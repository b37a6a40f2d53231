import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// The config-key table is the one source of the YAML keys, their defaults and their documentation.
final class TrainConfigKeysTests: XCTestCase {
    let data = "data:\n  - {file: a.jsonl, instruction: I}\n"

    func testEveryNameIsUnique() {
        let names = TrainConfig.keys.flatMap(\.names)
        XCTAssertEqual(names.count, Set(names).count, "a key or alias is listed twice")
    }

    /// Writing each documented default back as YAML reads back the same default: the table's defaults are
    /// valid values of their keys and are the struct's defaults.
    func testDocumentedDefaultsReadBackAsThemselves() throws {
        let d = TrainConfig()
        for k in TrainConfig.keys where k.noEffect == nil && k.names[0] != "data" {
            let text = k.defaultText(d)
            let yaml = data + (k.names[0] == "encoder_lora_target_modules" && text != "all" ? "\(k.names[0]): [\(text)]\n"
                                                                                              : "\(k.names[0]): \(text)\n")
            let c = try TrainConfig.parse(yaml: yaml)
            XCTAssertEqual(k.defaultText(c), text, k.names[0])
            XCTAssertEqual(c.warnings, [], k.names[0])
        }
    }

    /// Every alias sets what its key sets.
    func testAliasesSetTheSameSetting() throws {
        let values = ["encoder_name_or_path": "m.gguf", "checkpoint_dir": "out", "log_interval": "7", "warmup_proportion": "0.2",
                      "gradient_checkpointing": "true", "lora_r": "4", "lora_dropout": "0.3", "lora_target_modules": "[q_proj]"]
        for k in TrainConfig.keys where k.names.count > 1 {
            for alias in k.names.dropFirst() {
                let value = try XCTUnwrap(values[alias], "no test value for \(alias)")
                let a = try TrainConfig.parse(yaml: data + "\(k.names[0]): \(value)\n")
                let b = try TrainConfig.parse(yaml: data + "\(alias): \(value)\n")
                XCTAssertEqual(k.defaultText(a), k.defaultText(b), alias)
                XCTAssertNotEqual(k.defaultText(b), k.defaultText(TrainConfig()), "\(alias) had no effect")
            }
        }
    }

    func testDocumentationIsTheGeneratedTable() throws {
        let root = ParityFixtures.root.replacingOccurrences(of: "/Tests/fixtures", with: "")
        let doc = try String(contentsOfFile: root + "/docs/training-config.md", encoding: .utf8)
        XCTAssertTrue(doc.contains(TrainConfig.keyTable),
                      "docs/training-config.md is out of date: regenerate it with `make docs-config`")
    }

    /// The C trainer's defaults are the config's.
    func testCDefaultsAreTheConfigDefaults() {
        let p = capi_trainer_default_params(), c = TrainConfig()
        XCTAssertEqual(Int(p.lora_rank), c.loraRank); XCTAssertEqual(p.lora_alpha, c.loraAlpha)
        XCTAssertEqual(p.lora_dropout, c.loraDropout); XCTAssertEqual(p.seed, c.seed)
        XCTAssertEqual(p.learning_rate, c.optimizer.learningRate); XCTAssertEqual(p.min_learning_rate, c.optimizer.minLearningRate)
        XCTAssertEqual(p.warmup_proportion, c.optimizer.warmupProportion); XCTAssertEqual(p.grad_clip, c.optimizer.gradClip)
        XCTAssertEqual(Int(p.max_epochs), c.optimizer.maxEpochs); XCTAssertEqual(p.is_cosine_annealing != 0, c.optimizer.cosineAnnealing)
        XCTAssertEqual(p.activation_checkpointing != 0, c.activationCheckpointing)
    }
}
