import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// Training faults: non-finite losses (nonfinite_policy stop/skip, injected and from a diverging
/// learning rate), checkpoints that can never hold NaN, and write failures that name the file and errno.
/// Tiny Llama, a few steps each (about a second in all).
final class TrainingFaultTests: XCTestCase {
    var base = ""

    override func setUp() {
        base = FileManager.default.temporaryDirectory.path + "/ullme-faults-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: base) }

    func runConfig(_ name: String, policy: NonFinitePolicy, inject: Set<Int> = [], lr: Double = 1e-3) -> TrainConfig {
        let root = ParityFixtures.root.replacingOccurrences(of: "/Tests/fixtures", with: "")
        var s = TrainConfig(modelPath: root + "/Tests/fixtures/tiny-llama",
                               data: [.init(file: root + "/data/grl/wordnet-tiny/train.jsonl", instruction: "Given a word sense example, retrieve its definition")],
                               outputDir: base + "/" + name)
        s.batchSize = 4
        s.optimizer.maxSteps = 6
        s.maxSeqLength = 64
        s.loss = .grl
        s.loss.chunkSize = 2
        s.loraRank = 4; s.loraAlpha = 8
        s.checkpointInterval = 2
        s.optimizer.learningRate = lr
        s.nonfinitePolicy = policy
        s.injectNonFiniteSteps = inject
        return s
    }

    /// Loads output_dir's checkpoint into a fresh trainer; returns (step, parameters). Fails if it is absent,
    /// unreadable or holds a non-finite value (resumeIfPossible checks).
    func checkpoint(_ s: TrainConfig) throws -> (Int, [[Float]]) {
        let t = try GRLTrainer(config: s)
        let step = try t.resumeIfPossible()
        let params = TrainingSession.parameters(t.session.model)
        XCTAssertTrue(allFinite(params))
        return (step, params)
    }

    func readBytes(_ path: String) throws -> [UInt8] {
        let f = try MappedFile(path: path)
        return withExtendedLifetime(f) { Array(f.bytes) }
    }

    func logLines(_ s: TrainConfig) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: s.outputDir + "/log.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map {
            // Strict JSON (no NaN literals): non-finite numbers are null.
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testStopPolicyStopsWithTheLastGoodStateAsCheckpoint() throws {
        let s = runConfig("stop", policy: .stop, inject: [4])
        let t = try GRLTrainer(config: s)
        var seen: [GRLLogRecord] = []
        var paramsAfter3: [[Float]] = []
        XCTAssertThrowsError(try t.run { r in
            seen.append(r)
            if r.step == 3 { paramsAfter3 = TrainingSession.parameters(t.session.model) }
            return true
        }) { error in
            guard case .state(let m) = error as? ULLMEError else { return XCTFail("\(error)") }
            XCTAssertTrue(m.contains("step 4: non-finite loss") && m.contains("holds step 3") && m.contains("nonfinite_policy"), m)
        }
        XCTAssertEqual(seen.map(\.step), [1, 2, 3, 4])
        XCTAssertEqual(seen.last?.nonFinite, "loss")
        XCTAssertEqual(t.session.step, 3, "a stopped step does not advance")
        XCTAssertEqual(t.session.optimizer.stepCount, 3)
        // The checkpoint was rewritten at the stop (interval 2 had written step 2): step 3, the last good state.
        let (step, params) = try checkpoint(s)
        XCTAssertEqual(step, 3)
        XCTAssertEqual(params, paramsAfter3)
        let log = try logLines(s)
        XCTAssertEqual(log.count, 4)
        XCTAssertTrue(log[3]["loss"] is NSNull)
        XCTAssertEqual(log[3]["nonfinite"] as? String, "loss")
        XCTAssertEqual(log[3]["action"] as? String, "stopped")
        XCTAssertNil(log[2]["nonfinite"])

        // Resume with skip: the log keeps steps 1-3, loses the stopped step 4 and a line cut by a kill, and
        // ends with every step exactly once.
        let fh = fopen(s.outputDir + "/log.jsonl", "a")!
        fputs("{\"step\":9,\"epoch\":0,\"loss\":1.", fh)
        fclose(fh)
        var s2 = s
        s2.nonfinitePolicy = .skip
        let t2 = try GRLTrainer(config: s2)
        XCTAssertEqual(try t2.resumeIfPossible(), 3)
        try t2.run()
        let log2 = try logLines(s)
        XCTAssertEqual(log2.compactMap { $0["step"] as? Int }, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(log2[3]["action"] as? String, "skipped")
        XCTAssertEqual(log2[0]["loss"] as? Double, log[0]["loss"] as? Double)
    }

    func testSkipPolicySkipsTheUpdateAndContinues() throws {
        let s = runConfig("skip", policy: .skip, inject: [2, 4])
        let t = try GRLTrainer(config: s)
        var params: [Int: [[Float]]] = [:]
        let records = try t.run { r in params[r.step] = TrainingSession.parameters(t.session.model); return true }
        XCTAssertEqual(records.map(\.step), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(records.map { $0.nonFinite != nil }, [false, true, false, true, false, false])
        XCTAssertEqual(params[2], params[1], "a skipped step changes no parameter")
        XCTAssertEqual(params[4], params[3])
        XCTAssertNotEqual(params[3], params[2])
        XCTAssertEqual(t.session.optimizer.stepCount, 4, "AdamW's step count (bias correction) counts applied updates only")
        let (step, last) = try checkpoint(s)
        XCTAssertEqual(step, 6)
        XCTAssertEqual(last, params[6])
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.outputDir + "/adapter/adapter_model.safetensors"))
        let log = try logLines(s)
        XCTAssertEqual(log.compactMap { $0["action"] as? String }, ["skipped", "skipped"])

        // Steps that are not skipped do what an uninjected run does (same batches, same dropout keys):
        // step 1 is identical to a clean run's step 1.
        var one = runConfig("clean", policy: .skip)
        one.optimizer.maxSteps = 1
        let clean = try GRLTrainer(config: one).run()
        XCTAssertEqual(clean[0].losses, records[0].losses)
    }

    func testDivergingLearningRateIsCaughtBeforeAnyNaNReachesACheckpoint() throws {
        // lr 1e30 without clipping: the parameters become huge after step 2 and the embeddings non-finite.
        var s = runConfig("diverge", policy: .stop, lr: 1e30)
        s.optimizer.gradClip = 0
        s.optimizer.maxSteps = 4
        let t = try GRLTrainer(config: s)
        var last: GRLLogRecord?
        XCTAssertThrowsError(try t.run { last = $0; return true }) { error in
            guard case .state = error as? ULLMEError else { return XCTFail("\(error)") }
        }
        let r = try XCTUnwrap(last)
        XCTAssertNotNil(r.nonFinite)
        XCTAssertTrue(r.step <= 4)
        let (step, params) = try checkpoint(s)
        XCTAssertEqual(step, r.step - 1)
        XCTAssertTrue(allFinite(params))

        // Same with skip: the run ends, every parameter and moment finite.
        var s2 = runConfig("diverge-skip", policy: .skip, lr: 1e30)
        s2.optimizer.gradClip = 0
        s2.optimizer.maxSteps = 4
        let t2 = try GRLTrainer(config: s2)
        let records = try t2.run()
        XCTAssertTrue(records.contains { $0.nonFinite != nil })
        XCTAssertTrue(allFinite(t2.session.optimizer.expAvg) && allFinite(t2.session.optimizer.expAvgSq))
        XCTAssertEqual(try checkpoint(s2).0, 4)
    }

    func testAnUpdateThatOverflowsIsRolledBack() throws {
        // Finite loss and gradient, but the AdamW update overflows a parameter (lr 1e37, no warmup, on a
        // parameter near Float.greatestFiniteMagnitude): the update is rolled back, nothing changes.
        var s = runConfig("overflow", policy: .skip, lr: 1e37)
        s.optimizer.warmupProportion = 0
        let t = try GRLTrainer(config: s)
        var p = TrainingSession.parameters(t.session.model)
        p[p.count - 1][0] = Float.greatestFiniteMagnitude
        t.session.setParameters(p)
        let (m0, v0) = (t.session.optimizer.expAvg, t.session.optimizer.expAvgSq)
        t.session.grads.head.b2[0] = -1
        let o = t.session.optimizerStep(lossIsFinite: true)
        XCTAssertEqual(o.nonFinite, "updated parameters")
        XCTAssertEqual(o.gradNorm, 1)
        XCTAssertEqual(TrainingSession.parameters(t.session.model), p)
        XCTAssertEqual(t.session.optimizer.expAvg, m0)
        XCTAssertEqual(t.session.optimizer.expAvgSq, v0)
        XCTAssertEqual(t.session.optimizer.stepCount, 0)
        XCTAssertEqual(t.session.step, 1, "skip: the step counts as done")
        // The same step with a sane parameter is applied.
        t.session.grads.head.b2[0] = -1
        p[p.count - 1][0] = 0
        t.session.setParameters(p)
        XCTAssertNil(t.session.optimizerStep(lossIsFinite: true).nonFinite)
        XCTAssertEqual(t.session.optimizer.stepCount, 1)
    }

    func testCheckpointsNeverHoldNonFiniteValues() throws {
        let s = runConfig("guard", policy: .stop)
        let t = try GRLTrainer(config: s)
        try makeDirectory(s.outputDir)
        try t.saveCheckpoint()
        let good = try readBytes(s.outputDir + "/checkpoint.safetensors")
        var p = TrainingSession.parameters(t.session.model)
        p[0][0] = .nan
        t.session.setParameters(p)
        XCTAssertThrowsError(try t.saveCheckpoint()) { error in
            guard case .state(let m) = error as? ULLMEError else { return XCTFail("\(error)") }
            XCTAssertTrue(m.contains("not finite"), m)
        }
        XCTAssertEqual(try readBytes(s.outputDir + "/checkpoint.safetensors"), good, "the previous checkpoint is untouched")

        // A checkpoint with a NaN (written by something else) is refused on resume.
        var tensors: [SafetensorsWriter.Tensor] = []
        for (i, x) in p.enumerated() {
            tensors.append(.init(name: "param.\(i)", shape: [x.count], data: x))
            tensors.append(.init(name: "adam_m.\(i)", shape: [x.count], data: [Float](repeating: 0, count: x.count)))
            tensors.append(.init(name: "adam_v.\(i)", shape: [x.count], data: [Float](repeating: 0, count: x.count)))
        }
        try SafetensorsWriter.write(tensors, metadata: ["step": "1", "adam_step": "1"], to: s.outputDir + "/checkpoint.safetensors")
        XCTAssertThrowsError(try GRLTrainer(config: s).resumeIfPossible()) { error in
            guard case .format(let m) = error as? ULLMEError else { return XCTFail("\(error)") }
            XCTAssertTrue(m.contains("non-finite"), m)
        }
    }

    func testFailedWritesNameTheFileAndErrnoAndLeaveTheOldFile() throws {
        try makeDirectory(base)
        let path = base + "/x.safetensors"
        try SafetensorsWriter.write([.init(name: "a", shape: [1], data: [1])], to: path)
        let before = try readBytes(path)
        // /dev/full: every write fails with ENOSPC. A directory path cannot host the temporary file (ENOTDIR).
        XCTAssertThrowsError(try writeFileAtomically(path + "/y", [1, 2, 3])) { error in
            guard case .io(let m) = error as? ULLMEError else { return XCTFail("\(error)") }
            XCTAssertTrue(m.hasPrefix(path + "/y: ") && m.contains("errno \(ENOTDIR), ENOTDIR"), m)
        }
        XCTAssertEqual(try readBytes(path), before)
        XCTAssertEqual(errnoDescription(ENOSPC), "No space left on device (errno 28, ENOSPC)")
        // Temporaries a killed run left behind are removed when a run starts.
        let s = runConfig("stale", policy: .stop)
        try makeDirectory(s.outputDir)
        try makeDirectory(s.outputDir + "/adapter")
        let stale = [s.outputDir + "/.checkpoint.safetensors.tmp-abc123", s.outputDir + "/.log.jsonl.tmp-Xy9Q2a",
                     s.outputDir + "/adapter/.adapter_config.json.tmp-000000"]
        for f in stale { try writeFileAtomically(f, [1]) }
        let kept = s.outputDir + "/notes.tmp-abc123"   // not an atomic-write temporary: left alone
        try writeFileAtomically(kept, [1])
        var s1 = s
        s1.optimizer.maxSteps = 1
        try GRLTrainer(config: s1).run()
        for f in stale { XCTAssertFalse(FileManager.default.fileExists(atPath: f), f) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: kept))
    }

    func testSkipPolicyStopsAfterTooManyNonFiniteStepsInARow() throws {
        var s = runConfig("diverged", policy: .skip, inject: [2, 3, 4, 5])
        s.maxConsecutiveNonFinite = 3
        let t = try GRLTrainer(config: s)
        var seen: [Int] = []
        XCTAssertThrowsError(try t.run { seen.append($0.step); return true }) {
            XCTAssertTrue("\($0)".contains("3 non-finite steps in a row (max_consecutive_nonfinite: 3)"), "\($0)")
        }
        XCTAssertEqual(seen, [1, 2, 3, 4], "stops at the third non-finite step in a row")
        XCTAssertEqual(try logLines(s).compactMap { $0["action"] as? String }, ["skipped", "skipped", "stopped"])
        let (_, params) = try checkpoint(s)   // the checkpoint holds step 1's parameters, finite
        var one = runConfig("one", policy: .skip)
        one.optimizer.maxSteps = 1
        let first = try GRLTrainer(config: one)
        try first.run()
        XCTAssertEqual(params, TrainingSession.parameters(first.session.model))

        // Two in a row stay under the cap; 0 disables it.
        s = runConfig("under-cap", policy: .skip, inject: [2, 3])
        s.maxConsecutiveNonFinite = 3
        XCTAssertEqual(try GRLTrainer(config: s).run().count, 6)
        s = runConfig("no-cap", policy: .skip, inject: [1, 2, 3, 4, 5, 6])
        s.maxConsecutiveNonFinite = 0
        XCTAssertEqual(try GRLTrainer(config: s).run().count, 6)
    }

    func testAnInstructionThatFillsMaxSeqLengthIsRefused() throws {
        var s = runConfig("long-instruction", policy: .stop)
        s.maxSeqLength = 8
        XCTAssertThrowsError(try GRLTrainer(config: s)) {
            XCTAssertTrue("\($0)".contains("the instruction takes") && "\($0)".contains("of the 8 tokens of max_seq_length"), "\($0)")
        }
        s.maxSeqLength = 64
        XCTAssertNoThrow(try GRLTrainer(config: s))
    }

    func testConfigKeys() throws {
        let head = "data:\n  - file: x.jsonl\n    instruction: i\n"
        XCTAssertEqual(try TrainConfig.parse(yaml: head).nonfinitePolicy, .stop)
        let c = try TrainConfig.parse(yaml: head + "nonfinite_policy: skip\ninject_nonfinite_steps: [3, 5]\n")
        XCTAssertEqual(c.nonfinitePolicy, .skip)
        XCTAssertEqual(c.injectNonFiniteSteps, [3, 5])
        XCTAssertTrue(c.warnings.isEmpty, "\(c.warnings)")
        XCTAssertEqual(try TrainConfig.parse(yaml: head + "inject_nonfinite_steps: 2\n").injectNonFiniteSteps, [2])
        XCTAssertThrowsError(try TrainConfig.parse(yaml: head + "nonfinite_policy: ignore\n")) {
            XCTAssertTrue("\($0)".contains("stop or skip"), "\($0)")
        }
        XCTAssertThrowsError(try TrainConfig.parse(yaml: head + "inject_nonfinite_steps: [0]\n"))
        XCTAssertEqual(try TrainConfig.parse(yaml: head).maxConsecutiveNonFinite, 10)
        XCTAssertEqual(try TrainConfig.parse(yaml: head + "max_consecutive_nonfinite: 0\n").maxConsecutiveNonFinite, 0)
        XCTAssertThrowsError(try TrainConfig.parse(yaml: head + "max_consecutive_nonfinite: -1\n"))
        XCTAssertEqual(try TrainConfig.parse(yaml: head + "threads: 3\n").threads, 3)
        XCTAssertThrowsError(try TrainConfig.parse(yaml: head + "threads: -2\n"))
        let s = c
        XCTAssertEqual(s.nonfinitePolicy, .skip)
        XCTAssertEqual(s.injectNonFiniteSteps, [3, 5])
    }
}
