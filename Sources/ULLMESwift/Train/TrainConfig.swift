import FoundationEssentials

// The training configuration, read from a YAML file (libyaml, see Formats/YAML.swift) so that the CLI,
// the C API and Python all read the same file.
//
// It accepts the reference's keys (ullme/args.py DataArguments/ModelArguments/TrainingArguments, as in
// scripts/configs/phi.yaml — the reference reads them with HfArgumentParser.parse_yaml_file, a flat
// mapping) including its spellings `loar_r` and `warmpup_proportion` (the correct `lora_r` and
// `warmup_proportion` are accepted too; giving both spellings with different values is an error), plus
// ours. Unknown keys are warnings (the reference would refuse them); reference keys that have no
// meaning here (GPU strategy, precision, loggers, Hugging Face data set names, ...) are accepted with a
// warning saying they have no effect. A value of the wrong type is an error naming the key, the line
// and the expected type.
//
// Defaults: METHOD §7 (the reference's Phi-1.5 config) where it gives a value, else args.py:
//   key                       default   (args.py default where different)
//   learning_rate             1e-4
//   min_learning_rate         1e-7      (args.py 0.0; phi.yaml 1e-7)
//   warmpup_proportion        0.05      (args.py 0.1; phi.yaml 0.05)
//   is_cosine_annealing       true
//   global_batch_size         16        (args.py 32; phi.yaml 16)
//   gc_chunk_size             1         (null: no GradCache, the whole batch at once)
//   temperature               0.05
//   beta                      0.1
//   label_smoothing           0.0
//   loss_type                 NTXentLoss   (NTXentLoss | SupConLoss)
//   gen_loss_type             sft          (sft | sigmoid | hinge | ipo | kto_pair | null)
//   use_gen / use_kl          false / false   (phi.yaml: true / false; GRL = use_gen with a
//                                             preference gen_loss_type + use_kl)
//   use_miner / is_distance   true / true
//   pos_per_sample / neg_per_sample  1 / 1
//   max_seq_length            512
//   grad_norm_clip            1.0
//   weight_decay              0.0
//   max_epochs                10
//   max_steps                 unbounded (args.py float("inf"); `null`, `.inf` or `inf` here)
//   checkpoint_interval       1000
//   seed                      777
//   loar_r / lora_r           16
//   lora_alpha                32
//   dropout (LoRA dropout)    0.1
//   encoder_lora_target_modules  all  ("all" or a list of module names; METHOD §2: the reference's
//                             phi.yaml lists the llama names for every family; "all" adapts every linear
//                             layer of the family)
// Ours:
//   model                     model path (GGUF file or HF directory); null = the default model
//                             (alias: the reference's encoder_name_or_path)
//   data                      list of {file, instruction, name (default: from the file name),
//                             alignment_instruction (default: the passage-to-query instruction)};
//                             relative paths are relative to the working directory, as the reference's
//   output_dir                checkpoints, logs, adapters (alias: the reference's checkpoint_dir)
//   checkpoint_file           a checkpoint to resume from (reference key); only_load_model as reference
//   pooling                   mean | weightedmean | cls | lasttoken   (mean)
//   attention                 encode attention: bidirectional | causal   (bidirectional)
//   log_every                 steps between log lines (alias: the reference's log_interval)   (1)
//   skip_malformed_lines      skip malformed JSONL lines (reported) instead of failing   (false)
//   drop_last                 drop every data set's last partial batch instead of mixing them into
//                             batches as the reference's sampler (drop_last: False) does   (false)
//   sample_with_replacement   always pos/neg_per_sample per example, with replacement where an
//                             example has fewer, instead of the reference's batch minimum   (false)
//   passage_format            how positives and negatives are formatted in the contrastive pass: query
//                             (`{instruction}\n{text}`, the reference) | candidate (`{instruction}\nCandidate:\n{text}`,
//                             the format encode_corpus uses for documents)   (query)
//   cl_weight / gen_weight / kl_weight   weights of the three loss terms (the paper's lambdas)   (1 / 1 / 1)
//   gc_reference_weighting    add each GradCache chunk's gen/KL mean unweighted as the reference does,
//                             instead of weighting by chunk size / batch size (METHOD §5)   (false)
//   nonfinite_policy          what a step with a NaN/inf loss, gradient norm or updated parameter does:
//                             stop | skip   (stop: the reference's Fabric clip_gradients raises on a
//                             non-finite norm). Either way the update is not applied and no checkpoint
//                             ever holds a non-finite value. stop: the run writes the last good state as
//                             the checkpoint (when newer than the last one) and fails naming the step;
//                             skip: the step counts as done (its batch is consumed, the schedule moves
//                             on), AdamW's moments and step count are untouched, the run continues.
//                             The step is logged either way (log.jsonl "nonfinite", C log record,
//                             Python callback, CLI stderr line).
//   max_consecutive_nonfinite under nonfinite_policy: skip, the run stops (as under stop) when this many
//                             steps in a row were non-finite: a diverged run should not burn its budget
//                             skipping every step. 0 = never stop   (10)
//   inject_nonfinite_steps    testing hook: list of steps (1-based) whose loss and one gradient are
//                             replaced by NaN, to exercise nonfinite_policy   ([])
//   threads                   compute threads of the run (0 = every online core; the CLI's --threads
//                             overrides it)   (0)
//   activation_checkpointing  (a reference key, which it passes to its GPU trainer; phi.yaml: true) keep
//                             only each layer's input in forward and recompute the layer's activations
//                             in backward (llm.c style; alias: HF's gradient_checkpointing): much less
//                             memory for about one more forward pass; gradients are bit-identical   (false)
//   weight_storage            the frozen base's linear weights: stored (the file's quantised rows,
//                             dequantised inside each product: QLoRA-style, no float32 copy) | dense
//                             (float32 at load) | quantized (int8 panels + group scales made at load)
//                             | auto (stored for a .gguf base, dense otherwise)                    (auto)

/// What a training step with a non-finite loss, gradient norm or updated parameter does (YAML
/// `nonfinite_policy`).
public enum NonFinitePolicy: String, Sendable, Equatable {
    /// Stop the run with an error (after writing the last good state as the checkpoint).
    case stop
    /// Drop the step's update and continue with the next batch.
    case skip
}

/// One training data set in the config.
public struct TrainDataSpec: Sendable, Equatable {
    public var file: String
    public var instruction: String
    public var name: String
    public var alignmentInstruction: String

    public init(file: String, instruction: String, name: String? = nil,
                alignmentInstruction: String = GRLTextFormat.passageToQueryInstruction) {
        self.file = file; self.instruction = instruction
        self.name = name ?? GRLDataset.defaultName(file)
        self.alignmentInstruction = alignmentInstruction
    }
}

public struct TrainConfig: Sendable, Equatable {
    // Ours
    public var model: String? = nil
    public var data: [TrainDataSpec] = []
    public var outputDir: String = "runs/grl"
    public var checkpointFile: String? = nil
    public var onlyLoadModel: Bool = false
    public var pooling: Pooling = .mean
    public var attention: AttentionMode = .bidirectional
    public var logEvery: Int = 1
    public var skipMalformedLines: Bool = false
    public var dropLast: Bool = false
    public var sampleWithReplacement: Bool = false
    public var passageFormat: PassageFormat = .query
    public var clWeight: Double = 1
    public var genWeight: Double = 1
    public var klWeight: Double = 1
    public var gcReferenceWeighting: Bool = false
    public var nonfinitePolicy: NonFinitePolicy = .stop
    public var maxConsecutiveNonFinite = 10
    public var injectNonFiniteSteps: [Int] = []
    public var activationCheckpointing: Bool = false
    public var threads = 0
    /// nil: auto (stored for a .gguf base, dense otherwise).
    public var weightStorage: WeightStorage? = nil

    // Reference (METHOD §7 / args.py)
    public var learningRate: Double = 1e-4
    public var minLearningRate: Double = 1e-7
    public var warmupProportion: Double = 0.05
    public var isCosineAnnealing: Bool = true
    public var globalBatchSize: Int = 16
    /// nil: no GradCache (the whole batch in one pass).
    public var gcChunkSize: Int? = 1
    public var temperature: Double = 0.05
    public var beta: Double = 0.1
    public var labelSmoothing: Double = 0
    public var lossType: String = "NTXentLoss"
    /// nil: no generation loss.
    public var genLossType: String? = "sft"
    public var useGen: Bool = false
    public var useKL: Bool = false
    public var useMiner: Bool = true
    public var isDistance: Bool = true
    public var posPerSample: Int = 1
    public var negPerSample: Int = 1
    public var maxSeqLength: Int = 512
    public var gradNormClip: Double = 1.0
    public var weightDecay: Double = 0
    public var maxEpochs: Int = 10
    /// nil: unbounded (the reference's float("inf")).
    public var maxSteps: Int? = nil
    public var checkpointInterval: Int = 1000
    public var seed: UInt64 = 777
    public var loraR: Int = 16
    public var loraAlpha: Double = 32
    public var loraDropout: Double = 0.1
    /// nil: every linear layer of the family ("all").
    public var loraTargetModules: [String]? = nil

    /// Warnings from reading the file (unknown keys, reference keys without effect), "file:line: text".
    public var warnings: [String] = []

    public init() {}

    public static let contrastiveLosses = ["NTXentLoss", "SupConLoss"]
    public static let generativeLosses = ["sft", "sigmoid", "hinge", "ipo", "kto_pair"]

    /// Reads a YAML config file.
    public static func load(path: String) throws -> TrainConfig {
        let f = try MappedFile(path: path)
        guard let text = String(validating: f.bytes, as: UTF8.self) else {
            throw ULLMEError.format("\(path): not valid UTF-8")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses a YAML config; `file` names the source in messages.
    public static func parse(yaml: String, file: String = "<config>") throws -> TrainConfig {
        guard let root = try YAMLNode.parse(yaml, file: file) else {
            throw ULLMEError.format("\(file): empty config")
        }
        guard let entries = root.mapping else {
            throw ULLMEError.format("\(file):\(root.line): the config must be a mapping of keys to values, got \(root.kindDescription)")
        }
        var r = Reader(file: file, entries: entries)
        var c = TrainConfig()

        // Ours
        if let v = try r.optionalString(["model", "encoder_name_or_path"]) { c.model = v }
        if let v = try r.string(["output_dir", "checkpoint_dir"]) { c.outputDir = v }
        if let v = try r.optionalString(["checkpoint_file"]) { c.checkpointFile = v }
        if let v = try r.bool(["only_load_model"]) { c.onlyLoadModel = v }
        if let (v, e) = try r.stringWithEntry(["pooling"]) {
            do { c.pooling = try Pooling(name: v) } catch { throw r.typeError(e, "mean, weightedmean, cls or lasttoken") }
        }
        if let (v, e) = try r.stringWithEntry(["attention"]) {
            do { c.attention = try AttentionMode(name: v) } catch { throw r.typeError(e, "bidirectional or causal") }
        }
        if let v = try r.int(["log_every", "log_interval"], min: 1) { c.logEvery = v }
        if let v = try r.bool(["skip_malformed_lines"]) { c.skipMalformedLines = v }
        if let v = try r.bool(["drop_last"]) { c.dropLast = v }
        if let v = try r.bool(["sample_with_replacement"]) { c.sampleWithReplacement = v }
        if let (v, e) = try r.stringWithEntry(["passage_format"]) {
            guard let f = PassageFormat(rawValue: v) else { throw r.typeError(e, "query or candidate") }
            c.passageFormat = f
        }
        if let v = try r.double(["cl_weight"], min: 0) { c.clWeight = v }
        if let v = try r.double(["gen_weight"], min: 0) { c.genWeight = v }
        if let v = try r.double(["kl_weight"], min: 0) { c.klWeight = v }
        if let v = try r.bool(["gc_reference_weighting"]) { c.gcReferenceWeighting = v }
        if let (v, e) = try r.stringWithEntry(["nonfinite_policy"]) {
            guard let p = NonFinitePolicy(rawValue: v) else { throw r.typeError(e, "stop or skip") }
            c.nonfinitePolicy = p
        }
        if let v = try r.int(["max_consecutive_nonfinite"], min: 0) { c.maxConsecutiveNonFinite = v }
        if let e = try r.take(["inject_nonfinite_steps"]) {
            if e.value.isNull { c.injectNonFiniteSteps = [] }
            else if e.value.int != nil { c.injectNonFiniteSteps = [try r.intValue(e, min: 1, expected: "a step >= 1 or a list of them")] }
            else {
                guard let items = e.value.sequence else { throw r.typeError(e, "a list of steps >= 1") }
                c.injectNonFiniteSteps = try items.map {
                    guard let v = $0.int, v >= 1 else {
                        throw ULLMEError.format("\(file):\($0.line): \"inject_nonfinite_steps\" entries must be integers >= 1, got \($0.kindDescription)")
                    }
                    return v
                }
            }
        }
        if let v = try r.bool(["activation_checkpointing", "gradient_checkpointing"]) { c.activationCheckpointing = v }
        if let v = try r.int(["threads"], min: 0, max: maxComputeThreads) { c.threads = v }
        if let (v, e) = try r.stringWithEntry(["weight_storage"]) {
            if v == "auto" { c.weightStorage = nil }
            else if let s = WeightStorage(rawValue: v) { c.weightStorage = s }
            else { throw r.typeError(e, "stored, dense or auto") }
        }
        if let e = try r.take(["data"]) { c.data = try r.dataList(e) }

        // Reference
        if let v = try r.double(["learning_rate"], min: 0, exclusive: true) { c.learningRate = v }
        if let v = try r.double(["min_learning_rate"], min: 0) { c.minLearningRate = v }
        if let v = try r.double(["warmpup_proportion", "warmup_proportion"], min: 0, max: 1) { c.warmupProportion = v }
        if let v = try r.bool(["is_cosine_annealing"]) { c.isCosineAnnealing = v }
        if let v = try r.int(["global_batch_size"], min: 1) { c.globalBatchSize = v }
        if let e = try r.take(["gc_chunk_size"]) {
            c.gcChunkSize = e.value.isNull ? nil : try r.intValue(e, min: 1)
        }
        if let v = try r.double(["temperature"], min: 0, exclusive: true) { c.temperature = v }
        if let v = try r.double(["beta"], min: 0, exclusive: true) { c.beta = v }
        if let v = try r.double(["label_smoothing"], min: 0, max: 1) { c.labelSmoothing = v }
        if let (v, e) = try r.stringWithEntry(["loss_type"]) {
            guard contrastiveLosses.contains(v) else { throw r.typeError(e, contrastiveLosses.joined(separator: " or ")) }
            c.lossType = v
        }
        if let e = try r.take(["gen_loss_type"]) {
            if e.value.isNull || e.value.scalarText == "None" { c.genLossType = nil }
            else {
                guard let v = e.value.scalarText, generativeLosses.contains(v) else {
                    throw r.typeError(e, generativeLosses.joined(separator: ", ") + " or null")
                }
                c.genLossType = v
            }
        }
        if let v = try r.bool(["use_gen"]) { c.useGen = v }
        if let v = try r.bool(["use_kl"]) { c.useKL = v }
        if let v = try r.bool(["use_miner"]) { c.useMiner = v }
        if let v = try r.bool(["is_distance"]) { c.isDistance = v }
        if let v = try r.int(["pos_per_sample"], min: 1) { c.posPerSample = v }
        if let v = try r.int(["neg_per_sample"], min: 1) { c.negPerSample = v }
        if let v = try r.int(["max_seq_length"], min: 2) { c.maxSeqLength = v }
        if let v = try r.double(["grad_norm_clip"], min: 0) { c.gradNormClip = v }
        if let v = try r.double(["weight_decay"], min: 0) { c.weightDecay = v }
        if let v = try r.int(["max_epochs"], min: 1) { c.maxEpochs = v }
        if let e = try r.take(["max_steps"]) {
            if e.value.isNull || e.value.double == .infinity || e.value.scalarText == "inf" { c.maxSteps = nil }
            else { c.maxSteps = try r.intValue(e, min: 1, expected: "a positive integer, .inf or null") }
        }
        if let v = try r.int(["checkpoint_interval"], min: 1) { c.checkpointInterval = v }
        if let v = try r.int(["seed"], min: 0) { c.seed = UInt64(v) }
        if let v = try r.int(["loar_r", "lora_r"], min: 1) { c.loraR = v }
        if let v = try r.double(["lora_alpha"], min: 0, exclusive: true) { c.loraAlpha = v }
        if let v = try r.double(["dropout", "lora_dropout"], min: 0, max: 1) { c.loraDropout = v }
        if let e = try r.take(["encoder_lora_target_modules", "lora_target_modules"]) {
            if e.value.scalarText == "all" || e.value.isNull { c.loraTargetModules = nil }
            else if let s = e.value.scalarText { c.loraTargetModules = [s] }
            else { c.loraTargetModules = try r.stringList(e, expected: "\"all\" or a list of module names") }
        }

        // Reference keys with no effect here.
        let noEffect: [(String, String)] = [
            ("data_names", "the reference's Hugging Face data set names; list files under `data:` instead"),
            ("number_training_samples", "the reference's per-data-set sample cap; every line of each file is used"),
            ("num_workers", "data loading runs in-process"),
            ("encoder_backbone_type", "the family is read from the model file"),
            ("encoder_lora_name", "adapter naming"),
            ("attn_implementation", "GPU attention kernel choice"),
            ("model_revision", "model hub revision naming"),
            ("nodes", "single-process CPU training"), ("devices", "single-process CPU training"),
            ("strategy", "single-process CPU training"), ("sharding_strategy", "single-process CPU training"),
            ("use_cpu_offload", "single-process CPU training"),
            ("precision", "training runs in float32 on the LoRA weights"),
            ("quantization", "quantised base weights are used as stored in the model file"),
            ("eval_batch_size", "no MTEB evaluation during training"),
            ("logger_type", "logging goes to a JSONL file in output_dir"),
            ("logger_name", "logging goes to a JSONL file in output_dir"),
        ]
        for (key, why) in noEffect {
            if let e = try r.take([key]) { r.warnings.append("\(file):\(e.line): \"\(key)\" has no effect in libullme (\(why))") }
        }
        for e in r.remaining {
            var w = "\(file):\(e.line): unknown key \"\(e.key)\" (ignored)"
            if let s = Reader.suggestion(for: e.key) { w += "; did you mean \"\(s)\"?" }
            r.warnings.append(w)
        }

        // Cross-key checks.
        if c.data.isEmpty { throw ULLMEError.format("\(file): no training data: add `data:` with at least one {file, instruction}") }
        if c.minLearningRate > c.learningRate {
            throw ULLMEError.format("\(file): min_learning_rate \(c.minLearningRate) is larger than learning_rate \(c.learningRate)")
        }
        if let g = c.gcChunkSize, g > c.globalBatchSize {
            r.warnings.append("\(file): gc_chunk_size \(g) is larger than global_batch_size \(c.globalBatchSize); the whole batch is one chunk")
        }
        if c.useGen && c.genLossType == nil {
            throw ULLMEError.format("\(file): use_gen is true but gen_loss_type is null")
        }
        if c.useKL && !(c.useGen && c.genLossType != nil && c.genLossType != "sft") {
            throw ULLMEError.format("\(file): use_kl (GRL) needs use_gen: true and a preference gen_loss_type "
                + "(sigmoid, hinge, ipo or kto_pair), not \(c.useGen ? (c.genLossType ?? "null") : "use_gen: false")")
        }
        c.warnings = r.warnings
        return c
    }

    /// The data sets of `data`, loaded with the config's malformed-line policy. Skipped lines are
    /// listed in each data set's `skipped`.
    public func loadDatasets() throws -> [GRLDataset] {
        try data.map {
            try GRLDataset.load(path: $0.file, name: $0.name, instruction: $0.instruction,
                                alignmentInstruction: $0.alignmentInstruction,
                                malformed: skipMalformedLines ? .skip : .fail)
        }
    }

    /// The batch sampler for these data sets with the config's batching keys.
    public func makeSampler(_ datasets: [GRLDataset]) throws -> GRLBatchSampler {
        try GRLBatchSampler(datasets: datasets, batchSize: globalBatchSize, posPerSample: posPerSample,
                            negPerSample: negPerSample, seed: seed, leftovers: dropLast ? .drop : .mix,
                            shortfall: sampleWithReplacement ? .withReplacement : .batchMinimum)
    }
}

/// Takes keys out of a mapping, checking types; what is left over is unknown.
private struct Reader {
    let file: String
    var remaining: [YAMLEntry]
    var warnings: [String] = []

    init(file: String, entries: [YAMLEntry]) { self.file = file; self.remaining = entries }

    static let allKeys: [String] = [
        "model", "encoder_name_or_path", "data", "output_dir", "checkpoint_dir", "checkpoint_file", "only_load_model",
        "pooling", "attention", "log_every", "log_interval", "skip_malformed_lines", "drop_last",
        "sample_with_replacement", "passage_format", "cl_weight", "gen_weight", "kl_weight", "gc_reference_weighting",
        "nonfinite_policy", "inject_nonfinite_steps",
        "activation_checkpointing", "gradient_checkpointing", "weight_storage",
        "learning_rate", "min_learning_rate", "warmpup_proportion", "warmup_proportion", "is_cosine_annealing",
        "global_batch_size", "gc_chunk_size", "temperature", "beta", "label_smoothing", "loss_type",
        "gen_loss_type", "use_gen", "use_kl", "use_miner", "is_distance", "pos_per_sample", "neg_per_sample",
        "max_seq_length", "grad_norm_clip", "weight_decay", "max_epochs", "max_steps", "checkpoint_interval",
        "seed", "loar_r", "lora_r", "lora_alpha", "dropout", "lora_dropout", "encoder_lora_target_modules",
        "lora_target_modules",
    ]

    /// The closest known key within edit distance 2.
    static func suggestion(for key: String) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var prev = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var cur = [i] + Array(repeating: 0, count: b.count)
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                prev = cur
            }
            return a.isEmpty ? b.count : prev[b.count]
        }
        let k = Array(key)
        let best = allKeys.map { ($0, distance(k, Array($0))) }.min { $0.1 < $1.1 }
        return best.flatMap { $0.1 <= 2 ? $0.0 : nil }
    }

    /// Removes and returns the entry for the first of `keys` present (aliases/spellings of one setting).
    /// Two spellings with the same value are fine; with different values, an error.
    mutating func take(_ keys: [String]) throws -> YAMLEntry? {
        var found: [YAMLEntry] = []
        for k in keys {
            if let i = remaining.firstIndex(where: { $0.key == k }) { found.append(remaining.remove(at: i)) }
        }
        for e in found.dropFirst() where e.value.value != found[0].value.value {
            throw ULLMEError.format("\(file):\(e.line): \"\(e.key)\" and \"\(found[0].key)\" (line \(found[0].line)) "
                                    + "are two spellings of one setting with different values")
        }
        return found.first
    }

    func typeError(_ e: YAMLEntry, _ expected: String) -> ULLMEError {
        .format("\(file):\(e.value.line): \"\(e.key)\" must be \(expected), got \(e.value.kindDescription)")
    }

    mutating func bool(_ keys: [String]) throws -> Bool? {
        guard let e = try take(keys) else { return nil }
        guard let v = e.value.bool else { throw typeError(e, "a boolean (true or false)") }
        return v
    }

    func intValue(_ e: YAMLEntry, min: Int, expected: String? = nil) throws -> Int {
        guard let v = e.value.int else { throw typeError(e, expected ?? "an integer") }
        guard v >= min else { throw typeError(e, expected ?? "an integer >= \(min)") }
        return v
    }

    mutating func int(_ keys: [String], min: Int, max: Int? = nil) throws -> Int? {
        guard let e = try take(keys) else { return nil }
        let v = try intValue(e, min: min)
        if let max, v > max { throw typeError(e, "an integer in [\(min), \(max)]") }
        return v
    }

    mutating func double(_ keys: [String], min: Double, max: Double? = nil, exclusive: Bool = false) throws -> Double? {
        guard let e = try take(keys) else { return nil }
        guard let v = e.value.double, v.isFinite else { throw typeError(e, "a number") }
        let range = exclusive ? "> \(min)" : max.map { "in [\(min), \($0)]" } ?? ">= \(min)"
        if exclusive ? !(v > min) : !(v >= min) { throw typeError(e, "a number \(range)") }
        if let max, v > max { throw typeError(e, "a number \(range)") }
        return v
    }

    mutating func stringWithEntry(_ keys: [String]) throws -> (String, YAMLEntry)? {
        guard let e = try take(keys) else { return nil }
        guard let s = e.value.scalarText, !e.value.isNull else { throw typeError(e, "a string") }
        return (s, e)
    }

    mutating func string(_ keys: [String]) throws -> String? { try stringWithEntry(keys)?.0 }

    /// A string or null; nil for both absent and null.
    mutating func optionalString(_ keys: [String]) throws -> String? {
        guard let e = try take(keys) else { return nil }
        if e.value.isNull { return nil }
        guard let s = e.value.scalarText else { throw typeError(e, "a string or null") }
        return s
    }

    func stringList(_ e: YAMLEntry, expected: String) throws -> [String] {
        guard let items = e.value.sequence else { throw typeError(e, expected) }
        return try items.map {
            guard let s = $0.scalarText, !$0.isNull else {
                throw ULLMEError.format("\(file):\($0.line): \"\(e.key)\" entries must be strings, got \($0.kindDescription)")
            }
            return s
        }
    }

    mutating func dataList(_ e: YAMLEntry) throws -> [TrainDataSpec] {
        guard let items = e.value.sequence else {
            throw typeError(e, "a list of {file, instruction, name, alignment_instruction} mappings")
        }
        var specs: [TrainDataSpec] = []
        for (i, item) in items.enumerated() {
            let what = "data[\(i)]"
            guard let m = item.mapping else {
                throw ULLMEError.format("\(file):\(item.line): \"\(what)\" must be a mapping with file and instruction, got \(item.kindDescription)")
            }
            var sub = Reader(file: file, entries: m)
            func need(_ key: String) throws -> String {
                guard let e = try sub.take([key]) else {
                    throw ULLMEError.format("\(file):\(item.line): \"\(what)\" needs \"\(key)\"")
                }
                guard let s = e.value.scalarText, !e.value.isNull else {
                    throw ULLMEError.format("\(file):\(e.value.line): \"\(what).\(key)\" must be a string, got \(e.value.kindDescription)")
                }
                return s
            }
            let path = try need("file")
            let instruction = try need("instruction")
            var spec = TrainDataSpec(file: path, instruction: instruction)
            if sub.remaining.contains(where: { $0.key == "name" }) { spec.name = try need("name") }
            if sub.remaining.contains(where: { $0.key == "alignment_instruction" }) {
                spec.alignmentInstruction = try need("alignment_instruction")
            }
            for x in sub.remaining {
                warnings.append("\(file):\(x.line): unknown key \"\(what).\(x.key)\" (ignored; a data entry has file, "
                                + "instruction, name, alignment_instruction)")
            }
            specs.append(spec)
        }
        return specs
    }
}
