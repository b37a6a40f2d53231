/// One key of the YAML training config: its spellings, what it sets, its default (read off `TrainConfig()`)
/// and its documentation. `TrainConfig.keys` is the whole table; parsing, "did you mean", the documentation
/// (`ullme train --keys`, docs/training-config.md) all read it.
public struct TrainConfigKey {
    /// The key and its aliases (the first is the one documented first; the reference's spellings included).
    public let names: [String]
    /// What the value may be ("a number > 0", "mean | cls | ...").
    public let type: String
    public let doc: String
    /// The default, as written in YAML.
    public let defaultText: (TrainConfig) -> String
    /// Reads the entry into the config (throws a message naming the key, line and expected type).
    let read: (inout TrainConfigReader, YAMLEntry, inout TrainConfig) throws -> Void
    /// A reference key accepted for compatibility with a warning: why it does nothing here.
    public let noEffect: String?

    init(_ names: [String], _ type: String, _ doc: String, default defaultText: @escaping (TrainConfig) -> String,
         read: @escaping (inout TrainConfigReader, YAMLEntry, inout TrainConfig) throws -> Void) {
        self.names = names; self.type = type; self.doc = doc; self.defaultText = defaultText; self.read = read; noEffect = nil
    }

    init(noEffect names: [String], _ why: String) {
        self.names = names; type = "any"; doc = "accepted, no effect: \(why)"; defaultText = { _ in "" }
        read = { _, _, _ in }; noEffect = why
    }

    static func bool(_ names: [String], _ path: WritableKeyPath<TrainConfig, Bool>, _ doc: String) -> Self {
        .init(names, "true | false", doc, default: { "\($0[keyPath: path])" }) { r, e, c in c[keyPath: path] = try r.bool(e) }
    }

    static func int(_ names: [String], _ path: WritableKeyPath<TrainConfig, Int>, min: Int, max: Int? = nil,
                    _ doc: String) -> Self {
        .init(names, max.map { "integer in [\(min), \($0)]" } ?? "integer >= \(min)", doc, default: { "\($0[keyPath: path])" }) { r, e, c in
            c[keyPath: path] = try r.int(e, min: min, max: max)
        }
    }

    static func number(_ names: [String], _ path: WritableKeyPath<TrainConfig, Double>, min: Double,
                       max: Double? = nil, exclusive: Bool = false, _ doc: String) -> Self {
        .init(names, numberType(min, max, exclusive), doc, default: { "\($0[keyPath: path])" }) { r, e, c in
            c[keyPath: path] = try r.double(e, min: min, max: max, exclusive: exclusive)
        }
    }

    static func number(_ names: [String], _ path: WritableKeyPath<TrainConfig, Float>, min: Double,
                       max: Double? = nil, exclusive: Bool = false, _ doc: String) -> Self {
        .init(names, numberType(min, max, exclusive), doc, default: { "\($0[keyPath: path])" }) { r, e, c in
            c[keyPath: path] = Float(try r.double(e, min: min, max: max, exclusive: exclusive))
        }
    }

    static func numberType(_ min: Double, _ max: Double?, _ exclusive: Bool) -> String {
        exclusive ? "number > \(min)" : max.map { "number in [\(min), \($0)]" } ?? "number >= \(min)"
    }

    /// One of named values (`options`: YAML spelling → value).
    static func choice<E: Equatable>(_ names: [String], _ path: WritableKeyPath<TrainConfig, E>,
                                                 _ options: [(String, E)], _ doc: String) -> Self {
        let spelled = options.map(\.0)
        return .init(names, spelled.joined(separator: " | "), doc,
                     default: { c in options.first { $0.1 == c[keyPath: path] }?.0 ?? "" }) { r, e, c in
            guard let v = try? r.string(e), let o = options.first(where: { $0.0 == v }) else {
                throw r.typeError(e, spelled.dropLast().joined(separator: ", ") + " or " + spelled.last!)
            }
            c[keyPath: path] = o.1
        }
    }

    static func choice<E: RawRepresentable & CaseIterable & Equatable>(
        _ names: [String], _ path: WritableKeyPath<TrainConfig, E>, _ doc: String) -> Self where E.RawValue == String {
        choice(names, path, E.allCases.map { ($0.rawValue, $0) }, doc)
    }
}

extension TrainConfig {
    /// Every YAML key, in the order they are read and documented. It accepts the reference's keys
    /// (ullme/args.py DataArguments / ModelArguments / TrainingArguments, a flat mapping read with
    /// HfArgumentParser.parse_yaml_file), including its spellings `loar_r` and `warmpup_proportion`, plus ours.
    /// Defaults: the reference's Phi-1.5 recipe (scripts/configs/phi.yaml) where it gives a value, else args.py.
    public static let keys: [TrainConfigKey] = [
        // The run
        .init(["model", "encoder_name_or_path"], "path | null",
              "the base model: a GGUF file or a Hugging Face directory; null: the default model (SmolLM2-135M-Instruct)",
              default: { $0.model ?? "null" }) { r, e, c in c.model = try r.optionalString(e) },
        .init(["data"], "list of {file, instruction, name, alignment_instruction}",
              "the training sets (JSONL, data/README.md); name defaults to the file's name, alignment_instruction "
              + "to the passage-to-query instruction; relative paths are relative to the working directory",
              default: { _ in "(required)" }) { r, e, c in c.data = try r.dataList(e) },
        .init(["output_dir", "checkpoint_dir"], "path", "checkpoints, log.jsonl, losses.png and the adapter",
              default: { $0.outputDir }) { r, e, c in c.outputDir = try r.string(e) },
        .int(["log_every", "log_interval"], \.logEvery, min: 1,
             "steps between log.jsonl lines (the last step and non-finite steps are always logged)"),
        .int(["threads"], \.threads, min: 0, max: maxComputeThreads,
             "compute threads (0: every online core; the CLI's --threads overrides it)"),
        .init(["seed"], "integer >= 0", "data order, LoRA and head initialisation, dropout masks",
              default: { "\($0.seed)" }) { r, e, c in c.seed = UInt64(try r.int(e, min: 0)) },
        // Batches
        .int(["global_batch_size"], \.batchSize, min: 1,
             "examples per optimiser step, all from one data set (args.py 32; phi.yaml 16)"),
        .int(["pos_per_sample"], \.posPerSample, min: 1, "positives per example"),
        .int(["neg_per_sample"], \.negPerSample, min: 1, "hard negatives per example"),
        .int(["max_seq_length"], \.maxSeqLength, min: 2, "tokens per text (longer texts are cut)"),
        .bool(["skip_malformed_lines"], \.skipMalformedLines, "skip malformed JSONL lines (reported) instead of failing"),
        .bool(["drop_last"], \.dropLast,
              "drop every data set's last partial batch instead of mixing them into batches as the reference's sampler does"),
        .bool(["sample_with_replacement"], \.sampleWithReplacement,
              "always pos/neg_per_sample per example, with replacement where an example has fewer, instead of the "
              + "reference's batch minimum"),
        .choice(["passage_format"], \.passageFormat,
                "how positives and negatives are formatted in the contrastive pass: query (`{instruction}\\n{text}`, the "
                + "reference) or candidate (`{instruction}\\nCandidate:\\n{text}`, the format encode_corpus embeds documents in)"),
        // The model being trained
        .choice(["pooling"], \.pooling, [("mean", .mean), ("weightedmean", .weightedMean), ("cls", .cls), ("lasttoken", .lastToken)],
                "how token states become the embedding"),
        .choice(["attention"], \.attention, [("bidirectional", .bidirectional), ("causal", .causal)],
                "attention of the embedding passes"),
        .choice(["weight_storage"], \.weightStorage,
                [("auto", nil), ("stored", .stored), ("dense", .dense), ("quantized", .quantized)],
                "the frozen base's linear weights: stored (the file's quantised rows, dequantised inside each product: "
                + "QLoRA-style, no float32 copy), dense (float32 at load), quantized (int8 panels + group scales made at "
                + "load), auto (stored for a .gguf base, dense otherwise)"),
        .bool(["activation_checkpointing", "gradient_checkpointing"], \.activationCheckpointing,
              "keep only each layer's input in forward and recompute the layer in backward: much less memory for about "
              + "one more forward pass; gradients are bit-identical (phi.yaml: true)"),
        .choice(["base_precision"], \.basePrecision, [("exact", .exact), ("bf16", .bf16)],
                "the frozen base's forward and backward products: exact (float32, the gradients checked against PyTorch) "
                + "or bf16 (operands rounded to bfloat16, float32 sums, on AVX512_BF16; LoRA, head, gradients and AdamW stay "
                + "float32; one more copy of the linear weights, 4 bytes a weight; without AVX512_BF16 the products stay "
                + "exact and `ullme train` says so)"),
        .int(["loar_r", "lora_r"], \.loraRank, min: 1, "LoRA rank (`loar_r`: the reference's spelling)"),
        .number(["lora_alpha"], \.loraAlpha, min: 0, exclusive: true, "LoRA scale alpha / rank"),
        .number(["dropout", "lora_dropout"], \.loraDropout, min: 0, max: 1, "dropout on the LoRA input"),
        .init(["encoder_lora_target_modules", "lora_target_modules"], "all | list of module names",
              "the linear layers given LoRA adapters, by PEFT module name; all: every linear layer of the family",
              default: { $0.loraTargets.map { $0.sorted().joined(separator: ", ") } ?? "all" }) { r, e, c in
                  if e.value.scalarText == "all" || e.value.isNull { c.loraTargets = nil }
                  else if let s = e.value.scalarText { c.loraTargets = [s] }
                  else { c.loraTargets = Set(try r.stringList(e, expected: "\"all\" or a list of module names")) }
              },
        // The objective
        .choice(["loss_type"], \.loss.contrastive.kind, "the contrastive loss"),
        .number(["temperature"], \.loss.contrastive.temperature, min: 0, exclusive: true, "contrastive temperature"),
        .bool(["use_miner"], \.loss.contrastive.useMiner, "restrict the contrastive loss to MultiSimilarityMiner pairs"),
        .bool(["is_distance"], \.loss.contrastive.isDistance,
              "similarity = minus the L2 distance of normalised embeddings (true) or cosine (false)"),
        .bool(["use_gen"], \.loss.useGen, "add the generation loss on the positives' generation examples"),
        // After use_gen: null is an error only when use_gen is on.
        .init(["gen_loss_type"], "sft | sigmoid | hinge | ipo | kto_pair | null",
              "the generation loss: sft (next-token loss) or a preference (DPO) loss; GRL = a preference loss + use_kl",
              default: { $0.loss.gen.kind.rawValue }) { r, e, c in
                  if e.value.isNull || e.value.scalarText == "None" {
                      if c.loss.useGen { throw ULLMEError.format("\(r.file): use_gen is true but gen_loss_type is null") }
                      return
                  }
                  guard let v = e.value.scalarText, let kind = GenLossKind(rawValue: v) else {
                      throw r.typeError(e, GenLossKind.allCases.map(\.rawValue).joined(separator: ", ") + " or null")
                  }
                  c.loss.gen.kind = kind
              },
        .number(["beta"], \.loss.gen.beta, min: 0, exclusive: true, "preference-loss beta"),
        .number(["label_smoothing"], \.loss.gen.labelSmoothing, min: 0, max: 1, "preference-loss label smoothing"),
        .bool(["use_kl"], \.loss.useKL, "add the KL term that aligns embedding scores with generation scores (GRL)"),
        .number(["cl_weight"], \.loss.weightCL, min: 0, "weight of the contrastive term (the paper's lambda)"),
        .number(["gen_weight"], \.loss.weightGen, min: 0, "weight of the generation term"),
        .number(["kl_weight"], \.loss.weightKL, min: 0, "weight of the KL term"),
        .init(["gc_chunk_size"], "integer >= 1 | null",
              "GradCache: examples per forward/backward chunk; null: the whole batch at once",
              default: { $0.loss.chunkSize.map(String.init) ?? "null" }) { r, e, c in
                  c.loss.chunkSize = e.value.isNull ? nil : try r.int(e, min: 1)
              },
        .bool(["gc_reference_weighting"], \.loss.referenceChunkWeighting,
              "add each GradCache chunk's gen/KL mean unweighted as the reference does, instead of weighting by chunk size"),
        // The optimiser
        .number(["learning_rate"], \.optimizer.learningRate, min: 0, exclusive: true, "AdamW learning rate"),
        .number(["min_learning_rate"], \.optimizer.minLearningRate, min: 0, "end of the cosine decay (args.py 0; phi.yaml 1e-7)"),
        .number(["warmpup_proportion", "warmup_proportion"], \.optimizer.warmupProportion, min: 0, max: 1,
                "warmup as a share of an epoch's steps, at most 500 (`warmpup_proportion`: the reference's spelling; args.py 0.1, phi.yaml 0.05)"),
        .bool(["is_cosine_annealing"], \.optimizer.cosineAnnealing, "restart the warmup + cosine cycle every epoch"),
        .number(["grad_norm_clip"], \.optimizer.gradClip, min: 0, "global gradient-norm clip (0: none)"),
        .number(["weight_decay"], \.optimizer.weightDecay, min: 0, "AdamW weight decay"),
        .int(["max_epochs"], \.optimizer.maxEpochs, min: 1, "epochs over the data"),
        .init(["max_steps"], "integer >= 1 | .inf | null", "stop after this many steps; .inf / null: run every epoch",
              default: { $0.optimizer.maxSteps == .max ? "null" : "\($0.optimizer.maxSteps)" }) { r, e, c in
                  if e.value.isNull || e.value.double == .infinity || e.value.scalarText == "inf" { c.optimizer.maxSteps = .max }
                  else { c.optimizer.maxSteps = try r.int(e, min: 1, expected: "a positive integer, .inf or null") }
              },
        .int(["checkpoint_interval"], \.checkpointInterval, min: 0, "steps between checkpoints (0: only at the end)"),
        // Non-finite steps
        .choice(["nonfinite_policy"], \.nonfinitePolicy,
                "a step with a NaN/inf loss, gradient norm or updated parameter is never applied; stop: the run writes the "
                + "last good state as the checkpoint and fails naming the step (the reference's Fabric clip_gradients "
                + "raises); skip: the step counts as done and the run continues"),
        .int(["max_consecutive_nonfinite"], \.maxConsecutiveNonFinite, min: 0,
             "under skip, stop when this many steps in a row were non-finite (0: never)"),
        .init(["inject_nonfinite_steps"], "list of steps >= 1",
              "testing hook: steps whose loss and one gradient are replaced by NaN, to exercise nonfinite_policy",
              default: { "[" + $0.injectNonFiniteSteps.sorted().map(String.init).joined(separator: ", ") + "]" }) { r, e, c in
                  c.injectNonFiniteSteps = try r.steps(e)
              },
        // Reference keys with no effect here.
        .init(noEffect: ["checkpoint_file"], "resume with `ullme train --resume` (output_dir's checkpoint); a reference "
              + "checkpoint becomes a PEFT adapter with scripts/convert_reference_checkpoint.py"),
        .init(noEffect: ["only_load_model"], "see checkpoint_file"),
        .init(noEffect: ["data_names"], "the reference's Hugging Face data set names; list files under `data:` instead"),
        .init(noEffect: ["number_training_samples"], "the reference's per-data-set sample cap; every line of each file is used"),
        .init(noEffect: ["num_workers"], "data loading runs in-process"),
        .init(noEffect: ["encoder_backbone_type"], "the family is read from the model file"),
        .init(noEffect: ["encoder_lora_name"], "adapter naming"),
        .init(noEffect: ["attn_implementation"], "GPU attention kernel choice"),
        .init(noEffect: ["model_revision"], "model hub revision naming"),
        .init(noEffect: ["nodes"], "single-process CPU training (data-parallel runs use mpirun)"),
        .init(noEffect: ["devices"], "single-process CPU training (data-parallel runs use mpirun)"),
        .init(noEffect: ["strategy"], "single-process CPU training (data-parallel runs use mpirun)"),
        .init(noEffect: ["sharding_strategy"], "single-process CPU training (data-parallel runs use mpirun)"),
        .init(noEffect: ["use_cpu_offload"], "single-process CPU training (data-parallel runs use mpirun)"),
        .init(noEffect: ["precision"], "the reference's Lightning precision; LoRA, head and optimiser run in float32, and "
              + "base_precision sets the frozen base's products"),
        .init(noEffect: ["quantization"], "quantised base weights are used as stored in the model file"),
        .init(noEffect: ["eval_batch_size"], "no MTEB evaluation during training"),
        .init(noEffect: ["logger_type"], "logging goes to a JSONL file in output_dir"),
        .init(noEffect: ["logger_name"], "logging goes to a JSONL file in output_dir"),
    ]

    /// The keys as a Markdown table (docs/training-config.md, `ullme train --keys`).
    public static var keyTable: String {
        let d = TrainConfig()
        var lines = ["| key | aliases | value | default | meaning |", "|---|---|---|---|---|"]
        for k in keys {
            func cell(_ s: String) -> String { s.replacing("|", with: "\\|") }
            lines.append("| `\(k.names[0])` | \(k.names.dropFirst().map { "`\($0)`" }.joined(separator: ", ")) | "
                         + "\(cell(k.type)) | \(k.noEffect == nil ? "`\(cell(k.defaultText(d)))`" : "") | \(cell(k.doc)) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
