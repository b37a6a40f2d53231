import Glibc

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
    public let config: TrainConfig
    public let model: Model
    public let session: TrainingSession
    public let sampler: GRLBatchSampler
    public let totalSteps: Int
    /// The MPI ranks this process trains with (nil: alone). See DataParallel.swift.
    public let world: DataParallel?
    /// Rank 0 (or a single process) writes the log, checkpoints and the adapter.
    public var isWriter: Bool { (world?.rank ?? 0) == 0 }

    public init(config: TrainConfig, model: Model? = nil) throws {
        self.config = config
        world = try DataParallel.current()
        if config.threads > 0 { setBLASThreads(config.threads) }
        let path = config.modelPath
        let model = try model ?? Model.load(path: path, storage: config.weightStorage ?? (path.hasSuffix(".gguf") ? .stored : .dense),
                                            precision: .exact)   // training is exact whatever $ULLME_PRECISION says
        self.model = model
        guard model.tokenizer != nil else { throw ULLMEError.state("the model has no tokenizer") }
        guard config.maxSeqLength >= 2 else { throw ULLMEError.argument("max_seq_length must be >= 2") }
        let datasets = try config.loadDatasets()
        // An instruction that fills max_seq_length cuts every text away: all sequences of a data set would be
        // identical and the contrastive loss would have no gradient. Refuse the run instead of training on nothing.
        let limit = min(config.maxSeqLength, model.config.maxPositions)
        for d in config.data {
            let prefix = GRLTextFormat.training(instruction: d.instruction, text: "")
            let n = try model.promptTokens(Array(prefix.utf8), maxLength: Int.max / 2).ids.count
            if n >= limit {
                throw ULLMEError.argument("\(d.file): the instruction takes \(n) of the \(limit) tokens of max_seq_length, so every "
                                          + "text would be truncated away; shorten the instruction or raise max_seq_length")
            }
        }
        sampler = try config.makeSampler(datasets)
        totalSteps = min(config.optimizer.maxSteps, sampler.stepsPerEpoch * config.optimizer.maxEpochs)
        session = try TrainingSession(model: model, config: config, stepsPerEpoch: sampler.stepsPerEpoch)
    }

    /// Lines the data loader skipped (with skipMalformedLines), "file:line: reason".
    public var skippedLines: [String] { sampler.datasets.flatMap { $0.skipped.map(\.description) } }

    /// Tokenises a batch: contrastive texts in the training (query) format, generation examples whose
    /// labels cover every token; everything truncated to max_seq_length.
    func tokenize(_ batch: GRLBatch) throws -> [GRLTokenizedExample] {
        _ = try model.requireTokenizer()
        func ids(_ text: String) throws -> [Int32] {
            // Reference: tokenizer(text, truncation=True, max_length) with its default special tokens.
            try model.promptTokens(Array(text.utf8), maxLength: min(config.maxSeqLength, model.config.maxPositions)).ids
        }
        return try batch.examples.map { ex in
            let gen = try ex.generationTexts.map(ids)
            return GRLTokenizedExample(sequences: try ex.contrastiveTexts(passageFormat: config.passageFormat).map(ids), generation: gen, generationLabels: gen,
                                       index: ex.index, label: ex.label)
        }
    }

    public var logPath: String { config.logPath }

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
            try makeDirectory(config.outputDir)
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
                                                   config: config.loss, grads: &session.grads, world: world)
            if config.injectNonFiniteSteps.contains(step + 1) {
                losses.total = .nan
                if !session.grads.head.b2.isEmpty { session.grads.head.b2[0] = .nan }
            }
            var lossIsFinite = losses.total.isFinite && losses.contrastive.isFinite && losses.generative.isFinite && losses.kl.isFinite
            if let world {  // every rank takes the same decision
                var bad = [lossIsFinite ? 0.0 : 1.0]
                try world.allreduceSum(&bad)
                lossIsFinite = bad[0] == 0
            }
            let outcome = session.optimizerStep(lossIsFinite: lossIsFinite, advanceWhenSkipped: config.nonfinitePolicy == .skip)
            nonFiniteRun = outcome.nonFinite == nil ? 0 : nonFiniteRun + 1
            let cap = config.maxConsecutiveNonFinite
            let tooManySkipped = config.nonfinitePolicy == .skip && cap > 0 && nonFiniteRun >= cap
            var record = GRLLogRecord(step: step + 1, totalSteps: totalSteps, epoch: epoch, losses: losses,
                                      learningRate: outcome.learningRate, gradNorm: outcome.gradNorm,
                                      seconds: monotonicSeconds() - start)
            record.nonFinite = outcome.nonFinite
            record.policy = tooManySkipped ? .stop : config.nonfinitePolicy
            records.append(record)
            let logged = (step + 1) % config.logEvery == 0 || step + 1 == totalSteps || record.nonFinite != nil
            if let logFile, logged, fputs(record.json + "\n", logFile) < 0 || fflush(logFile) != 0 {
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
            if outcome.nonFinite != nil && (config.nonfinitePolicy == .stop || tooManySkipped) {
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
            let interval = config.checkpointInterval
            if !keepGoing || (interval > 0 && session.step % interval == 0) || session.step == totalSteps {
                if isWriter { try saveCheckpoint() }
                checkpointStep = session.step
            }
            if !keepGoing { throw ULLMEError.cancelled }
        }
        guard isWriter else { return records }
        try AdapterIO.export(session.model.lora, head: session.model.head, config: model.config,
                             to: config.adapterDir, baseModelNameOrPath: config.modelPath)
        return records
    }

    // MARK: - Checkpoints

    var checkpointPath: String { config.checkpointPath }

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
                                                       "seed": "\(config.seed)", "format": "ullme-grl-checkpoint-1"],
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
        for dir in [config.outputDir, config.adapterDir] {
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
