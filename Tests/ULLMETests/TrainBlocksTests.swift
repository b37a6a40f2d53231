import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// Training building blocks against the reference implementation (fixtures written by
/// scripts/fixtures/make_train_block_fixtures.py with torch + pytorch-metric-learning + the reference's loss code).
final class TrainBlocksTests: XCTestCase {
    static let script = "python3 scripts/fixtures/make_train_block_fixtures.py"

    func fixture(_ name: String) throws -> JSONValue {
        let path = packageRoot + "/Tests/fixtures/train_blocks/" + name
        guard let data = FileManager.default.contents(atPath: path) else {
            XCTFail("missing fixture \(path): run \(Self.script)")
            throw MissingFile(description: "missing fixture \(path): run \(Self.script)")
        }
        return try JSONValue.parse(Array(data), what: path)
    }

    func fl(_ v: JSONValue?) -> [Float] { (v?.array ?? []).map { Float($0.double ?? .nan) } }
    func db(_ v: JSONValue?) -> [Double] { (v?.array ?? []).map { $0.double ?? .nan } }
    func ints(_ v: JSONValue?) -> [Int] { (v?.array ?? []).map { $0.int ?? Int.min } }

    /// |a − e| ≤ max(rel·|e|, abs) elementwise (default 1e-5 relative, as the GRL issue asks).
    func assertClose(_ a: [Float], _ e: [Double], rel: Double = 1e-5, abs: Double = 1e-6, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, e.count, "\(what): count", file: file, line: line)
        var worst = 0.0, at = -1
        for i in 0..<min(a.count, e.count) {
            let err = Swift.abs(Double(a[i]) - e[i]), tol = max(rel * Swift.abs(e[i]), abs)
            if !(err <= tol) && (at < 0 || err / tol > worst) { worst = err / tol; at = i }
        }
        if at >= 0 { XCTFail("\(what): [\(at)] \(a[at]) vs \(e[at]) (error \(worst)× tolerance)", file: file, line: line) }
    }

    func assertClose(_ a: Float, _ e: Double, rel: Double = 1e-5, abs: Double = 1e-6, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        assertClose([a], [e], rel: rel, abs: abs, what, file: file, line: line)
    }

    // MARK: contrastive

    func testContrastiveLossMatchesPytorchMetricLearning() throws {
        let fx = try fixture("contrastive.json")
        let cases = fx["cases"]?.array ?? []
        XCTAssertGreaterThanOrEqual(cases.count, 32)
        for c in cases {
            let name = c["name"]?.string ?? "?"
            let B = c["B"]!.int!, P = c["P"]!.int!, N = c["N"]!.int!, D = c["D"]!.int!
            // Labels in the reference's order: queries, positives (query-major), negatives max+1...
            let labels = contrastiveLabels(queryLabels: ints(c["query_labels"]), P: P, N: N)
            XCTAssertEqual(labels, ints(c["labels"]), "\(name): labels")
            var config = ContrastiveLossConfig()
            config.kind = c["kind"]?.string == "supcon" ? .supcon : .ntxent
            config.temperature = fx["temperature"]!.double!
            config.isDistance = c["is_distance"]!.bool!
            config.useMiner = c["use_miner"]!.bool!
            config.minerEpsilon = fx["miner_epsilon"]!.double!
            // Reps come in the trainer's layout [B, 1+P+N, D]; the loss runs in the reference's order.
            let reps = groupedToLossOrder(fl(c["reps_grouped"]), B: B, P: P, N: N, D: D)
            let out = contrastiveLoss(reps: reps, labels: labels, D: D, config: config)
            assertClose(out.loss, c["loss"]!.double!, "\(name): loss")
            assertClose(lossOrderToGrouped(out.dReps, B: B, P: P, N: N, D: D), db(c["grad_grouped"]), "\(name): dReps")
            if config.useMiner {
                XCTAssertEqual(out.positivePairs, c["mined_pos_pairs"]?.int, "\(name): mined positive pairs")
                XCTAssertEqual(out.negativePairs, c["mined_neg_pairs"]?.int, "\(name): mined negative pairs")
            }
        }
    }

    /// Central differences of the float64 core against its analytic gradient, every configuration,
    /// on non-unit reps (so the re-normalisation's Jacobian is exercised).
    func testContrastiveGradientFiniteDifference() {
        let B = 3, P = 2, N = 2, D = 5
        let labels = contrastiveLabels(queryLabels: [4, 1, 2], P: P, N: N)
        let rng = KeyedRandom(rawKey: 42)
        let n = labels.count * D
        var x = (0..<n).map { Double(rng.uniform(UInt64($0))) * 2 - 1 }
        for b in 0..<B { for k in 0..<P { for d in 0..<D {  // positives near their query
            let row = contrastiveRow(query: b, slot: 1 + k, B: B, P: P, N: N)
            x[row * D + d] = 0.6 * x[row * D + d] + x[b * D + d]
        } } }
        for kind in [ContrastiveLossKind.ntxent, .supcon] { for isDistance in [true, false] { for miner in [false, true] {
            var config = ContrastiveLossConfig()
            config.kind = kind; config.isDistance = isDistance; config.useMiner = miner
            config.temperature = 0.5  // a smooth loss keeps the differences well-conditioned
            let base = contrastiveLossDouble(reps: x, labels: labels, D: D, config: config)
            XCTAssertGreaterThan(base.loss, 0, "\(kind) \(isDistance) \(miner): non-trivial loss")
            let h = 1e-6
            var worst = 0.0
            for i in 0..<n {
                var xp = x, xm = x
                xp[i] += h; xm[i] -= h
                let fd = (contrastiveLossDouble(reps: xp, labels: labels, D: D, config: config).loss
                        - contrastiveLossDouble(reps: xm, labels: labels, D: D, config: config).loss) / (2 * h)
                worst = max(worst, abs(fd - base.grad[i]) / max(abs(base.grad[i]), 1e-3))
            }
            XCTAssertLessThan(worst, 1e-5, "\(kind) distance=\(isDistance) miner=\(miner): finite differences")
        } } }
    }

    func testContrastiveLabelOrderAndLayout() {
        XCTAssertEqual(contrastiveLabels(queryLabels: [3, 0], P: 2, N: 1), [3, 0, 3, 3, 0, 0, 4, 5])
        XCTAssertEqual(contrastiveRow(query: 1, slot: 0, B: 2, P: 2, N: 1), 1)
        XCTAssertEqual(contrastiveRow(query: 1, slot: 2, B: 2, P: 2, N: 1), 5)
        XCTAssertEqual(contrastiveRow(query: 1, slot: 3, B: 2, P: 2, N: 1), 7)
        let x = (0..<16).map { Float($0) }
        XCTAssertEqual(lossOrderToGrouped(groupedToLossOrder(x, B: 2, P: 2, N: 1, D: 2), B: 2, P: 2, N: 1, D: 2), x)
        // All labels distinct (no positives): zero loss, zero gradient.
        let out = contrastiveLoss(reps: x, labels: [0, 1, 2, 3, 4, 5, 6, 7], D: 2, config: ContrastiveLossConfig())
        XCTAssertEqual(out.loss, 0)
        XCTAssertEqual(out.dReps, [Float](repeating: 0, count: 16))
    }

    /// The miner keeps exactly one positive and one negative pair here, and then the reference returns 0
    /// (GenericPairLoss: every pair list has ≤ 1 element); without the miner the loss is 0.0897 (NTXent,
    /// LpDistance) / 0.1341 (SupCon, cosine), values from pytorch-metric-learning 2.9.0.
    func testMinerWithSinglePairsGivesZero() {
        let t = 40.0 * Double.pi / 180, f = -45.0 * Double.pi / 180
        let x: [Float] = [1, 0, Float(cos(t)), Float(sin(t)), Float(cos(f)), Float(sin(f))]
        for (kind, isDistance, unmined) in [(ContrastiveLossKind.ntxent, true, 0.0897), (.supcon, false, 0.1341)] {
            var config = ContrastiveLossConfig()
            config.kind = kind; config.isDistance = isDistance
            config.useMiner = true
            let mined = contrastiveLoss(reps: x, labels: [0, 0, 1], D: 2, config: config)
            XCTAssertEqual(mined.positivePairs, 1); XCTAssertEqual(mined.negativePairs, 1)
            XCTAssertEqual(mined.loss, 0); XCTAssertEqual(mined.dReps, [Float](repeating: 0, count: 6))
            config.useMiner = false
            XCTAssertEqual(Double(contrastiveLoss(reps: x, labels: [0, 0, 1], D: 2, config: config).loss), unmined, accuracy: 1e-4)
        }
    }

    // MARK: generative losses

    func testPreferenceLossesMatchReference() throws {
        let fx = try fixture("preference.json")
        let cases = fx["cases"]?.array ?? []
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let kindName = c["kind"]!.string!
            let kind = try XCTUnwrap(GenLossKind(rawValue: kindName))
            let cfg = PreferenceLossConfig(kind: kind, beta: c["beta"]!.double!, labelSmoothing: c["label_smoothing"]!.double!)
            let out = preferenceLoss(chosenLogps: fl(c["chosen"]), rejectedLogps: fl(c["rejected"]), config: cfg)
            let what = "\(kindName) eps=\(cfg.labelSmoothing)"
            assertClose(out.loss, c["loss"]!.double!, "\(what): loss")
            assertClose(out.dChosen, db(c["d_chosen"]), "\(what): dChosen")
            assertClose(out.dRejected, db(c["d_rejected"]), "\(what): dRejected")
        }
        let sft = try XCTUnwrap(fx["sft"])
        let counts = ints(sft["token_counts"])
        let out = sftLoss(sumLogps: fl(sft["sum_logps"]), tokenCounts: counts)
        assertClose(out.loss, sft["loss"]!.double!, "sft: loss equals HF's mean token cross-entropy")
        let total = Double(counts.reduce(0, +))
        assertClose(out.dSumLogps, [Double](repeating: -1 / total, count: counts.count), "sft: dSumLogps")
    }

    func testKLLossMatchesReference() throws {
        let fx = try fixture("kl.json")
        for c in fx["cases"]?.array ?? [] {
            let B = c["B"]!.int!, K = c["K"]!.int!, D = c["D"]!.int!, T = c["temperature"]!.double!
            let reps = fl(c["reps_grouped"])
            let dual = dualScoresForward(reps: reps, B: B, K: K, D: D)
            assertClose(dual, db(c["dual"]), "KL B\(B)K\(K): dual scores")
            let out = klLoss(dual: dual, gen: fl(c["gen"]), B: B, K: K, temperature: T)
            assertClose(out.loss, c["loss"]!.double!, "KL B\(B)K\(K): loss")
            assertClose(out.dDual, db(c["d_dual"]), "KL B\(B)K\(K): dDual")
            assertClose(dualScoresBackward(reps: reps, dDual: out.dDual, B: B, K: K, D: D), db(c["d_reps_grouped"]),
                        "KL B\(B)K\(K): dReps")
        }
    }

    // MARK: projection head, normalise, pooling

    func testProjectionHeadNormaliseAndPoolingBackward() throws {
        let fx = try fixture("projection.json")
        let d = fx["dim"]!.int!, N = fx["N"]!.int!
        let head = ProjectionHead(dim: d, w1: fl(fx["w1"]), b1: fl(fx["b1"]), w2: fl(fx["w2"]), b2: fl(fx["b2"]))
        let (proj, acts) = head.forward(fl(fx["x"]), N: N)
        assertClose(proj, db(fx["proj"]), "proj forward")
        let out = l2NormalizeForward(proj, N: N, D: d)
        assertClose(out, db(fx["out"]), "normalise forward")
        let dProj = l2NormalizeBackward(x: proj, dY: fl(fx["g"]), N: N, D: d)
        assertClose(dProj, db(fx["d_proj"]), "normalise backward")
        var grads = ProjectionHead.Gradients(dim: d)
        let dX = head.backward(dOut: dProj, activations: acts, grads: &grads)
        assertClose(dX, db(fx["d_x"]), "proj dX")
        assertClose(grads.w1, db(fx["d_w1"]), "proj dW1")
        assertClose(grads.b1, db(fx["d_b1"]), "proj db1")
        assertClose(grads.w2, db(fx["d_w2"]), "proj dW2")
        assertClose(grads.b2, db(fx["d_b2"]), "proj db2")

        let pool = try XCTUnwrap(fx["pooling"])
        let L = pool["L"]!.int!
        let hidden = fl(pool["hidden"]), dPooled = fl(pool["d_pooled"])
        for c in pool["cases"]?.array ?? [] {
            let method = try Pooling(name: c["method"]!.string!)
            var pooled = [Float](repeating: 0, count: d), dHidden = [Float](repeating: .nan, count: L * d)
            hidden.withUnsafeBufferPointer { method.pool($0.baseAddress!, L: L, C: d, into: &pooled) }
            assertClose(pooled, db(c["pooled"]), "\(method) pool forward")
            dPooled.withUnsafeBufferPointer { g in dHidden.withUnsafeMutableBufferPointer {
                method.poolBackward(g.baseAddress!, L: L, C: d, into: $0.baseAddress!)
            } }
            assertClose(dHidden, db(c["d_hidden"]), "\(method) pool backward")
        }
    }

    // MARK: optimiser, clipping, schedule

    func testAdamWClippingAndScheduleMatchTorch() throws {
        let fx = try fixture("optim.json")
        let shapes = (fx["shapes"]?.array ?? []).map { ints($0).reduce(1, *) }
        var params = (fx["init"]?.array ?? []).map { fl($0) }
        XCTAssertEqual(params.map(\.count), shapes)
        let schedule = LRSchedule(lr: fx["lr"]!.double!, minLR: fx["min_lr"]!.double!,
                                  warmupProportion: fx["warmup_proportion"]!.double!,
                                  stepsPerEpoch: fx["steps_per_epoch"]!.int!, maxEpochs: fx["max_epochs"]!.int!,
                                  cosineAnnealing: true)
        let opt = AdamW(parameterCounts: shapes, config: AdamWConfig(weightDecay: fx["weight_decay"]!.double!))
        let steps = fx["steps"]?.array ?? []
        XCTAssertEqual(steps.count, 8)
        for (s, st) in steps.enumerated() {
            let lr = schedule.learningRate(step: s)
            XCTAssertEqual(lr, st["lr"]!.double!, accuracy: 1e-12 * max(1, abs(lr)), "step \(s): lr")
            var grads = (st["grads"]?.array ?? []).map { fl($0) }
            let total = clipGradNorm(&grads, maxNorm: fx["max_norm"]!.double!)
            assertClose(total, st["total_norm"]!.double!, rel: 1e-5, "step \(s): total norm")
            for (i, g) in (st["clipped"]?.array ?? []).enumerated() { assertClose(grads[i], db(g), rel: 1e-5, abs: 1e-7, "step \(s): clipped grad \(i)") }
            opt.step(&params, grads: grads, lr: lr)
            for (i, p) in (st["params"]?.array ?? []).enumerated() { assertClose(params[i], db(p), rel: 1e-5, abs: 1e-7, "step \(s): param \(i)") }
        }
        XCTAssertEqual(opt.stepCount, 8)
        for t in fx["schedules"]?.array ?? [] {
            let maxSteps = t["max_steps"]!.int!
            let sch = LRSchedule(lr: t["lr"]!.double!, minLR: t["min_lr"]!.double!, warmupProportion: t["warmup_proportion"]!.double!,
                                 stepsPerEpoch: t["steps_per_epoch"]!.int!, maxEpochs: t["max_epochs"]!.int!,
                                 maxSteps: maxSteps, cosineAnnealing: t["cosine_annealing"]!.bool!)
            let want = db(t["lrs"])
            for (k, s) in ints(t["steps"]).enumerated() {
                XCTAssertEqual(sch.learningRate(step: s), want[k], accuracy: 1e-12, "schedule \(sch) step \(s)")
            }
        }
    }

    // MARK: LoRA and keyed randomness

    func testLoRAForwardBackwardMatchesTorch() throws {
        let fx = try fixture("lora.json")
        let In = fx["in"]!.int!, Out = fx["out"]!.int!, r = fx["rank"]!.int!, T = fx["T"]!.int!
        let lora = LoRAAdapter(inFeatures: In, outFeatures: Out, rank: r, alpha: Float(fx["alpha"]!.double!),
                               dropout: Float(fx["dropout"]!.double!), a: fl(fx["a"]), b: fl(fx["b"]))
        let W = fl(fx["w"]), x = fl(fx["x"]), g = fl(fx["g"])
        for c in fx["cases"]?.array ?? [] {
            let mask: [Float]? = c["mask"]?.isNull == false ? fl(c["mask"]) : nil
            let what = mask == nil ? "no dropout" : "explicit dropout mask"
            // Frozen base path y = x Wᵀ (the LoRA code adds to it).
            var y = [Float](repeating: 0, count: T * Out)
            for t in 0..<T { for o in 0..<Out { for i in 0..<In { y[t * Out + o] += x[t * In + i] * W[o * In + i] } } }
            let acts = lora.forward(x: x, T: T, mask: mask, y: &y)
            assertClose(y, db(c["y"]), "\(what): y")
            var dA = [Float](repeating: 0, count: r * In), dB = [Float](repeating: 0, count: Out * r)
            var dX = [Float](repeating: 0, count: T * In)
            for t in 0..<T { for i in 0..<In { for o in 0..<Out { dX[t * In + i] += g[t * Out + o] * W[o * In + i] } } }
            lora.backward(dY: g, activations: acts, mask: mask, dA: &dA, dB: &dB, dX: &dX)
            assertClose(dA, db(c["d_a"]), "\(what): dA")
            assertClose(dB, db(c["d_b"]), "\(what): dB")
            assertClose(dX, db(c["d_x"]), "\(what): dX")
        }
        // Fresh adapter: A ~ U(±1/√in) (PEFT's kaiming_uniform_(a=√5)), B = 0, so the adapter starts as a no-op.
        let fresh = LoRAAdapter(inFeatures: 64, outFeatures: 8, rank: 16, alpha: 32, dropout: 0.1, init: KeyedRandom(rawKey: 1))
        let bound = Float(1 / 8.0)
        XCTAssertTrue(fresh.a.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(fresh.a.map { abs($0) }.max()!, 0.9 * bound)
        XCTAssertEqual(fresh.b, [Float](repeating: 0, count: 8 * 16))
        XCTAssertEqual(fresh.scale, 2)
    }

    func testDropoutMasksAreKeyedNotChunked() {
        let lora = LoRAAdapter(inFeatures: 32, outFeatures: 4, rank: 2, alpha: 4, dropout: 0.1, init: KeyedRandom(rawKey: 7))
        let key = KeyedRandom(seed: 999, step: 3, example: 5, layer: 2, site: RandomSite(module: 1))
        let full = lora.dropoutMask(key, T: 40)!
        // Asking for tokens 10..<25 alone (another chunking) gives the same rows.
        XCTAssertEqual(lora.dropoutMask(key, T: 15, tokenOffset: 10)!, Array(full[(10 * 32)..<(25 * 32)]))
        XCTAssertEqual(lora.dropoutMask(KeyedRandom(seed: 999, step: 3, example: 5, layer: 2, site: RandomSite(module: 1)), T: 40)!, full)
        // Any key field changes the mask.
        for other in [KeyedRandom(seed: 998, step: 3, example: 5, layer: 2, site: RandomSite(module: 1)),
                      KeyedRandom(seed: 999, step: 4, example: 5, layer: 2, site: RandomSite(module: 1)),
                      KeyedRandom(seed: 999, step: 3, example: 6, layer: 2, site: RandomSite(module: 1)),
                      KeyedRandom(seed: 999, step: 3, example: 5, layer: 3, site: RandomSite(module: 1)),
                      KeyedRandom(seed: 999, step: 3, example: 5, layer: 2, site: RandomSite(module: 2)),
                      KeyedRandom(seed: 999, step: 3, example: 5, layer: 2, site: RandomSite(module: 1, pass: 1))] {
            XCTAssertNotEqual(lora.dropoutMask(other, T: 40)!, full)
        }
        // Values are 0 or 1/(1−p), kept with probability ≈ 1 − p.
        let keep = Float(1 / 0.9)
        XCTAssertTrue(full.allSatisfy { $0 == 0 || $0 == keep })
        let big = lora.dropoutMask(key, T: 2000)!
        let frac = Double(big.filter { $0 != 0 }.count) / Double(big.count)
        XCTAssertEqual(frac, 0.9, accuracy: 0.005)
        // p = 0: no mask.
        XCTAssertNil(LoRAAdapter(inFeatures: 2, outFeatures: 2, rank: 1, alpha: 1, dropout: 0, init: key).dropoutMask(key, T: 3))
    }
}
