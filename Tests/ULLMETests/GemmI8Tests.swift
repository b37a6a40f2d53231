import CULLME
import XCTest
@testable import ULLMESwift

/// cullme_gemm_i8 (the int8 mode's product) on synthetic integer panels: against a float64 reference of the
/// same quantised operands, every kernel path bit-identical to the plain C one (ragged M and N, groups of 16
/// and 32, unsigned and signed weights, Q8_0-sized integers that the AVX2 path hands to plain C), and the
/// activation quantiser's contract.
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
                     Case(M: 9, N: 64, K: 256, group: 32, qRange: -8...7)]
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
