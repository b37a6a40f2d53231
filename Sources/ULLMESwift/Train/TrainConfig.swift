import FoundationEssentials

/// What a training step with a non-finite loss, gradient norm or updated parameter does (YAML
/// `nonfinite_policy`).
public enum NonFinitePolicy: String, Sendable, Equatable, CaseIterable {
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

/// Everything a GRL run needs, and the one place its defaults are written: the YAML file (`parse`), the CLI,
/// the C API (`ullme_train_run`, `ullme_trainer_default_params`) and Python all start from `TrainConfig()`.
/// The YAML keys, their aliases, checks and documentation are the table `TrainConfig.keys`
/// (TrainConfigKeys.swift); docs/training-config.md is generated from it (`ullme train --keys`).
public struct TrainConfig: Sendable {
    // The run
    /// Model path (GGUF file or HF directory); nil: the default model.
    public var model: String? = nil
    public var data: [TrainDataSpec] = []
    public var outputDir: String = "runs/grl"
    public var logEvery = 1
    public var threads = 0                          // 0: every online core
    public var seed: UInt64 = 777

    // Batches
    public var batchSize = 16
    public var posPerSample = 1
    public var negPerSample = 1
    public var maxSeqLength = 512
    public var skipMalformedLines = false
    public var dropLast = false                     // drop leftover partial batches (strictly single-dataset batches)
    public var sampleWithReplacement = false        // fill pos/neg per sample with replacement instead of the batch minimum
    public var passageFormat = PassageFormat.query  // positives/negatives: query format (reference) or candidate format

    // The model being trained
    public var pooling = Pooling.mean
    public var attention = AttentionMode.bidirectional
    /// The frozen base's weights; nil: stored for a .gguf file (QLoRA-style: the quantised rows, no float32
    /// copy), dense otherwise.
    public var weightStorage: WeightStorage? = nil
    public var activationCheckpointing = false
    /// The frozen base's products: exact float32 (default) or bf16 (TrainingModel.basePrecision).
    public var basePrecision = TrainingPrecision.exact
    public var loraRank = 16
    public var loraAlpha: Float = 32
    public var loraDropout: Float = 0.1
    /// nil: every linear layer of the family ("all").
    public var loraTargets: Set<String>? = nil

    // Objective and optimiser (their defaults live in their own types)
    public var loss = GRLLossConfig()
    public var optimizer = OptimizerSettings()

    // Non-finite steps
    public var nonfinitePolicy = NonFinitePolicy.stop
    public var maxConsecutiveNonFinite = 10         // skip policy: stop after this many non-finite steps in a row (0: never)
    public var injectNonFiniteSteps: Set<Int> = []  // testing hook: steps (1-based) given a NaN loss and gradient
    public var checkpointInterval = 1000            // steps; 0 = only at the end

    /// Warnings from reading the file (unknown keys, reference keys without effect), "file:line: text".
    public var warnings: [String] = []

    public init() {}

    /// A run of `data` on the model at `modelPath` writing into `outputDir`, every other setting the default.
    public init(modelPath: String?, data: [TrainDataSpec], outputDir: String) {
        self.model = modelPath; self.data = data; self.outputDir = outputDir
    }

    /// The model file or directory the run trains (the embedded default when `model` is nil).
    public var modelPath: String { model ?? DefaultModel.path }

    // What a run writes into outputDir.
    /// The JSONL log (one GRLLogRecord.json per step; appended to when resuming).
    public var logPath: String { outputDir + "/log.jsonl" }
    /// The atomic checkpoint (LoRA, head, AdamW state, step) that resuming reads.
    public var checkpointPath: String { outputDir + "/checkpoint.safetensors" }
    /// The PEFT adapter exported at the end.
    public var adapterDir: String { outputDir + "/adapter" }
    /// The loss curve `ullme train` draws from the log.
    public var lossPlotPath: String { outputDir + "/losses.png" }
    /// The files of an earlier run in outputDir (checkpoint, log, adapter) that starting afresh replaces.
    public var existingRunFiles: [String] {
        [checkpointPath, logPath, adapterDir].filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// Reads a YAML config file.
    public static func load(path: String) throws -> TrainConfig {
        let f = try MappedFile(path: path)
        guard let text = String(validating: f.bytes, as: UTF8.self) else {
            throw ULLMEError.format("\(path): not valid UTF-8")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses a YAML config (`keys` says what each key means); `file` names the source in messages.
    public static func parse(yaml: String, file: String = "<config>") throws -> TrainConfig {
        guard let root = try YAMLNode.parse(yaml, file: file) else {
            throw ULLMEError.format("\(file): empty config")
        }
        guard let entries = root.mapping else {
            throw ULLMEError.format("\(file):\(root.line): the config must be a mapping of keys to values, got \(root.kindDescription)")
        }
        var r = TrainConfigReader(file: file, entries: entries)
        var c = TrainConfig()
        for key in keys {
            guard let e = try r.take(key.names) else { continue }
            if let why = key.noEffect {
                r.warnings.append("\(file):\(e.line): \"\(e.key)\" has no effect in libullme (\(why))")
            } else {
                try key.read(&r, e, &c)
            }
        }
        for e in r.remaining {
            var w = "\(file):\(e.line): unknown key \"\(e.key)\" (ignored)"
            if let s = suggestion(for: e.key) { w += "; did you mean \"\(s)\"?" }
            r.warnings.append(w)
        }
        if let g = c.loss.chunkSize, g > c.batchSize {
            r.warnings.append("\(file): gc_chunk_size \(g) is larger than global_batch_size \(c.batchSize); the whole batch is one chunk")
        }
        c.warnings = r.warnings
        try c.validate(file: file)
        return c
    }

    /// Checks across keys (each key's own range is checked when it is read).
    func validate(file: String) throws {
        if data.isEmpty { throw ULLMEError.format("\(file): no training data: add `data:` with at least one {file, instruction}") }
        if optimizer.minLearningRate > optimizer.learningRate {
            throw ULLMEError.format("\(file): min_learning_rate \(optimizer.minLearningRate) is larger than learning_rate \(optimizer.learningRate)")
        }
        if loss.useKL && !(loss.useGen && loss.gen.kind != .sft) {
            throw ULLMEError.format("\(file): use_kl (GRL) needs use_gen: true and a preference gen_loss_type "
                + "(sigmoid, hinge, ipo or kto_pair), not \(loss.useGen ? loss.gen.kind.rawValue : "use_gen: false")")
        }
    }

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
        let best = keys.flatMap(\.names).map { ($0, distance(k, Array($0))) }.min { $0.1 < $1.1 }
        return best.flatMap { $0.1 <= 2 ? $0.0 : nil }
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
        try GRLBatchSampler(datasets: datasets, batchSize: batchSize, posPerSample: posPerSample,
                            negPerSample: negPerSample, seed: seed, leftovers: dropLast ? .drop : .mix,
                            shortfall: sampleWithReplacement ? .withReplacement : .batchMinimum)
    }
}

/// Takes keys out of a YAML mapping and reads their values with type and range checks; what is left over
/// is unknown.
struct TrainConfigReader {
    let file: String
    var remaining: [YAMLEntry]
    var warnings: [String] = []

    init(file: String, entries: [YAMLEntry]) { self.file = file; self.remaining = entries }

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

    func bool(_ e: YAMLEntry) throws -> Bool {
        guard let v = e.value.bool else { throw typeError(e, "a boolean (true or false)") }
        return v
    }

    func int(_ e: YAMLEntry, min: Int, max: Int? = nil, expected: String? = nil) throws -> Int {
        let range = max.map { "an integer in [\(min), \($0)]" } ?? "an integer >= \(min)"
        guard let v = e.value.int else { throw typeError(e, expected ?? "an integer") }
        guard v >= min, v <= (max ?? .max) else { throw typeError(e, expected ?? range) }
        return v
    }

    func double(_ e: YAMLEntry, min: Double, max: Double? = nil, exclusive: Bool = false) throws -> Double {
        guard let v = e.value.double, v.isFinite else { throw typeError(e, "a number") }
        let range = exclusive ? "> \(min)" : max.map { "in [\(min), \($0)]" } ?? ">= \(min)"
        if exclusive ? !(v > min) : !(v >= min) { throw typeError(e, "a number \(range)") }
        if let max, v > max { throw typeError(e, "a number \(range)") }
        return v
    }

    func string(_ e: YAMLEntry) throws -> String {
        guard let s = e.value.scalarText, !e.value.isNull else { throw typeError(e, "a string") }
        return s
    }

    /// A string or null (nil).
    func optionalString(_ e: YAMLEntry) throws -> String? {
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

    /// A step >= 1 or a list of them.
    func steps(_ e: YAMLEntry) throws -> Set<Int> {
        if e.value.isNull { return [] }
        if e.value.int != nil { return [try int(e, min: 1, expected: "a step >= 1 or a list of them")] }
        guard let items = e.value.sequence else { throw typeError(e, "a list of steps >= 1") }
        return Set(try items.map {
            guard let v = $0.int, v >= 1 else {
                throw ULLMEError.format("\(file):\($0.line): \"\(e.key)\" entries must be integers >= 1, got \($0.kindDescription)")
            }
            return v
        })
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
            var sub = TrainConfigReader(file: file, entries: m)
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
