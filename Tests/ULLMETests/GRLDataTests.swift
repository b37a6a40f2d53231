import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// GRL training data: JSONL loading, the batch sampler, text formats, the YAML config.
final class GRLDataTests: XCTestCase {

    // MARK: JSONL

    func testMalformedLinesReportedWithFileAndLine() throws {
        let text = """
        {"query": "q1", "positive": ["p1"], "negative": ["n1", "n2"]}
        not json
        {"query": "q3", "positive": [], "negative": ["n"]}

        {"query": "q5", "positive": ["p"], "negative": "n"}
        ["a list"]
        {"positive": ["p"], "negative": ["n"]}
        {"query": "q8", "positive": ["p", 3], "negative": ["n"]}
        {"query": "q9", "positive": ["p9"], "negative": ["n9"], "cluster": 4, "id": "x"}\r
        {"query": "", "positive": ["p"], "negative": ["n"]}
        """
        let bytes = Array(text.utf8) + [0x0A, 0xFF, 0xFE, 0x0A]  // line 11: invalid UTF-8
        let ds = try GRLDataset.parse(jsonl: bytes, file: "t.jsonl", name: "t", instruction: "I", malformed: .skip)
        XCTAssertEqual(ds.examples.map(\.query), ["q1", "q9"])
        XCTAssertEqual(ds.examples.map(\.line), [1, 9])
        XCTAssertEqual(ds.examples[1].cluster, .int(4))
        XCTAssertEqual(ds.skipped.map(\.description), [
            "t.jsonl:2: invalid JSON",
            "t.jsonl:3: \"positive\" is empty (at least one is needed)",
            "t.jsonl:5: \"negative\" must be a list of strings",
            "t.jsonl:6: not a JSON object",
            "t.jsonl:7: missing \"query\"",
            "t.jsonl:8: \"positive\"[1] must be a string",
            "t.jsonl:10: \"query\" is empty",
            "t.jsonl:11: not valid UTF-8",
        ])
        XCTAssertThrowsError(try GRLDataset.parse(jsonl: bytes, file: "t.jsonl", name: "t", instruction: "I", malformed: .fail)) {
            XCTAssertEqual($0 as? ULLMEError, .format("t.jsonl:2: invalid JSON"))
        }
        // From a file: the path is in the message; a file with no valid line is an error.
        let dir = try makeTempDir("grl")
        try writeFile(dir + "/a.jsonl", "{\"query\": \"q\", \"positive\": [\"p\"]}\n")
        XCTAssertThrowsError(try GRLDataset.load(path: dir + "/a.jsonl", instruction: "I")) {
            XCTAssertEqual($0 as? ULLMEError, .format("\(dir)/a.jsonl:1: missing \"negative\""))
        }
        XCTAssertThrowsError(try GRLDataset.load(path: dir + "/a.jsonl", instruction: "I", malformed: .skip)) {
            XCTAssertEqual($0 as? ULLMEError, .format("\(dir)/a.jsonl: no valid examples (1 malformed lines skipped)"))
        }
        XCTAssertThrowsError(try GRLDataset.load(path: dir + "/missing.jsonl", instruction: "I"))
        XCTAssertEqual(GRLDataset.defaultName("data/grl/wordnet/train.jsonl"), "wordnet/train")
    }

    func testCommittedTinyWordNetSetLoads() throws {
        let ds = try GRLDataset.load(path: packageRoot + "/data/grl/wordnet-tiny/train.jsonl", instruction: "Define the word as used.")
        XCTAssertEqual(ds.count, 241)
        XCTAssertTrue(ds.skipped.isEmpty)
        XCTAssertTrue(ds.examples.allSatisfy { !$0.positives.isEmpty && !$0.negatives.isEmpty })
    }

    /// The full WordNet set through the example config (`make wordnet-data` writes it; skipped without it).
    func testExampleConfigDataLoadsAndBatches() throws {
        let path = packageRoot + "/data/grl/wordnet/train.jsonl"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) missing: run make wordnet-data") }
        var c = try TrainConfig.load(path: packageRoot + "/examples/grl-wordnet.yaml")
        c.data[0].file = path
        let t0 = ContinuousClock.now
        let ds = try c.loadDatasets()
        let sampler = try c.makeSampler(ds)
        let batches = sampler.batchIndices(epoch: 0)
        let first = sampler.makeBatch(epoch: 0, step: 0, indices: batches[0])
        print("WordNet: \(ds[0].count) examples, \(sampler.stepsPerEpoch) steps/epoch, loaded and planned in \(ContinuousClock.now - t0)")
        XCTAssertTrue(ds[0].skipped.isEmpty)
        XCTAssertGreaterThan(ds[0].count, 40000)
        XCTAssertEqual(sampler.stepsPerEpoch, ds[0].count / 16)
        XCTAssertEqual(first.count, 16)
        XCTAssertEqual(first.positivesPerExample, 1)
        XCTAssertEqual(first.negativesPerExample, 1)
    }

    // MARK: sampler

    func makeData(_ sizes: [Int], pos: Int = 3, neg: Int = 5) -> [GRLDataset] {
        sizes.enumerated().map { d, n in
            GRLDataset(name: "d\(d)", instruction: "inst\(d)", examples: (0..<n).map { i in
                GRLExample(query: "q\(d).\(i)", positives: (0..<pos).map { "p\(d).\(i).\($0)" },
                           negatives: (0..<neg).map { "n\(d).\(i).\($0)" })
            })
        }
    }

    func testSamplerDeterministicAndEpochsDiffer() throws {
        let data = makeData([37, 20, 9])
        let a = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 7)
        let b = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 7)
        XCTAssertEqual(a.batches(epoch: 0), b.batches(epoch: 0))
        XCTAssertEqual(a.batches(epoch: 3), b.batches(epoch: 3))
        XCTAssertEqual(a.batch(epoch: 2, step: 5), a.batches(epoch: 2)[5])
        XCTAssertNotEqual(a.batchIndices(epoch: 0), a.batchIndices(epoch: 1))
        let c = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 8)
        XCTAssertNotEqual(a.batchIndices(epoch: 0), c.batchIndices(epoch: 0))
        // Same example, different epochs: its sampled positives/negatives change somewhere.
        func sampled(_ e: Int) -> [Int: [String]] {
            Dictionary(uniqueKeysWithValues: a.batches(epoch: e).flatMap(\.examples).map { ($0.index, $0.positives + $0.negatives) })
        }
        let s0 = sampled(0), s1 = sampled(1)
        XCTAssertTrue(s0.keys.contains { s1[$0] != nil && s0[$0] != s1[$0] })
        // Unshuffled: natural order.
        let u = try GRLBatchSampler(datasets: makeData([8]), batchSize: 4, seed: 1, shuffle: false)
        XCTAssertEqual(u.batchIndices(epoch: 5), [[0, 1, 2, 3], [4, 5, 6, 7]])
    }

    func testBatchesComeFromOneDatasetAndLeftoversMixLikeTheReference() throws {
        let data = makeData([37, 20, 9])
        // drop (drop_last=True): 9 + 5 + 2 = 16 full batches, every one from one data set.
        let drop = try GRLBatchSampler(datasets: data, batchSize: 4, seed: 3, leftovers: .drop)
        XCTAssertEqual(drop.stepsPerEpoch, 16)
        for e in 0..<3 {
            let bs = drop.batches(epoch: e)
            XCTAssertEqual(bs.count, 16)
            for b in bs {
                XCTAssertEqual(b.count, 4)
                let d = try XCTUnwrap(b.dataset)
                XCTAssertTrue(b.examples.allSatisfy { $0.dataset == d && $0.instruction == "inst\(d)" })
                XCTAssertTrue(b.indices.allSatisfy { $0 >= drop.offsets[d] && $0 < drop.offsets[d] + data[d].count })
            }
            let all = bs.flatMap(\.indices)
            XCTAssertEqual(Set(all).count, all.count, "an example twice in one epoch")
        }
        // mix (the reference's drop_last=False): the leftovers 1 + 0 + 1 = 2 < 4 give no extra batch here;
        // with B = 8: full 4 + 2 + 1 = 7, leftovers 5 + 4 + 1 = 10 -> one mixed batch, 2 dropped.
        let mix = try GRLBatchSampler(datasets: data, batchSize: 8, seed: 3)
        XCTAssertEqual(mix.stepsPerEpoch, 8)
        let bs = mix.batches(epoch: 0)
        XCTAssertEqual(bs.count, 8)
        XCTAssertEqual(bs.filter { $0.dataset == nil }.count, 1)
        let all = bs.flatMap(\.indices)
        XCTAssertEqual(Set(all).count, 64)
        let mixed = bs.first { $0.dataset == nil }!
        XCTAssertTrue(mixed.examples.allSatisfy { $0.instruction == "inst\($0.dataset)" })
        // Batches larger than the data: a clear error.
        XCTAssertThrowsError(try GRLBatchSampler(datasets: makeData([3]), batchSize: 4, seed: 1))
    }

    func testClustersKeepBatchesTogether() throws {
        var ds = makeData([12])[0]
        for i in ds.examples.indices { ds.examples[i].cluster = .int(i % 3) }  // clusters of 4
        let s = try GRLBatchSampler(datasets: [ds], batchSize: 4, seed: 9)
        for b in s.batches(epoch: 1) {
            XCTAssertEqual(Set(b.indices.map { $0 % 3 }).count, 1, "a batch spans clusters: \(b.indices)")
        }
    }

    func testLabelsUniqueAndCounts() throws {
        let data = [GRLDataset(name: "a", instruction: "A", examples: [
            GRLExample(query: "x", positives: ["p1", "p2", "p3"], negatives: ["n1", "n2", "n3", "n4"]),
            GRLExample(query: "y", positives: ["p1"], negatives: ["n1", "n2"]),
            GRLExample(query: "z", positives: ["p1", "p2"], negatives: ["n1", "n2", "n3"]),
            GRLExample(query: "w", positives: ["p1", "p2"], negatives: ["n1", "n2", "n3"]),
        ]), GRLDataset(name: "b", instruction: "B", examples: makeData([8], pos: 4, neg: 6)[0].examples)]
        // Reference: P = batch minimum of min(count, pos_per_sample), no replacement.
        let ref = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 1)
        for e in 0..<4 {
            let bs = ref.batches(epoch: e)
            let labels = bs.flatMap(\.labels)
            XCTAssertEqual(Set(labels).count, 12)
            XCTAssertEqual(Set(labels), Set(0..<12))
            for b in bs {
                XCTAssertEqual(b.labels, b.indices)
                let expectP = b.dataset == 0 ? 1 : 2, expectN = b.dataset == 0 ? 2 : 3
                XCTAssertEqual(b.positivesPerExample, expectP)
                XCTAssertEqual(b.negativesPerExample, expectN)
                for x in b.examples {
                    XCTAssertEqual(x.positives.count, expectP)
                    XCTAssertEqual(x.negatives.count, expectN)
                    XCTAssertEqual(Set(x.positives).count, expectP, "no replacement")
                    XCTAssertEqual(Set(x.negatives).count, expectN, "no replacement")
                    let src = data[x.dataset].examples[x.index - ref.offsets[x.dataset]]
                    XCTAssertEqual(x.query, src.query)
                    XCTAssertTrue(Set(x.positives).isSubset(of: src.positives))
                    XCTAssertTrue(Set(x.negatives).isSubset(of: src.negatives))
                }
            }
        }
        // With replacement: always the requested counts.
        let rep = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 1,
                                      shortfall: .withReplacement)
        for b in rep.batches(epoch: 0) {
            XCTAssertEqual(b.positivesPerExample, 2)
            XCTAssertEqual(b.negativesPerExample, 3)
            for x in b.examples {
                XCTAssertEqual(x.positives.count, 2)
                XCTAssertEqual(x.negatives.count, 3)
                if x.query == "y" { XCTAssertEqual(x.positives, ["p1", "p1"]) }
            }
        }
    }

    // MARK: formats

    func testTextFormats() throws {
        XCTAssertEqual(GRLTextFormat.query(instruction: "Find it.", text: "cat"), "Find it.\ncat")
        XCTAssertEqual(GRLTextFormat.query(instruction: "", text: "cat"), "\ncat")
        XCTAssertEqual(GRLTextFormat.candidate(instruction: "Find it.", text: "doc"), "Find it.\nCandidate:\ndoc")
        XCTAssertEqual(GRLTextFormat.generationExample(alignmentInstruction: GRLTextFormat.passageToQueryInstruction,
                                                       query: "q?", passage: "a passage"),
                       "Please write a query that can be used to retrieve above passage.. Query:\nq?\n\na passage\n")
        let x = GRLBatchExample(query: "q", positives: ["p"], negatives: ["n1", "n2"], instruction: "I",
                                alignmentInstruction: "A", dataset: 0, index: 3, label: 3)
        XCTAssertEqual(x.contrastiveTexts, ["I\nq", "I\np", "I\nn1", "I\nn2"])
        XCTAssertEqual(x.contrastiveTexts(passageFormat: .candidate),
                       ["I\nq", "I\nCandidate:\np", "I\nCandidate:\nn1", "I\nCandidate:\nn2"])
        XCTAssertEqual(x.generationTexts, ["A. Query:\nq\n\np\n", "A. Query:\nq\n\nn1\n", "A. Query:\nq\n\nn2\n"])
    }

    // MARK: YAML config

    func testExampleConfigParses() throws {
        let c = try TrainConfig.load(path: packageRoot + "/examples/grl-wordnet.yaml")
        XCTAssertEqual(c.warnings, [])
        XCTAssertNil(c.model)
        XCTAssertEqual(c.data, [TrainDataSpec(file: "data/grl/wordnet/train.jsonl",
            instruction: "Given a sentence, retrieve the definition of the sense in which its word is used.", name: "wordnet")])
        XCTAssertEqual(c.data[0].alignmentInstruction, GRLTextFormat.passageToQueryInstruction)
        XCTAssertEqual(c.outputDir, "build/runs/grl-wordnet")
        XCTAssertEqual(c.loraRank, 16); XCTAssertEqual(c.loraAlpha, 32); XCTAssertEqual(c.loraDropout, 0.1)
        XCTAssertNil(c.loraTargets)
        XCTAssertEqual(c.optimizer.learningRate, 1e-4); XCTAssertEqual(c.optimizer.minLearningRate, 1e-7)
        XCTAssertEqual(c.optimizer.warmupProportion, 0.05)
        XCTAssertEqual(c.batchSize, 16); XCTAssertEqual(c.loss.chunkSize, 4)
        XCTAssertEqual(c.optimizer.maxSteps, 200); XCTAssertEqual(c.optimizer.maxEpochs, 1); XCTAssertEqual(c.maxSeqLength, 128)
        XCTAssertEqual(c.loss.gen.kind, .sigmoid); XCTAssertTrue(c.loss.useGen); XCTAssertTrue(c.loss.useKL)
        XCTAssertEqual(c.loss.contrastive.kind, .ntxent); XCTAssertTrue(c.loss.contrastive.useMiner); XCTAssertTrue(c.loss.contrastive.isDistance)
        XCTAssertEqual(c.pooling, .mean); XCTAssertEqual(c.attention, .bidirectional)
        XCTAssertEqual(c.seed, 777)
    }

    func testDefaultsAndReferenceConfig() throws {
        let d = try TrainConfig.parse(yaml: "data:\n  - {file: a.jsonl, instruction: I}\n")
        XCTAssertEqual(d.data[0].name, "a")
        XCTAssertEqual(d.batchSize, 16); XCTAssertEqual(d.loss.chunkSize, 1); XCTAssertEqual(d.loss.contrastive.temperature, 0.05)
        XCTAssertEqual(d.optimizer.warmupProportion, 0.05); XCTAssertEqual(d.optimizer.minLearningRate, 1e-7); XCTAssertEqual(d.optimizer.maxSteps, .max)
        XCTAssertFalse(d.loss.useGen); XCTAssertFalse(d.loss.useKL); XCTAssertEqual(d.posPerSample, 1); XCTAssertEqual(d.negPerSample, 1)
        XCTAssertEqual(d.passageFormat, .query)
        let cand = try TrainConfig.parse(yaml: "data:\n  - {file: a.jsonl, instruction: I}\npassage_format: candidate\n")
        XCTAssertEqual(cand.passageFormat, .candidate)
        XCTAssertThrowsError(try TrainConfig.parse(yaml: "data:\n  - {file: a.jsonl, instruction: I}\npassage_format: doc\n"))
        // The reference's phi.yaml (its keys, as written there) plus our data: reads, with warnings for
        // the keys that mean nothing here.
        let phi = """
        data_names:
        - Hieuman/Arguana
        - Hieuman/SciFact
        max_seq_length: 512
        neg_per_sample: 1
        num_workers: 8
        number_training_samples: 200
        pos_per_sample: 1
        attn_implementation: sdpa
        dropout: 0.1
        encoder_backbone_type: phi
        encoder_lora_name: encoder_lora
        encoder_lora_target_modules:
        - q_proj
        - k_proj
        - v_proj
        encoder_name_or_path: 'microsoft/phi-1_5'
        loar_r: 16
        lora_alpha: 32
        activation_checkpointing: true
        beta: 0.1
        checkpoint_dir: output/test1
        checkpoint_file: null
        checkpoint_interval: 500
        devices: 4
        eval_batch_size: 128
        gc_chunk_size: 1
        gen_loss_type: sft
        global_batch_size: 16
        grad_norm_clip: 1.0
        is_cosine_annealing: true
        is_distance: true
        label_smoothing: 0.0
        learning_rate: 0.0001
        log_interval: 1
        logger_name: ullme_llama
        logger_type: wandb
        loss_type: NTXentLoss
        max_epochs: 3
        max_steps: 50000
        min_learning_rate: 1.0e-07
        model_revision: ullme_llama
        nodes: 1
        only_load_model: false
        precision: bf16-mixed
        quantization: false
        seed: 999
        sharding_strategy: shard_grad_op
        strategy: fsdp
        temperature: 0.05
        use_cpu_offload: false
        use_gen: true
        use_kl: false
        use_miner: true
        warmpup_proportion: 0.05
        weight_decay: 0.0
        data:
          - {file: x.jsonl, instruction: "Given a claim, retrieve documents that support or refute the claim."}
        """
        let c = try TrainConfig.parse(yaml: phi, file: "phi.yaml")
        XCTAssertEqual(c.model, "microsoft/phi-1_5"); XCTAssertEqual(c.outputDir, "output/test1")
        XCTAssertEqual(c.loraTargets, ["q_proj", "k_proj", "v_proj"]); XCTAssertEqual(c.optimizer.maxSteps, 50000)
        XCTAssertEqual(c.seed, 999); XCTAssertEqual(c.checkpointInterval, 500); XCTAssertEqual(c.optimizer.maxEpochs, 3)
        XCTAssertTrue(c.loss.useGen); XCTAssertEqual(c.loss.gen.kind, .sft)
        XCTAssertEqual(c.warnings.count, 19, c.warnings.joined(separator: "\n"))
        XCTAssertTrue(c.activationCheckpointing)   // the reference's key, honoured
        XCTAssertTrue(c.warnings.allSatisfy { $0.contains("has no effect in libullme") })
        XCTAssertTrue(c.warnings.contains { $0.hasPrefix("phi.yaml:1: \"data_names\"") })
    }

    func testUnknownKeysWarn() throws {
        let c = try TrainConfig.parse(yaml: """
        learning_rat: 0.001
        warmup_proportion: 0.1
        lora_r: 8
        frobnicate: yes
        data:
          - file: a.jsonl
            instruction: I
            weight: 2
        """, file: "c.yaml")
        XCTAssertEqual(c.warnings, [
            "c.yaml:8: unknown key \"data[0].weight\" (ignored; a data entry has file, instruction, name, alignment_instruction)",
            "c.yaml:1: unknown key \"learning_rat\" (ignored); did you mean \"learning_rate\"?",
            "c.yaml:4: unknown key \"frobnicate\" (ignored)",
        ])
        XCTAssertEqual(c.optimizer.learningRate, 1e-4)
        XCTAssertEqual(c.optimizer.warmupProportion, 0.1)  // the correct spelling works too
        XCTAssertEqual(c.loraRank, 8)
    }

    func testTypeErrorsNameKeyLineAndType() throws {
        func error(_ yaml: String) -> String {
            do { _ = try TrainConfig.parse(yaml: "data: [{file: a.jsonl, instruction: I}]\n" + yaml, file: "c.yaml"); return "no error" }
            catch { return "\(error)" }
        }
        XCTAssertEqual(error("learning_rate: fast\n"), "bad format: c.yaml:2: \"learning_rate\" must be a number, got \"fast\"")
        XCTAssertEqual(error("global_batch_size: 2.5\n"), "bad format: c.yaml:2: \"global_batch_size\" must be an integer, got \"2.5\"")
        XCTAssertEqual(error("seed: 1\nuse_gen: \"true\"\n"), "bad format: c.yaml:3: \"use_gen\" must be a boolean (true or false), got the quoted string \"true\"")
        XCTAssertEqual(error("loss_type: Triplet\n"), "bad format: c.yaml:2: \"loss_type\" must be NTXentLoss or SupConLoss, got \"Triplet\"")
        XCTAssertEqual(error("temperature: 0\n"), "bad format: c.yaml:2: \"temperature\" must be a number > 0.0, got \"0\"")
        XCTAssertEqual(error("encoder_lora_target_modules: {a: 1}\n"),
                       "bad format: c.yaml:2: \"encoder_lora_target_modules\" must be \"all\" or a list of module names, got a mapping")
        XCTAssertEqual(error("pooling: max\n"), "bad format: c.yaml:2: \"pooling\" must be mean, weightedmean, cls or lasttoken, got \"max\"")
        XCTAssertEqual(error("loar_r: 16\nlora_r: 8\n"),
                       "bad format: c.yaml:3: \"lora_r\" and \"loar_r\" (line 2) are two spellings of one setting with different values")
        XCTAssertEqual(error("use_kl: true\n"), "bad format: c.yaml: use_kl (GRL) needs use_gen: true and a preference gen_loss_type (sigmoid, hinge, ipo or kto_pair), not use_gen: false")
        XCTAssertEqual(error("seed: 1\nseed: 2\n"), "bad format: c.yaml:3:1: duplicate key \"seed\" (first on line 2)")
        XCTAssertTrue(error("seed: [1\n").hasPrefix("bad format: c.yaml:"), error("seed: [1\n"))
        XCTAssertEqual(error("max_steps: .inf\ngc_chunk_size: null\n"), "no error")
        XCTAssertThrowsError(try TrainConfig.parse(yaml: "learning_rate: 1e-4\n")) {  // no data
            XCTAssertTrue("\($0)".contains("no training data"))
        }
        XCTAssertThrowsError(try TrainConfig.parse(yaml: "data: {file: a}\n", file: "c.yaml")) {
            XCTAssertEqual("\($0)", "bad format: c.yaml:1: \"data\" must be a list of {file, instruction, name, alignment_instruction} mappings, got a mapping")
        }
        XCTAssertThrowsError(try TrainConfig.parse(yaml: "data: [{file: a}]\n", file: "c.yaml")) {
            XCTAssertEqual("\($0)", "bad format: c.yaml:1: \"data[0]\" needs \"instruction\"")
        }
    }

    func testYAMLTree() throws {
        let n = try XCTUnwrap(YAMLNode.parse("""
        a: &x [1, "two", null]
        b: *x
        c: |
          block
        """))
        let m = try XCTUnwrap(n.mapping)
        XCTAssertEqual(m.map(\.key), ["a", "b", "c"])
        XCTAssertEqual(m[0].value.sequence?.count, 3)
        XCTAssertEqual(m[1].value.sequence, m[0].value.sequence)
        XCTAssertEqual(m[0].value.sequence?[0].int, 1)
        XCTAssertNil(m[0].value.sequence?[1].int)
        XCTAssertTrue(m[0].value.sequence?[2].isNull ?? false)
        XCTAssertEqual(m[2].value.value, .scalar("block", plain: false))  // no final line break: clipped
        XCTAssertEqual(m[2].line, 3)
        XCTAssertNil(try YAMLNode.parse("# nothing\n"))
        XCTAssertThrowsError(try YAMLNode.parse("a: 1\n---\nb: 2\n"))
    }
}
