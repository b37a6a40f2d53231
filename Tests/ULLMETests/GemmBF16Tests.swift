import CULLME
import XCTest

/// cullme_gemm_bf16 (Sources/CULLME/gemm_bf16.c), the kernel of the opt-in bf16 inference mode: the
/// rounding and packing, accuracy against a double-precision sum of the bf16-rounded operands, the
/// determinism contract (a row's bits depend on that row only), and the forced fallback. Every test
/// runs the path this CPU has ("avx512_bf16", or the C emulation where it has no AVX512_BF16) and the
/// emulation forced.
final class GemmBF16Tests: XCTestCase {
    typealias Rng = GemmTests.Rng

    override func tearDown() {
        cullme_gemm_bf16_disable(0)
        super.tearDown()
    }

    func bf16(_ f: Float) -> Float { Float(bitPattern: UInt32(cullme_fp32_to_bf16(f)) << 16) }

    /// The paths to run: the automatic one and, when that is the kernel, the forced emulation.
    func paths() -> [Bool] { cullme_gemm_bf16_available() != 0 ? [false, true] : [true] }

    func pack(_ w: [Float], N: Int, K: Int) -> [UInt32] {
        var packed = [UInt32](repeating: 0xDEAD_BEEF, count: cullme_gemm_bf16_packed_words(Int64(N), Int64(K)))
        w.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { cullme_gemm_bf16_pack(wp.baseAddress, Int64(N), Int64(K), $0.baseAddress) }
        }
        return packed
    }

    func gemm(_ x: [Float], M: Int, K: Int, packed: [UInt32], N: Int, bias: [Float]?, ranges: [(Int, Int)]? = nil,
              ldo: Int? = nil) -> [Float] {
        let ldo = ldo ?? N
        var out = [Float](repeating: -777, count: max(M * ldo, 1))
        x.withUnsafeBufferPointer { xp in packed.withUnsafeBufferPointer { pp in out.withUnsafeMutableBufferPointer { op in
            (bias ?? []).withUnsafeBufferPointer { bp in
                for (b, e) in ranges ?? [(0, N)] {
                    cullme_gemm_bf16(xp.baseAddress, Int64(M), Int64(K), pp.baseAddress, Int64(N), Int64(b), Int64(e),
                                     op.baseAddress, Int64(ldo), bias == nil ? nil : bp.baseAddress)
                }
            }
        } } }
        return out
    }

    func testPathIsReported() {
        let path = String(cString: cullme_gemm_bf16_path())
        XCTAssertTrue(path == "avx512_bf16" || path.hasPrefix("exact fallback: "), path)
        XCTAssertEqual(cullme_gemm_bf16_available() != 0, path == "avx512_bf16")
        print("cullme_gemm_bf16 path here: \(path)")
        cullme_gemm_bf16_disable(1)
        XCTAssertEqual(cullme_gemm_bf16_available(), 0)
        XCTAssertTrue(String(cString: cullme_gemm_bf16_path()).hasPrefix("exact fallback: "))
    }

    /// Round to nearest even, subnormals to signed zero, NaN stays NaN, overflow to infinity.
    func testRounding() {
        XCTAssertEqual(cullme_fp32_to_bf16(1), 0x3F80)
        XCTAssertEqual(cullme_fp32_to_bf16(-2), 0xC000)
        XCTAssertEqual(cullme_fp32_to_bf16(1 + 0x1p-8), 0x3F80)          // tie -> even
        XCTAssertEqual(cullme_fp32_to_bf16(1 + 3 * 0x1p-8), 0x3F82)      // tie -> even (up)
        XCTAssertEqual(cullme_fp32_to_bf16(1 + 0x1p-8 + 0x1p-20), 0x3F81)  // above the tie
        XCTAssertEqual(cullme_fp32_to_bf16(.infinity), 0x7F80)
        XCTAssertEqual(cullme_fp32_to_bf16(.greatestFiniteMagnitude), 0x7F80)
        XCTAssertEqual(cullme_fp32_to_bf16(-Float.leastNonzeroMagnitude), 0x8000)
        XCTAssertTrue(bf16(.nan).isNaN)
    }

    /// Word (q, j) of panel p = (bf16 W[16p + j, 2q], bf16 W[16p + j, 2q + 1]); zero past K and N.
    func testPackLayoutOddSizes() {
        let N = 19, K = 5
        let w = (0..<(N * K)).map { Float($0 + 1) }
        let packed = pack(w, N: N, K: K)
        XCTAssertEqual(packed.count, 32 * 3)
        for n in 0..<32 { for q in 0..<3 {
            let word = packed[(n / 16) * 16 * 3 + q * 16 + n % 16]
            let lo = n < N ? UInt32(cullme_fp32_to_bf16(w[n * K + 2 * q])) : 0
            let hi = n < N && 2 * q + 1 < K ? UInt32(cullme_fp32_to_bf16(w[n * K + 2 * q + 1])) : 0
            XCTAssertEqual(word, lo | hi << 16, "n \(n) q \(q)")
        } }
    }

    /// Against a double sum of the bf16-rounded x and W: float32 accumulation accuracy (the only error
    /// left once the operands are rounded), odd K and N, bias, several k-blocks and column blocks, an
    /// output stride wider than N (columns past N untouched).
    func testMatchesReferenceOnRoundedInputs() {
        let shapes: [(Int, Int, Int)] = [(1, 1, 1), (1, 17, 1), (3, 5, 7), (2, 16, 3), (13, 33, 385), (37, 100, 777),
                                         (12, 31, 1536), (7, 64, 1153), (3, 700, 1200), (25, 48, 2)]
        for emulate in paths() {
            cullme_gemm_bf16_disable(emulate ? 1 : 0)
            var rng = Rng(s: 7)
            for (M, N, K) in shapes {
                let x = rng.fill(M * K), w = rng.fill(N * K, scale: 0.2), bias = rng.fill(N)
                let packed = pack(w, N: N, K: K)
                let ldo = N + 3
                let out = gemm(x, M: M, K: K, packed: packed, N: N, bias: bias, ldo: ldo)
                var worst = 0.0
                for m in 0..<M {
                    for n in 0..<N {
                        var s = Double(bias[n]), a = abs(Double(bias[n]))
                        for k in 0..<K {
                            let p = Double(bf16(x[m * K + k])) * Double(bf16(w[n * K + k]))
                            s += p; a += abs(p)
                        }
                        worst = max(worst, abs(Double(out[m * ldo + n]) - s) / max(a, 1e-30))
                    }
                    for n in N..<ldo { XCTAssertEqual(out[m * ldo + n], -777) }
                }
                XCTAssertLessThan(worst, 1e-5, "emulate \(emulate) M=\(M) N=\(N) K=\(K)")
            }
        }
    }

    /// The kernel computes what the emulation documents (VDPBF16PS: odd product, then even, float32 sums);
    /// reported, and held to float32 accuracy (a CPU may round the pair sum differently).
    func testKernelAgreesWithEmulation() throws {
        try XCTSkipUnless(cullme_gemm_bf16_available() != 0, "no AVX512_BF16 here: only the emulation runs")
        var rng = Rng(s: 11)
        let M = 29, N = 90, K = 1001
        let x = rng.fill(M * K), w = rng.fill(N * K, scale: 0.1)
        let packed = pack(w, N: N, K: K)
        let native = gemm(x, M: M, K: K, packed: packed, N: N, bias: nil)
        cullme_gemm_bf16_disable(1)
        let emulated = gemm(x, M: M, K: K, packed: packed, N: N, bias: nil)
        let same = zip(native, emulated).filter { $0.bitPattern == $1.bitPattern }.count
        print("cullme_gemm_bf16: kernel and C emulation agree bit for bit on \(same) of \(native.count) outputs")
        for (a, b) in zip(native, emulated) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b))) }
    }

    /// A row's bits are the same alone, in batches of 37 / 150 at any position, and for any split of N
    /// into ranges at multiples of 16 (what threads do): batch invariance holds in bf16 mode.
    func testBatchAndSplitInvariance() {
        for emulate in paths() {
            cullme_gemm_bf16_disable(emulate ? 1 : 0)
            for (N, K) in [(100, 577), (64, 1000), (33, 130), (560, 1600)] {
                var rng = Rng(s: UInt64(N * 1000 + K))
                let w = rng.fill(N * K, scale: 0.1), bias = rng.fill(N)
                let packed = pack(w, N: N, K: K)
                let big = emulate ? 40 : 150
                let x = rng.fill(big * K)
                let full = gemm(x, M: big, K: K, packed: packed, N: N, bias: bias)
                let mid = gemm(Array(x[(13 * K)..<(37 * K)]), M: 24, K: K, packed: packed, N: N, bias: bias)
                var cuts = [0], c = 16
                while c < N { cuts.append(c); c += cuts.count % 2 == 0 ? 32 : 16 }
                cuts.append(N)
                let ranges = (0..<(cuts.count - 1)).map { (cuts[$0], cuts[$0 + 1]) }
                let split = gemm(x, M: big, K: K, packed: packed, N: N, bias: bias, ranges: ranges.reversed())
                XCTAssertEqual(split.map(\.bitPattern), full.map(\.bitPattern), "emulate \(emulate) N split")
                for m in [0, 1, 11, 12, 13, 23, 24, 36, 39] + (emulate ? [] : [99, 143, 149]) {
                    let single = gemm(Array(x[(m * K)..<((m + 1) * K)]), M: 1, K: K, packed: packed, N: N, bias: bias)
                    XCTAssertEqual(full[(m * N)..<((m + 1) * N)].map(\.bitPattern), single.map(\.bitPattern), "row \(m) of \(big)")
                    if m >= 13 && m < 37 {
                        XCTAssertEqual(mid[((m - 13) * N)..<((m - 12) * N)].map(\.bitPattern), single.map(\.bitPattern), "row \(m) mid")
                    }
                }
            }
        }
    }
}
