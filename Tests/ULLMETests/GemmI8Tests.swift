import CULLME
import XCTest
@testable import ULLMESwift

/// cullme_gemm_i8 (the int8 mode's product) on synthetic integer panels: against a float64 reference of the
/// same quantised operands, every kernel path bit-identical to the plain C one (ragged M and N, groups of 16
/// and 32, unsigned and signed weights, Q8_0-sized integers that the AVX2 path multiplies as signed ones), the
/// activation quantiser's contract, and the outliers' split and float32 product.
final class GemmI8Tests: XCTestCase {
    override func tearDown() {
        cullme_gemm_i8_force_path("auto")
        super.tearDown()
    }

    struct Case { let M: Int, N: Int, K: Int, group: Int, qRange: ClosedRange<Int8> }

    /// W[N, K] as integer panels with q in qRange, per-group scale and offset.
    func panels(_ c: Case, _ rng: inout SplitMix) -> (UnsafeMutablePointer<cullme_qpanels>, [[Double]]) {
        let q = cullme_qpanels_new(Int64(c.N), Int64(c.K), Int32(c.group))!
        var w = [[Double]](repeating: [Double](repeating: 0, count: c.K), count: c.N)
        let NG = c.K / c.group
        for n in 0..<c.N {
            for g in 0..<NG {
                let scale = Float(rng.uniform(0.001, 0.02)), offset = Float(rng.uniform(-0.1, 0.1))
                q.pointee.scale[(n / 16) * 16 * NG + g * 16 + n % 16] = scale
                q.pointee.offset[(n / 16) * 16 * NG + g * 16 + n % 16] = offset
                for k in (g * c.group)..<((g + 1) * c.group) {
                    let v = Int8(Int(c.qRange.lowerBound) + Int(rng.next() % UInt64(Int(c.qRange.upperBound) - Int(c.qRange.lowerBound) + 1)))
                    q.pointee.q[(n / 16) * 16 * c.K + k * 16 + n % 16] = v
                    w[n][k] = Double(v) * Double(scale) + Double(offset)
                }
            }
        }
        return (q, w)
    }

    func run(_ c: Case, path: String, x: [Float], i8: UnsafeMutablePointer<cullme_i8panels>) -> [Float] {
        cullme_gemm_i8_force_path(path)
        let NG = c.K / c.group
        var xq = [Int8](repeating: 0, count: c.M * c.K), sx = [Float](repeating: 0, count: c.M * NG)
        var xsum = [Float](repeating: 0, count: c.M * NG)
        cullme_i8_quantize_rows(x, Int64(c.M), Int64(c.K), Int32(c.group), &xq, &sx, &xsum)
        var out = [Float](repeating: .nan, count: c.M * c.N)
        let bias = (0..<c.N).map { Float($0) * 0.01 }
        // Two column ranges (a split at a multiple of 16), as two threads would run them.
        let split = min(c.N, 16 * max(1, c.N / 32))
        cullme_gemm_i8(xq, sx, xsum, Int64(c.M), i8, 0, Int64(split), &out, Int64(c.N), bias)
        if split < c.N { cullme_gemm_i8(xq, sx, xsum, Int64(c.M), i8, Int64(split), Int64(c.N), &out, Int64(c.N), bias) }
        return out
    }

    func testAgainstReferenceAndAcrossPaths() throws {
        var rng = SplitMix(seed: 11)
        let cases = [Case(M: 1, N: 16, K: 32, group: 32, qRange: 0...15), Case(M: 5, N: 45, K: 96, group: 32, qRange: 0...15),
                     Case(M: 7, N: 70, K: 64, group: 16, qRange: -32...31), Case(M: 4, N: 33, K: 128, group: 32, qRange: -127...127),
                     Case(M: 9, N: 64, K: 256, group: 32, qRange: -8...7), Case(M: 6, N: 40, K: 64, group: 32, qRange: -128...127),
                     Case(M: 5, N: 48, K: 64, group: 16, qRange: -32...31)]
        for c in cases {
            let (q, w) = panels(c, &rng)
            defer { cullme_qpanels_free(q) }
            let i8 = try XCTUnwrap(cullme_i8panels_new(q))
            defer { cullme_i8panels_free(i8) }
            let x = (0..<(c.M * c.K)).map { _ in Float(rng.uniform(-2, 2)) }
            let generic = run(c, path: "generic", x: x, i8: i8)
            // Reference: the same quantised x (sx * qx) times W in float64.
            let NG = c.K / c.group
            var xq = [Int8](repeating: 0, count: c.M * c.K), sx = [Float](repeating: 0, count: c.M * NG)
            var xsum = [Float](repeating: 0, count: c.M * NG)
            cullme_i8_quantize_rows(x, Int64(c.M), Int64(c.K), Int32(c.group), &xq, &sx, &xsum)
            for m in 0..<c.M {
                for g in 0..<NG { XCTAssertEqual(xsum[m * NG + g], Float(xq[(m * c.K + g * c.group)..<(m * c.K + (g + 1) * c.group)].reduce(0) { $0 + Int($1) })) }
                for n in 0..<c.N {
                    var ref = Double(n) * 0.01, mag = 0.0
                    for k in 0..<c.K {
                        let xv = Double(sx[m * NG + k / c.group]) * Double(xq[m * c.K + k])
                        ref += xv * w[n][k]; mag += abs(xv * w[n][k])
                    }
                    XCTAssertEqual(Double(generic[m * c.N + n]), ref, accuracy: 1e-5 * (mag + 1), "\(c) m \(m) n \(n)")
                }
            }
            for path in ["avx512_vnni", "avx_vnni", "avx2"] {
                let out = run(c, path: path, x: x, i8: i8)
                guard String(cString: cullme_gemm_i8_path()) == path else { continue }
                XCTAssertEqual(out, generic, "\(path) \(c)")
            }
        }
    }

    struct Split { var inliers: [Float], starts: [Int64], indices: [Int32], values: [Float]
        /// Bit for bit (a NaN row's NaN included).
        func same(_ o: Split) -> Bool {
            inliers.map(\.bitPattern) == o.inliers.map(\.bitPattern) && starts == o.starts && indices == o.indices
                && values.map(\.bitPattern) == o.values.map(\.bitPattern)
        }
    }

    func split(_ x: [Float], M: Int, K: Int, path: String) -> Split {
        cullme_gemm_i8_force_path(path)
        let most = Int(cullme_i8_outliers_max(Int64(M), Int64(K)))
        var s = Split(inliers: [Float](repeating: .nan, count: M * K), starts: [Int64](repeating: -1, count: M + 1),
                      indices: [Int32](repeating: -1, count: most), values: [Float](repeating: .nan, count: most))
        let n = cullme_i8_split_outliers(x, Int64(M), Int64(K), &s.inliers, &s.starts, &s.indices, &s.values)
        XCTAssertEqual(n, s.starts[M])
        s.indices = Array(s.indices.prefix(Int(n))); s.values = Array(s.values.prefix(Int(n)))
        return s
    }

    /// The outlier split (entries above 3 x the row's rms leave the int8 input, the rest stays bit for bit, the
    /// same split on every path, a NaN row keeps all) and their float32 product: against float64, and bit-
    /// identical across paths over more than one block of rows and 64-column chunks, 8-column and ragged tails,
    /// and a column range split as two threads would.
    func testOutliersSplitAndProduct() throws {
        var rng = SplitMix(seed: 5)
        for c in [Case(M: 150, N: 150, K: 96, group: 32, qRange: 0...15), Case(M: 7, N: 70, K: 64, group: 16, qRange: -127...127)] {
            let (q, w) = panels(c, &rng)
            defer { cullme_qpanels_free(q) }
            let i8 = try XCTUnwrap(cullme_i8panels_new(q))
            defer { cullme_i8panels_free(i8) }
            var x = (0..<(c.M * c.K)).map { _ in Float(rng.uniform(-1, 1)) }
            for _ in 0..<(c.M * 2) { x[Int(rng.next() % UInt64(c.M * c.K))] = Float(rng.uniform(-40, 40)) }
            for k in 0..<c.K { x[3 * c.K + k] = k == 5 ? .nan : 1 }  // row 3: a NaN, no outliers
            let generic = split(x, M: c.M, K: c.K, path: "generic")
            XCTAssertEqual(generic.starts[4], generic.starts[3], "a row holding NaN keeps its entries")
            var moved = [Bool](repeating: false, count: c.M * c.K)
            for m in 0..<c.M {
                let row = x[(m * c.K)..<((m + 1) * c.K)]
                let rms = (row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(c.K)).squareRoot()
                for i in Int(generic.starts[m])..<Int(generic.starts[m + 1]) {
                    let k = Int(generic.indices[i])
                    XCTAssertEqual(generic.values[i], x[m * c.K + k])
                    XCTAssertGreaterThan(Double(abs(generic.values[i])), 3 * rms * (1 - 1e-5))
                    XCTAssertEqual(generic.inliers[m * c.K + k], 0)
                    if i > Int(generic.starts[m]) { XCTAssertGreaterThan(k, Int(generic.indices[i - 1]), "increasing k") }
                    moved[m * c.K + k] = true
                }
                for k in 0..<c.K where !moved[m * c.K + k] && m != 3 {
                    XCTAssertEqual(generic.inliers[m * c.K + k], x[m * c.K + k])
                    XCTAssertLessThanOrEqual(Double(abs(x[m * c.K + k])), 3 * rms * (1 + 1e-5))
                }
            }
            XCTAssertGreaterThan(generic.values.count, c.M, "the injected values are outliers")
            func product(_ path: String) -> [Float] {
                let s = split(x, M: c.M, K: c.K, path: path)
                XCTAssertTrue(s.same(generic), "split on \(path)")
                var out = (0..<(c.M * c.N)).map { Float($0 % 7) }
                let cut = 16 * max(1, c.N / 32)
                for (b, e) in [(0, cut), (cut, c.N)] {
                    cullme_gemm_i8_outliers(s.starts, s.indices, s.values, Int64(c.M), i8, Int64(b), Int64(e), &out, Int64(c.N))
                }
                return out
            }
            let reference = product("generic")
            for m in 0..<c.M {
                for n in 0..<c.N {
                    var want = Double((m * c.N + n) % 7), mag = abs(want)
                    for i in Int(generic.starts[m])..<Int(generic.starts[m + 1]) {
                        let t = Double(generic.values[i]) * w[n][Int(generic.indices[i])]
                        want += t; mag += abs(t)
                    }
                    XCTAssertEqual(Double(reference[m * c.N + n]), want, accuracy: 1e-5 * (mag + 1), "\(c) m \(m) n \(n)")
                }
            }
            for path in ["avx512_vnni", "avx_vnni", "avx2"] {
                cullme_gemm_i8_force_path(path)
                guard String(cString: cullme_gemm_i8_path()) == path else { continue }
                XCTAssertTrue(product(path) == reference, "\(path) \(c)")
            }
        }
    }

    /// x ≈ sx * qx per group: |qx| <= 127, the group's largest |x| maps to +-127, zeros stay zero with scale 0,
    /// and a NaN makes the group's scale NaN (so the NaN reaches the output, as in the exact mode).
    func testQuantiser() {
        var x = [Float](repeating: 0, count: 96)
        for i in 0..<32 { x[i] = Float(i) - 10.5 }
        x[64] = .nan
        for path in ["auto", "generic"] {
            cullme_gemm_i8_force_path(path)
            var xq = [Int8](repeating: 1, count: 96), sx = [Float](repeating: 1, count: 3), xsum = [Float](repeating: 1, count: 3)
            cullme_i8_quantize_rows(x, 1, 96, 32, &xq, &sx, &xsum)
            XCTAssertEqual(sx[0], 20.5 / 127)
            XCTAssertEqual(xq[31], 127)
            for i in 0..<32 { XCTAssertEqual(Float(xq[i]) * sx[0], x[i], accuracy: sx[0] / 2 + 1e-6) }
            XCTAssertEqual(sx[1], 0); XCTAssertTrue(xq[32..<64].allSatisfy { $0 == 0 }); XCTAssertEqual(xsum[1], 0)
            XCTAssertTrue(sx[2].isNaN)
        }
    }
}

extension SplitMix {
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53) }
}
