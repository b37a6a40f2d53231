import CULLME
import XCTest

/// cullme_gemm (Sources/CULLME/gemm.c): accuracy against a double-precision reference, and the
/// determinism contract: a row's output bits depend only on that row (not on M, its position in the
/// batch, how N is split, or whether it went through an edge tile), on every code path.
final class GemmTests: XCTestCase {
    struct Rng {
        var s: UInt64
        mutating func next() -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        mutating func fill(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
    }

    /// Paths to exercise: every path this CPU supports (forcing an unsupported one is a no-op).
    static func supportedPaths() -> [String] {
        var paths: [String] = []
        for p in ["generic", "avx2", "avx512"] {
            cullme_gemm_force_path(p)
            if String(cString: cullme_gemm_path()) == p { paths.append(p) }
        }
        cullme_gemm_force_path(nil)
        return paths
    }

    override func tearDown() {
        cullme_gemm_force_path(nil)
        super.tearDown()
    }

    func pack(_ w: [Float], N: Int, K: Int) -> [Float] {
        var packed = [Float](repeating: .nan, count: cullme_gemm_packed_floats(Int64(N), Int64(K)))
        w.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { pp in
                cullme_gemm_pack(wp.baseAddress, Int64(N), Int64(K), pp.baseAddress)
            }
        }
        return packed
    }

    /// Runs cullme_gemm over the given column ranges (each a separate call) into a fresh [M, ldo]
    /// buffer pre-filled with a sentinel.
    func gemm(_ x: [Float], M: Int, K: Int, packed: [Float], N: Int, bias: [Float]?,
              ranges: [(Int, Int)]? = nil, ldo: Int? = nil, sentinel: Float = -777) -> [Float] {
        let ldo = ldo ?? N
        var out = [Float](repeating: sentinel, count: max(M * ldo, 1))
        x.withUnsafeBufferPointer { xp in
            packed.withUnsafeBufferPointer { pp in
                out.withUnsafeMutableBufferPointer { op in
                    for (b, e) in ranges ?? [(0, N)] {
                        if let bias {
                            bias.withUnsafeBufferPointer { bp in
                                cullme_gemm(xp.baseAddress, Int64(M), Int64(K), pp.baseAddress, Int64(N),
                                            Int64(b), Int64(e), op.baseAddress, Int64(ldo), bp.baseAddress)
                            }
                        } else {
                            cullme_gemm(xp.baseAddress, Int64(M), Int64(K), pp.baseAddress, Int64(N),
                                        Int64(b), Int64(e), op.baseAddress, Int64(ldo), nil)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Max over elements of |ours - ref| / (sum_k |x w| + |bias|), reference in Double.
    func maxRelError(_ out: [Float], _ x: [Float], _ w: [Float], _ bias: [Float]?, M: Int, K: Int, N: Int,
                     ldo: Int) -> Double {
        var worst = 0.0
        for m in 0..<M {
            for n in 0..<N {
                var s = 0.0, a = 0.0
                for k in 0..<K {
                    let p = Double(x[m * K + k]) * Double(w[n * K + k])
                    s += p; a += abs(p)
                }
                if let bias { s += Double(bias[n]); a += abs(Double(bias[n])) }
                let err = abs(Double(out[m * ldo + n]) - s) / max(a, 1e-30)
                worst = max(worst, err)
            }
        }
        return worst
    }

    func bits(_ a: ArraySlice<Float>) -> [UInt32] { a.map(\.bitPattern) }

    func testPathsAndDispatch() {
        let paths = Self.supportedPaths()
        XCTAssertEqual(paths.first, "generic")
        cullme_gemm_force_path("bogus")  // ignored
        let auto = String(cString: cullme_gemm_path())
        XCTAssertEqual(auto, paths.last, "automatic choice is the best supported path")
        print("cullme_gemm paths supported here: \(paths), automatic: \(auto)")
    }

    func testAccuracyOddSizesAndBias() {
        // (M, N, K): K = 1, M = 1, N and K multiples of nothing, K above the k-block size (384).
        let shapes: [(Int, Int, Int)] = [(1, 1, 1), (1, 17, 1), (3, 5, 7), (2, 16, 3), (13, 33, 385),
                                         (37, 100, 777), (25, 48, 64), (12, 31, 1536), (7, 64, 769),
                                         (3, 700, 1200)]  // several k-blocks and column blocks
        var reference: [String: [Float]] = [:]
        for path in Self.supportedPaths() {
            cullme_gemm_force_path(path)
            var rng = Rng(s: 42)
            for (M, N, K) in shapes {
                let x = rng.fill(M * K), w = rng.fill(N * K, scale: 0.2), bias = rng.fill(N)
                let packed = pack(w, N: N, K: K)
                for useBias in [false, true] {
                    let ldo = N + 3
                    let out = gemm(x, M: M, K: K, packed: packed, N: N, bias: useBias ? bias : nil, ldo: ldo)
                    let err = maxRelError(out, x, w, useBias ? bias : nil, M: M, K: K, N: N, ldo: ldo)
                    XCTAssertLessThan(err, 1e-5, "\(path) M=\(M) N=\(N) K=\(K) bias=\(useBias)")
                    for m in 0..<M {  // padding columns of out untouched
                        for n in N..<ldo { XCTAssertEqual(out[m * ldo + n], -777) }
                    }
                    // Same per-element fmaf chain on every path: bit-identical across paths.
                    let key = "\(M)x\(N)x\(K)b\(useBias)"
                    if let r = reference[key] {
                        XCTAssertEqual(bits(out[...]), bits(r[...]), "\(path) differs from generic for \(key)")
                    } else {
                        reference[key] = out
                    }
                }
            }
        }
    }

    func testZeroK() {
        let packed: [Float] = []
        let bias: [Float] = [1, -2, 3]
        let out = gemm([], M: 2, K: 0, packed: packed, N: 3, bias: bias)
        XCTAssertEqual(out, [1, -2, 3, 1, -2, 3])
    }

    /// A row's result is the same bits alone (M = 1) or anywhere inside M = 37 / 150 batches, and
    /// whatever the split of N into column ranges.
    func testBatchAndSplitInvariance() {
        for path in Self.supportedPaths() {
            cullme_gemm_force_path(path)
            for (N, K) in [(100, 577), (64, 1000), (33, 130), (560, 640)] {
                var rng = Rng(s: UInt64(N * 1000 + K))
                let w = rng.fill(N * K, scale: 0.1), bias = rng.fill(N)
                let packed = pack(w, N: N, K: K)
                let big = 150
                let x = rng.fill(big * K)
                let full150 = gemm(x, M: big, K: K, packed: packed, N: N, bias: bias)
                // The first 37 rows as their own batch, and rows 50..<87 (x offset) as another.
                let full37 = gemm(Array(x[0..<(37 * K)]), M: 37, K: K, packed: packed, N: N, bias: bias)
                let mid37 = gemm(Array(x[(50 * K)..<(87 * K)]), M: 37, K: K, packed: packed, N: N, bias: bias)
                // Split N into uneven ranges at multiples of 16.
                var cuts = [0]
                var c = 16
                while c < N { cuts.append(c); c += cuts.count % 2 == 0 ? 32 : 16 }
                cuts.append(N)
                let ranges = (0..<(cuts.count - 1)).map { (cuts[$0], cuts[$0 + 1]) }
                let split150 = gemm(x, M: big, K: K, packed: packed, N: N, bias: bias, ranges: ranges.reversed())
                XCTAssertEqual(bits(split150[...]), bits(full150[...]), "\(path) N split \(ranges)")
                for m in [0, 1, 5, 11, 12, 13, 23, 24, 35, 36, 50, 60, 86, 99, 143, 144, 149] {
                    let single = gemm(Array(x[(m * K)..<((m + 1) * K)]), M: 1, K: K, packed: packed, N: N, bias: bias)
                    let want = bits(single[...])
                    XCTAssertEqual(bits(full150[(m * N)..<((m + 1) * N)]), want, "\(path) row \(m) of 150")
                    if m < 37 {
                        XCTAssertEqual(bits(full37[(m * N)..<((m + 1) * N)]), want, "\(path) row \(m) of 37")
                    }
                    if m >= 50 && m < 87 {
                        let i = m - 50
                        XCTAssertEqual(bits(mid37[(i * N)..<((i + 1) * N)]), want, "\(path) row \(i) of 37 (mid)")
                    }
                }
            }
        }
    }
}
