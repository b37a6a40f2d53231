import CULLME
import XCTest
@testable import ULLMESwift

/// cullme_swiglu_forward / _backward: the same bits on every code path, and the SiLU, its derivative and the
/// products within float32 rounding of doubles, over gates from -100 to 100 (both sigmoid branches, e^-|x|
/// flushing to 0) and widths with vector tails.
final class ActivationKernelTests: XCTestCase {
    override func tearDown() {
        cullme_gemm_force_path(nil)
        super.tearDown()
    }

    func testSwiGLUMatchesDoublesAndIsIdenticalOnEveryPath() {
        var rng = GemmTests.Rng(s: 21)
        for n in [1, 7, 16, 33, 1536] {
            let T = 3
            var gu = rng.fill(T * 2 * n, scale: 6)
            gu[0] = -100; gu[min(1, n - 1)] = 100; gu[2 * n] = 0  // saturated and zero gates
            let dAct = rng.fill(T * n)
            var results: [([Float], [Float])] = []
            for p in GemmTests.supportedPaths() {
                cullme_gemm_force_path(p)
                var out = [Float](repeating: .nan, count: T * n), dGU = [Float](repeating: .nan, count: T * 2 * n)
                cullme_swiglu_forward(&out, gu, Int64(T), Int64(n))
                cullme_swiglu_backward(&dGU, dAct, gu, Int64(T), Int64(n))
                results.append((out, dGU))
            }
            cullme_gemm_force_path(nil)
            for r in results.dropFirst() { XCTAssertTrue(r.0 == results[0].0 && r.1 == results[0].1, "n \(n): paths differ") }
            let (out, dGU) = results[0]
            for t in 0..<T { for i in 0..<n {
                let g = Double(gu[t * 2 * n + i]), u = Double(gu[t * 2 * n + n + i]), a = Double(dAct[t * n + i])
                let s = 1 / (1 + exp(-g))
                let want = [g * s * u, a * u * s * (1 + g * (1 - s)), a * g * s]
                // SiLU' = s (1 + g (1 - s)) cancels near g = -1.28 (where it is 0): judged against its terms' size.
                let size = [abs(want[0]), abs(a * u * s) * max(1, abs(g)), abs(want[2])]
                let got = [out[t * n + i], dGU[t * 2 * n + i], dGU[t * 2 * n + n + i]].map(Double.init)
                for k in 0..<3 { XCTAssertEqual(got[k], want[k], accuracy: 1e-6 * size[k] + 1e-30, "n \(n) t \(t) i \(i) gate \(g) term \(k)") }
            } }
        }
    }
}
