import CULLME
import XCTest
@testable import ULLMESwift

/// The attention kernels: cullme_softmax_range (vectorised exp, bit-identical on every code path) and the
/// blocked attention (query-row blocks of attentionQueryBlock) against a double-precision reference.
final class AttentionKernelTests: XCTestCase {
    typealias Rng = GemmTests.Rng

    override func tearDown() {
        cullme_gemm_force_path(nil)
        super.tearDown()
    }

    func testExpMatchesLibmWithinTwoUlps() {
        var worst: Double = 0
        var x: Float = -87.3
        while x <= 0 {
            let got = Double(cullme_exp_nonpositive(x)), want = exp(Double(x))
            worst = max(worst, abs(got - want) / want)
            x += 0.000731
        }
        XCTAssertLessThan(worst, 2.5e-7, "relative error of the polynomial exp")
        XCTAssertEqual(cullme_exp_nonpositive(0), 1)
        XCTAssertEqual(cullme_exp_nonpositive(-88), 0)
        XCTAssertEqual(cullme_exp_nonpositive(-.infinity), 0)
    }

    func softmax(_ row: [Float], begin: Int, end: Int) -> [Float] {
        var r = row
        r.withUnsafeMutableBufferPointer { cullme_softmax_range($0.baseAddress, Int64(row.count), Int64(begin), Int64(end)) }
        return r
    }

    func testSoftmaxIsExactToDoublesAndIdenticalOnEveryPath() {
        var rng = Rng(s: 11)
        let paths = GemmTests.supportedPaths()
        XCTAssertTrue(paths.contains("generic"))
        for n in [1, 5, 15, 16, 17, 31, 100, 257, 2048] {
            let row = rng.fill(n, scale: 12)
            for (begin, end) in [(0, n), (n / 3, n), (0, max(1, n / 2)), (n / 4, max(n / 4 + 1, 3 * n / 4))] {
                var results: [[Float]] = []
                for p in paths {
                    cullme_gemm_force_path(p)
                    results.append(softmax(row, begin: begin, end: end))
                }
                cullme_gemm_force_path(nil)
                for r in results.dropFirst() { XCTAssertEqual(r, results[0], "n \(n) [\(begin), \(end)): paths differ") }
                let m = row[begin..<end].max()!
                let z = row[begin..<end].reduce(0.0) { $0 + exp(Double($1 - m)) }
                for c in 0..<n {
                    let want = (begin..<end).contains(c) ? exp(Double(row[c] - m)) / z : 0
                    XCTAssertEqual(Double(results[0][c]), want, accuracy: 1e-6 * max(want, 1e-3), "n \(n) column \(c)")
                }
            }
        }
    }

    /// The generation losses' row helper: -g * softmax and the log-sum-exp, near doubles, the same bits on every path,
    /// in place or not, over a vocabulary-sized row.
    func testLogSoftmaxScaledIsExactToDoublesOnEveryPath() {
        var rng = Rng(s: 5)
        for n in [1, 17, 49152] {
            let row = rng.fill(n, scale: 20), g: Float = -0.37
            var results: [([Float], Float)] = []
            for p in GemmTests.supportedPaths() {
                cullme_gemm_force_path(p)
                var out = [Float](repeating: .nan, count: n), inPlace = row
                let lse = cullme_log_softmax_scaled(row, Int64(n), g, &out)
                let lseInPlace = inPlace.withUnsafeMutableBufferPointer { cullme_log_softmax_scaled($0.baseAddress, Int64(n), g, $0.baseAddress) }
                XCTAssertEqual(lseInPlace, lse, "n \(n) \(p) in place")
                XCTAssertEqual(inPlace, out, "n \(n) \(p) in place")
                results.append((out, lse))
            }
            cullme_gemm_force_path(nil)
            for r in results.dropFirst() { XCTAssertTrue(r.0 == results[0].0 && r.1 == results[0].1, "n \(n): paths differ") }
            let m = Double(row.max()!), z = row.reduce(0.0) { $0 + exp(Double($1) - m) }
            XCTAssertEqual(Double(results[0].1), m + log(z), accuracy: 1e-6 * abs(m + log(z)), "n \(n) log-sum-exp")
            for c in 0..<n {
                let want = -Double(g) * exp(Double(row[c]) - m) / z
                // A float32 sum of 49,152 terms in 16 lanes: ~1e-6 relative (measured 1.5e-6), within 1e-5.
                XCTAssertEqual(Double(results[0].0[c]), want, accuracy: 1e-5 * abs(want) + 1e-30, "n \(n) column \(c)")
            }
        }
    }

    /// Naive attention in doubles: out[L, nH hd] for qkv[L, (nH + 2 nKV) hd].
    func reference(_ qkv: [Float], L: Int, nH: Int, nKV: Int, hd: Int, scale: Float, causal: Bool, window: Int?) -> [Double] {
        let qDim = nH * hd, w = (nH + 2 * nKV) * hd, group = nH / nKV
        var out = [Double](repeating: 0, count: L * qDim)
        for h in 0..<nH {
            let g = h / group
            for i in 0..<L {
                let first = window.map { max(0, i - $0 + 1) } ?? 0, end = causal ? i + 1 : L
                var s = [Double](repeating: 0, count: L)
                for j in first..<end {
                    var d = 0.0
                    for c in 0..<hd { d += Double(qkv[i * w + h * hd + c]) * Double(qkv[j * w + qDim + g * hd + c]) }
                    s[j] = d * Double(scale)
                }
                let m = s[first..<end].max()!
                let z = s[first..<end].reduce(0) { $0 + exp($1 - m) }
                for j in first..<end {
                    let p = exp(s[j] - m) / z
                    for c in 0..<hd { out[i * qDim + h * hd + c] += p * Double(qkv[j * w + qDim + nKV * hd + g * hd + c]) }
                }
            }
        }
        return out
    }

    func testBlockedAttentionMatchesTheReference() {
        let nH = 4, nKV = 2, hd = 16, group = 2, scale: Float = 0.25
        var rng = Rng(s: 5)
        for (L, causal, window) in [(40, false, nil), (700, false, nil), (700, true, nil), (530, true, 100)] as [(Int, Bool, Int?)] {
            XCTAssertEqual(attentionQueryBlock(L: L) < L, L > 256, "L \(L) should \(L > 256 ? "" : "not ")be split")
            let qkv = rng.fill(L * (nH + 2 * nKV) * hd, scale: 2)
            var out = [Float](repeating: .nan, count: L * nH * hd)
            var probs = [Float](repeating: .nan, count: nH * L * L)
            let tasks = attentionTasks(lengths: [L], heads: nH)
            XCTAssertEqual(tasks.reduce(0) { $0 + $1.rows.count }, nH * L)
            qkv.withUnsafeBufferPointer { q in out.withUnsafeMutableBufferPointer { o in probs.withUnsafeMutableBufferPointer { p in
                for t in tasks {
                    var S = [Float](repeating: .nan, count: t.rows.count * L)
                    attentionRowsForward(qkv: q.baseAddress!, out: o.baseAddress!, scores: &S, head: t.head, rows: t.rows, L: L,
                                         nH: nH, nKV: nKV, hd: hd, group: group, scale: scale, softcap: nil, causal: causal,
                                         window: window, probsOut: p.baseAddress!)
                }
            } } }
            let want = reference(qkv, L: L, nH: nH, nKV: nKV, hd: hd, scale: scale, causal: causal, window: window)
            var worst = 0.0
            for i in out.indices { worst = max(worst, abs(Double(out[i]) - want[i])) }
            XCTAssertLessThan(worst, 1e-5, "L \(L) causal \(causal) window \(String(describing: window))")
            // Every probability row sums to 1 and is 0 on hidden keys.
            for h in [0, nH - 1] { for i in [0, L / 2, L - 1] {
                let row = probs[(h * L + i) * L ..< (h * L + i + 1) * L]
                XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5)
                if causal { XCTAssertTrue(row.dropFirst(i + 1).allSatisfy { $0 == 0 }) }
            } }
        }
    }
}

/// cullme_dropout_mask is KeyedRandom.uniform's stream, bit for bit, on every path.
final class DropoutMaskTests: XCTestCase {
    override func tearDown() {
        cullme_gemm_force_path(nil)
        super.tearDown()
    }

    func testMaskIsTheKeyedStreamOnEveryPath() {
        for path in GemmTests.supportedPaths() {
            cullme_gemm_force_path(path)
            for (seed, first, n) in [(1, 0, 1), (7, 13, 37), (99, 5_000_000_003, 1000)] as [(UInt64, UInt64, Int)] {
                let rng = KeyedRandom(seed: seed, step: 3, example: 2, layer: 5, site: RandomSite(module: 1))
                var out = [Float](repeating: .nan, count: n)
                cullme_dropout_mask(rng.key, first, Int64(n), 0.1, 1 / 0.9, &out)
                let want = (0..<n).map { rng.uniform(first + UInt64($0)) >= 0.1 ? 1 / Float(0.9) : 0 }
                XCTAssertEqual(out, want, "path \(path), n \(n)")
            }
        }
        // About a tenth dropped.
        let adapter = LoRAAdapter(inFeatures: 64, outFeatures: 8, rank: 2, dropout: 0.1, init: KeyedRandom(rawKey: 1))
        let m = adapter.dropoutMask(KeyedRandom(rawKey: 42), T: 100, tokenOffset: 3)!
        XCTAssertEqual(Double(m.filter { $0 == 0 }.count) / Double(m.count), 0.1, accuracy: 0.01)
    }
}
