import Glibc

/// Everything a GRL run needs (the YAML config maps onto this; METHOD §2–§7 defaults).
public struct GRLRunSettings: Sendable {
    public struct DataFile: Sendable {
        public var path: String
        public var instruction: String
        public var name: String?
        public var alignmentInstruction: String = GRLTextFormat.passageToQueryInstruction
        public init(path: String, instruction: String, name: String? = nil) {
            self.path = path; self.instruction = instruction; self.name = name
        }
    }
    public var modelPath: String
    public var data: [DataFile]
    public var outputDir: String
    public var batchSize = 16
    public var posPerSample = 1
    public var negPerSample = 1
    public var maxSeqLength = 512
    public var maxEpochs = 1
    public var maxSteps = Int.max
    public var seed: UInt64 = 42
    public var loraRank = 16, loraAlpha: Float = 32, loraDropout: Float = 0.1
    public var loraTargets: Set<String>? = nil
    public var pooling = Pooling.mean
    public var loss = GRLLossConfig()
    public var optimizer = OptimizerSettings()
    public var attention = AttentionMode.bidirectional
    public var checkpointInterval = 100   // steps; 0 = only at the end
    public var skipMalformedLines = false
    public var dropLast = false              // drop leftover partial batches (strictly single-dataset batches)
    public var sampleWithReplacement = false // fill pos/neg per sample with replacement instead of the batch minimum
    public var passageFormat = PassageFormat.query // positives/negatives: query format (reference) or candidate format
    public var nonfinitePolicy = NonFinitePolicy.stop
    public var maxConsecutiveNonFinite = 10     // skip policy: stop after this many non-finite steps in a row (0: never)
    public var injectNonFiniteSteps: Set<Int> = []  // testing hook: steps (1-based) given a NaN loss and gradient
    public var threads = 0                      // compute threads (0: every online core)
    public var activationCheckpointing = false // recompute each layer's activations in backward (less memory)
    /// The frozen base's weights when the trainer loads the model; nil: stored for a .gguf file (QLoRA-style:
    /// the quantised rows, no float32 copy), dense otherwise.
    public var weightStorage: WeightStorage? = nil
    public init(modelPath: String, data: [DataFile], outputDir: String) {
        self.modelPath = modelPath; self.data = data; self.outputDir = outputDir
    }

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
        [checkpointPath, logPath, adapterDir].filter { access($0, F_OK) == 0 }
    }

    /// From a YAML training config (TrainConfig: the reference's keys plus ours).
    public init(config c: TrainConfig) throws {
        // No model: the embedded default (SmolLM2-135M-Instruct), as `ullme embed` does.
        self.init(modelPath: c.model ?? DefaultModel.path, data: c.data.map {
            var d = DataFile(path: $0.file, instruction: $0.instruction, name: $0.name)
            d.alignmentInstruction = $0.alignmentInstruction
            return d
        }, outputDir: c.outputDir)
        batchSize = c.globalBatchSize; posPerSample = c.posPerSample; negPerSample = c.negPerSample
        maxSeqLength = c.maxSeqLength; maxEpochs = c.maxEpochs; maxSteps = c.maxSteps ?? .max; seed = c.seed
        loraRank = c.loraR; loraAlpha = Float(c.loraAlpha); loraDropout = Float(c.loraDropout)
        loraTargets = c.loraTargetModules.map(Set.init)
        pooling = c.pooling; attention = c.attention
        checkpointInterval = c.checkpointInterval; skipMalformedLines = c.skipMalformedLines
        dropLast = c.dropLast; sampleWithReplacement = c.sampleWithReplacement; passageFormat = c.passageFormat
        nonfinitePolicy = c.nonfinitePolicy; maxConsecutiveNonFinite = c.maxConsecutiveNonFinite
        injectNonFiniteSteps = Set(c.injectNonFiniteSteps)
        activationCheckpointing = c.activationCheckpointing; threads = c.threads
        weightStorage = c.weightStorage
        guard let kind = ContrastiveLossKind(referenceName: c.lossType) else {
            throw ULLMEError.argument("config: loss_type \"\(c.lossType)\" (expected NTXentLoss or SupConLoss)")
        }
        loss.contrastive.kind = kind
        loss.contrastive.temperature = c.temperature
        loss.contrastive.isDistance = c.isDistance
        loss.contrastive.useMiner = c.useMiner
        loss.useGen = c.useGen
        loss.useKL = c.useKL
        if let g = c.genLossType {
            guard let kind = GenLossKind(referenceName: g) else {
                throw ULLMEError.argument("config: gen_loss_type \"\(g)\" (expected sft, sigmoid, hinge, ipo or kto_pair)")
            }
            loss.gen.kind = kind
        }
        loss.gen.beta = c.beta
        loss.gen.labelSmoothing = c.labelSmoothing
        loss.chunkSize = c.gcChunkSize ?? c.globalBatchSize
        loss.referenceChunkWeighting = c.gcReferenceWeighting
        loss.weightCL = Float(c.clWeight); loss.weightGen = Float(c.genWeight); loss.weightKL = Float(c.klWeight)
        optimizer.learningRate = c.learningRate; optimizer.minLearningRate = c.minLearningRate
        optimizer.warmupProportion = c.warmupProportion; optimizer.cosineAnnealing = c.isCosineAnnealing
        optimizer.gradClip = c.gradNormClip; optimizer.weightDecay = c.weightDecay
    }
}

/// One logged optimiser step.
public struct GRLLogRecord: Sendable {
    public var step: Int, totalSteps: Int, epoch: Int
    public var losses: GRLStepLosses
    public var learningRate: Double
    public var gradNorm: Float
    public var seconds: Double
    /// nil for a normal step. Else what was not finite ("loss", "gradient norm", "updated parameters"):
    /// the update was not applied, and the run continues or stops after this record (`policy`).
    public var nonFinite: String? = nil
    public var policy: NonFinitePolicy = .stop
    public var tokensPerSecond: Double { seconds > 0 ? Double(losses.tokens) / seconds : 0 }

    /// One JSON line (the CLI's log file). Non-finite numbers are written as null (JSON has no NaN); a
    /// non-finite step adds "nonfinite" (what) and "action" ("skipped" or "stopped").
    public var json: String {
        func n(_ x: Float) -> String { x.isFinite ? "\(x)" : "null" }
        func n(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
        var line = "{\"step\":\(step),\"epoch\":\(epoch),\"loss\":\(n(losses.total)),\"cl\":\(n(losses.contrastive)),\"gen\":\(n(losses.generative)),"
            + "\"kl\":\(n(losses.kl)),\"lr\":\(n(learningRate)),\"grad_norm\":\(n(gradNorm)),\"tokens\":\(losses.tokens),"
            + "\"seconds\":\(n(seconds)),\"tokens_per_s\":\(n(tokensPerSecond))"
        if let nonFinite {
            line += ",\"nonfinite\":\(jsonString(nonFinite)),\"action\":\"\(policy == .skip ? "skipped" : "stopped")\""
        }
        return line + "}"
    }

    /// The one-line report of a non-finite step (CLI stderr, error messages).
    public var nonFiniteDescription: String? {
        guard let nonFinite else { return nil }
        return "step \(step): non-finite \(nonFinite) (loss \(losses.total): cl \(losses.contrastive) gen \(losses.generative) "
            + "kl \(losses.kl); gradient norm \(gradNorm)): update not applied, "
            + (policy == .skip ? "step skipped (nonfinite_policy: skip)" : "run stopped (nonfinite_policy: stop)")
    }
}

/// The GRL training loop: data → tokenised batches → GRL step (GradCache) → clip, AdamW, schedule →
/// periodic atomic checkpoints (LoRA, head, AdamW moments, step) and a final PEFT adapter export.
/// `resume` continues bit-identically: batches are a function of (seed, epoch, step) and dropout masks of
/// (seed, step, example), so restoring the step and optimiser state is all that is needed.
public final class GRLTrainer {
    public let settings: GRLRunSettings
    public let model: Model
    public let session: TrainingSession
    public let sampler: GRLBatchSampler
    public let totalSteps: Int
    /// The MPI ranks this process trains with (nil: alone). See DataParallel.swift.
    public let world: DataParallel?
    /// Rank 0 (or a single process) writes the log, checkpoints and the adapter.
    public var isWriter: Bool { (world?.rank ?? 0) == 0 }

    public init(settings: GRLRunSettings, model: Model? = nil) throws {
        self.settings = settings
        world = try DataParallel.current()
        if settings.threads > 0 { setBLASThreads(settings.threads) }
        let model = try model ?? Model.load(path: settings.modelPath, storage: settings.weightStorage
                                                ?? (settings.modelPath.hasSuffix(".gguf") ? .stored : .dense),
                                            precision: .exact)   // training is exact whatever $ULLME_PRECISION says
        self.model = model
        guard model.tokenizer != nil else { throw ULLMEError.state("the model has no tokenizer") }
        guard settings.maxSeqLength >= 2 else { throw ULLMEError.argument("max_seq_length must be >= 2") }
        let datasets = try settings.data.map {
            try GRLDataset.load(path: $0.path, name: $0.name, instruction: $0.instruction,
                                alignmentInstruction: $0.alignmentInstruction,
                                malformed: settings.skipMalformedLines ? .skip : .fail)
        }
        // An instruction that fills max_seq_length cuts every text away: all sequences of a data set would be
        // identical and the contrastive loss would have no gradient. Refuse the run instead of training on nothing.
        let limit = min(settings.maxSeqLength, model.config.maxPositions)
        for d in settings.data {
            let prefix = GRLTextFormat.training(instruction: d.instruction, text: "")
            let n = try model.promptTokens(Array(prefix.utf8), maxLength: Int.max / 2).ids.count
            if n >= limit {
                throw ULLMEError.argument("\(d.path): the instruction takes \(n) of the \(limit) tokens of max_seq_length, so every "
                                          + "text would be truncated away; shorten the instruction or raise max_seq_length")
            }
        }
        sampler = try GRLBatchSampler(datasets: datasets, batchSize: settings.batchSize, posPerSample: settings.posPerSample,
                                      negPerSample: settings.negPerSample, seed: settings.seed,
                                      leftovers: settings.dropLast ? .drop : .mix,
                                      shortfall: settings.sampleWithReplacement ? .withReplacement : .batchMinimum)
        totalSteps = min(settings.maxSteps, sampler.stepsPerEpoch * settings.maxEpochs)
        var opt = settings.optimizer
        opt.stepsPerEpoch = sampler.stepsPerEpoch
        opt.maxEpochs = settings.maxEpochs
        opt.maxSteps = settings.maxSteps
        let lora = LoRAModel(config: model.config, rank: settings.loraRank, alpha: settings.loraAlpha, dropout: settings.loraDropout,
                             seed: settings.seed, targetNames: settings.loraTargets)
        let tm = TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: settings.seed),
                               pooling: settings.pooling)
        tm.attention = settings.attention
        tm.activationCheckpointing = settings.activationCheckpointing
        session = try TrainingSession(model: tm, settings: opt)
    }

    /// Lines the data loader skipped (with skipMalformedLines), "file:line: reason".
    public var skippedLines: [String] { sampler.datasets.flatMap { $0.skipped.map(\.description) } }

    /// Tokenises a batch: contrastive texts in the training (query) format, generation examples whose
    /// labels cover every token; everything truncated to max_seq_length.
    func tokenize(_ batch: GRLBatch) throws -> [GRLTokenizedExample] {
        _ = try model.requireTokenizer()
        func ids(_ text: String) throws -> [Int32] {
            // Reference: tokenizer(text, truncation=True, max_length) with its default special tokens.
            try model.promptTokens(Array(text.utf8), maxLength: min(settings.maxSeqLength, model.config.maxPositions)).ids
        }
        return try batch.examples.map { ex in
            let gen = try ex.generationTexts.map(ids)
            return GRLTokenizedExample(sequences: try ex.contrastiveTexts(passageFormat: settings.passageFormat).map(ids), generation: gen, generationLabels: gen,
                                       index: ex.index, label: ex.label)
        }
    }

    public var logPath: String { settings.logPath }

    /// Runs from the current step to the end. `log` receives every step; returning false stops after it
    /// (with a checkpoint). Returns the records of the steps run.
    ///
    /// A step whose loss, gradient norm or updated parameters are not finite is not applied (see
    /// `TrainingSession.optimizerStep(lossIsFinite:advanceWhenSkipped:)`); it is logged with `nonFinite`
    /// set, then `nonfinitePolicy` skips it or stops the run: the last good state is written as the
    /// checkpoint (if newer than the one on disk) and `.state` is thrown naming the step.
    /// Data-parallel (world != nil): every rank runs this; a failure on one rank aborts them all (MPI_Abort),
    /// and the ranks stop together when any `log` returns false (or at a non-finite step under `stop`).
    @discardableResult
    public func run(log: (GRLLogRecord) -> Bool = { _ in true }) throws -> [GRLLogRecord] {
        guard let world else { return try runSteps(log: log) }
        do {
            return try runSteps(log: log)
        } catch ULLMEError.cancelled {
            throw ULLMEError.cancelled
        } catch {
            fputs("ullme: rank \(world.rank): \(error); aborting all \(world.size) ranks\n", stderr)
            world.abort(1)
        }
    }

    private func runSteps(log: (GRLLogRecord) -> Bool) throws -> [GRLLogRecord] {
        var records: [GRLLogRecord] = []
        var logFile: UnsafeMutablePointer<FILE>? = nil
        if isWriter {
            try makeDirectory(settings.outputDir)
            removeStaleCheckpointTemporaries()
            if session.step > 0 { try trimLog(toStep: session.step) }
            guard let f = fopen(logPath, session.step == 0 ? "w" : "a") else {
                throw ULLMEError.io("\(logPath): cannot open the log: \(errnoDescription(errno))")
            }
            logFile = f
        }
        defer { if let logFile { fclose(logFile) } }
        var checkpointStep = session.step  // the step of the checkpoint on disk (or the one resumed from)
        var nonFiniteRun = 0               // non-finite steps in a row
        while session.step < totalSteps {
            let step = session.step
            let epoch = step / sampler.stepsPerEpoch
            let batch = sampler.batch(epoch: epoch, step: step % sampler.stepsPerEpoch)
            let start = monotonicSeconds()
            let examples = try tokenize(batch)
            var losses = try session.model.grlStep(examples, P: batch.positivesPerExample, N: batch.negativesPerExample,
                                                   config: settings.loss, grads: &session.grads, world: world)
            if settings.injectNonFiniteSteps.contains(step + 1) {
                losses.total = .nan
                if !session.grads.head.b2.isEmpty { session.grads.head.b2[0] = .nan }
            }
            var lossIsFinite = losses.total.isFinite && losses.contrastive.isFinite && losses.generative.isFinite && losses.kl.isFinite
            if let world {  // every rank takes the same decision
                var bad = [lossIsFinite ? 0.0 : 1.0]
                try world.allreduceSum(&bad)
                lossIsFinite = bad[0] == 0
            }
            let outcome = session.optimizerStep(lossIsFinite: lossIsFinite, advanceWhenSkipped: settings.nonfinitePolicy == .skip)
            nonFiniteRun = outcome.nonFinite == nil ? 0 : nonFiniteRun + 1
            let cap = settings.maxConsecutiveNonFinite
            let tooManySkipped = settings.nonfinitePolicy == .skip && cap > 0 && nonFiniteRun >= cap
            var record = GRLLogRecord(step: step + 1, totalSteps: totalSteps, epoch: epoch, losses: losses,
                                      learningRate: outcome.learningRate, gradNorm: outcome.gradNorm,
                                      seconds: monotonicSeconds() - start)
            record.nonFinite = outcome.nonFinite
            record.policy = tooManySkipped ? .stop : settings.nonfinitePolicy
            records.append(record)
            if let logFile, fputs(record.json + "\n", logFile) < 0 || fflush(logFile) != 0 {
                let e = errno
                // The log is the run's record: failing to write it (disk full) stops the run; the checkpoint
                // on disk is the previous one, intact.
                throw ULLMEError.io("\(logPath): cannot append step \(step + 1) to the log: \(errnoDescription(e)); "
                                    + "the checkpoint \(checkpointPath) is from step \(checkpointStep)")
            }
            var keepGoing = log(record)
            if let world {  // stop together: any rank's callback may cancel
                var stop = [keepGoing ? 0.0 : 1.0]
                try world.allreduceSum(&stop)
                keepGoing = stop[0] == 0
            }
            if outcome.nonFinite != nil && (settings.nonfinitePolicy == .stop || tooManySkipped) {
                // The parameters are the last good ones (under stop session.step did not advance either).
                if session.step > checkpointStep {
                    if isWriter { try saveCheckpoint() }
                    checkpointStep = session.step
                }
                if let world { var sync = [0.0]; try world.allreduceSum(&sync) }  // the writer's checkpoint first
                let why = tooManySkipped ? "; \(nonFiniteRun) non-finite steps in a row (max_consecutive_nonfinite: \(cap)), the run has diverged" : ""
                throw ULLMEError.state("\(record.nonFiniteDescription!)\(why); the checkpoint \(checkpointPath) holds step \(checkpointStep) "
                                       + (tooManySkipped ? "(lower the learning rate, or raise max_consecutive_nonfinite)"
                                                         : "(set nonfinite_policy: skip to skip such steps)"))
            }
            let interval = settings.checkpointInterval
            if !keepGoing || (interval > 0 && session.step % interval == 0) || session.step == totalSteps {
                if isWriter { try saveCheckpoint() }
                checkpointStep = session.step
            }
            if !keepGoing { throw ULLMEError.cancelled }
        }
        guard isWriter else { return records }
        try AdapterIO.export(session.model.lora, head: session.model.head, config: model.config,
                             to: settings.adapterDir, baseModelNameOrPath: settings.modelPath)
        return records
    }

    // MARK: - Checkpoints

    var checkpointPath: String { settings.checkpointPath }

    /// Writes LoRA A/B, the head, AdamW's moments and the step into one safetensors file, atomically
    /// (temp file + fsync + rename): an interrupted write leaves the previous checkpoint intact. Refuses
    /// (`.state`) to write a non-finite value; a failed write (`.io`, naming the file and errno, e.g.
    /// ENOSPC) removes its temporary file and leaves the previous checkpoint intact.
    public func saveCheckpoint() throws {
        var tensors: [SafetensorsWriter.Tensor] = []
        let params = TrainingSession.parameters(session.model)
        guard allFinite(params), allFinite(session.optimizer.expAvg), allFinite(session.optimizer.expAvgSq) else {
            throw ULLMEError.state("\(checkpointPath): not written at step \(session.step): the parameters or AdamW moments are not finite")
        }
        for (i, p) in params.enumerated() {
            tensors.append(.init(name: "param.\(i)", shape: [p.count], data: p))
            tensors.append(.init(name: "adam_m.\(i)", shape: [p.count], data: session.optimizer.expAvg[i]))
            tensors.append(.init(name: "adam_v.\(i)", shape: [p.count], data: session.optimizer.expAvgSq[i]))
        }
        try SafetensorsWriter.write(tensors, metadata: ["step": "\(session.step)", "adam_step": "\(session.optimizer.stepCount)",
                                                       "seed": "\(settings.seed)", "format": "ullme-grl-checkpoint-1"],
                                    to: checkpointPath)
    }

    /// Restores the latest checkpoint of `outputDir` if there is one; returns the step it resumes from.
    @discardableResult
    public func resumeIfPossible() throws -> Int {
        guard access(checkpointPath, R_OK) == 0 else { return 0 }
        let file = try SafetensorsFile(file: MappedFile(path: checkpointPath))
        guard let stepText = file.metadata["step"], let step = Int(stepText),
              let adamText = file.metadata["adam_step"], let adamStep = Int(adamText) else {
            throw ULLMEError.format("\(checkpointPath): not a GRL checkpoint (no step metadata)")
        }
        var params = TrainingSession.parameters(session.model)
        var m: [[Float]] = [], v: [[Float]] = []
        for i in params.indices {
            func read(_ name: String) throws -> [Float] {
                guard let t = file.tensor(named: name), t.count == params[i].count else {
                    throw ULLMEError.format("\(checkpointPath): tensor \(name) missing or of the wrong size (different model or LoRA settings?)")
                }
                return try t.toFloat32()
            }
            params[i] = try read("param.\(i)")
            m.append(try read("adam_m.\(i)")); v.append(try read("adam_v.\(i)"))
        }
        guard allFinite(params), allFinite(m), allFinite(v) else {
            throw ULLMEError.format("\(checkpointPath): holds non-finite values")
        }
        session.restore(parameters: params, expAvg: m, expAvgSq: v, optimizerSteps: adamStep, step: step)
        return step
    }
}

extension GRLTrainer {
    /// On resume: keeps the log's complete lines up to `step` (the checkpoint's) and drops the rest — steps
    /// run after the checkpoint by the interrupted run (they are run again) and a line cut by a kill or a
    /// full disk — so that log.jsonl holds each step once. Rewritten atomically.
    func trimLog(toStep step: Int) throws {
        guard access(logPath, F_OK) == 0 else { return }
        let file = try MappedFile(path: logPath)
        var kept: [UInt8] = []
        var start = 0
        let bytes = file.bytes
        let prefix = Array("{\"step\":".utf8)
        while start < bytes.count {
            guard let nl = bytes[start...].firstIndex(of: 0x0A) else { break }  // a cut last line: dropped
            let line = bytes[start..<nl]
            start = nl + 1
            guard line.count > prefix.count, line.starts(with: prefix) else { continue }
            let digits = line.dropFirst(prefix.count).prefix { $0 >= 0x30 && $0 <= 0x39 }
            guard let n = Int(String(decoding: digits, as: UTF8.self)), n <= step else { continue }
            kept += line
            kept.append(0x0A)
        }
        if kept.count != bytes.count { try writeFileAtomically(logPath, kept) }
    }

    /// Removes the temporary files of atomic writes (".NAME.tmp-XXXXXX", see `writeFileAtomically`) that a
    /// killed run left in output_dir and output_dir/adapter — of the checkpoint, of the log (rewritten by
    /// `trimLog` on resume) and of the adapter export: they are never read, and a checkpoint's holds a
    /// checkpoint's worth of disk.
    func removeStaleCheckpointTemporaries() {
        for dir in [settings.outputDir, settings.adapterDir] {
            for name in directoryEntries(dir) ?? [] {
                let u = Array(name.utf8)
                guard u.count > 12, u[0] == UInt8(ascii: "."), Array(u[(u.count - 11)..<(u.count - 6)]) == Array(".tmp-".utf8) else { continue }
                unlink(dir + "/" + name)
            }
        }
    }
}

/// "No space left on device (errno 28, ENOSPC)".
func errnoDescription(_ e: Int32) -> String {
    let names: [Int32: String] = [ENOSPC: "ENOSPC", EFBIG: "EFBIG", EDQUOT: "EDQUOT", EIO: "EIO", EACCES: "EACCES",
                                  EROFS: "EROFS", ENOENT: "ENOENT", EPERM: "EPERM", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR"]
    return "\(String(cString: strerror(e))) (errno \(e)\(names[e].map { ", " + $0 } ?? ""))"
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// The names in a directory (without "." and ".."), or nil when it cannot be opened.
public func directoryEntries(_ path: String) -> [String]? {
    guard let d = opendir(path) else { return nil }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Removes a file or a directory tree (rm -r; a missing path is fine). Throws `.io` naming what stayed.
public func removeTree(_ path: String) throws {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for name in directoryEntries(path) ?? [] { try removeTree(path + "/" + name) }
        guard rmdir(path) == 0 else { throw ULLMEError.io("\(path): cannot remove: \(errnoDescription(errno))") }
    } else if unlink(path) != 0 {
        throw ULLMEError.io("\(path): cannot remove: \(errnoDescription(errno))")
    }
}

func makeDirectory(_ path: String) throws {
    var st = stat()
    if stat(path, &st) == 0 { return }
    // mkdir -p
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        prefix += part + "/"
        if stat(prefix, &st) != 0 && mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw ULLMEError.io("\(prefix): \(String(cString: strerror(errno)))")
        }
    }
}
