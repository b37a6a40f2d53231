import CULLME
import XCTest
@testable import ULLMESwift

/// Quantized panels (cullme_qpanels, WeightStorage.quantized): every integer GGUF type converts with each
/// value equal to the reference dequantisation, and products over the panels equal products over the
/// dequantised float32 panels bit for bit, on every kernel path, for partial panels, several row tiles,
/// several k-blocks and mixed group sizes; the transposed (backward) product too.
final class QuantizedPanelsTests: XCTestCase {
    override func tearDown() { cullme_gemm_force_path(nil) }

    /// The rows of a 2-D tensor.
    func rows(_ t: TensorRecord) -> [StoredRow] {
        let cols = t.rowLength, rowBytes = t.type.byteCount(elements: cols)!
        return (0..<t.rowCount).map { StoredRow(bytes: t.bytes.baseAddress! + $0 * rowBytes, type: t.type) }
    }

    func dense(_ rows: [StoredRow], cols: Int) -> PackedMatrix {
        var w = [Float](repeating: 0, count: rows.count * cols)
        w.withUnsafeMutableBufferPointer { p in
            for (i, r) in rows.enumerated() { dequantizeRaw(r.type, r.bytes, p.baseAddress! + i * cols, count: cols) }
        }
        return PackedMatrix(w, rows: rows.count, cols: cols)
    }

    /// x · Wᵀ + bias for W quantized and dense, on each kernel path this CPU has, for several batch sizes.
    func assertSameProducts(_ name: String, _ q: PackedMatrix, _ d: PackedMatrix, file: StaticString = #filePath, line: UInt = #line) {
        let N = q.rows, K = q.cols
        let bias = (0..<N).map { Float(cos(Double($0) * 0.3)) }
        for path in ["avx512", "avx2", "generic"] {
            cullme_gemm_force_path(path)
            guard String(cString: cullme_gemm_path()) == path else { continue }
            for T in [1, 7, 30] {
                let x = (0..<(T * K)).map { Float(sin(Double($0) * 0.77 + Double(T))) }
                var outs: [[Float]] = []
                for m in [q, d] {
                    var out = [Float](repeating: .nan, count: T * N)
                    linearForward(&out, x, m, bias: bias, T: T)
                    outs.append(out)
                }
                XCTAssertEqual(outs[0].map(\.bitPattern), outs[1].map(\.bitPattern), "\(name) \(path) T=\(T)", file: file, line: line)
                XCTAssertFalse(outs[0].contains { $0.isNaN }, "\(name) \(path) T=\(T)", file: file, line: line)
            }
        }
        cullme_gemm_force_path(nil)
        let T = 3
        let dY = (0..<(T * N)).map { Float(sin(Double($0) * 0.41)) }
        var dX: [[Float]] = []
        for m in [q, d] {
            var out = [Float](repeating: 0.5, count: T * K)
            linearBackwardInput(&out, dY, m, T: T)
            dX.append(out)
        }
        XCTAssertEqual(dX[0].map(\.bitPattern), dX[1].map(\.bitPattern), "\(name) transposed", file: file, line: line)
    }

    /// Every tensor of the synthetic GGUF (random blocks of every type, gguf-py-quantised data): integer types
    /// convert (each row checked against dequant.c bit for bit), float types do not; products equal dense.
    func testEveryTypeOfTheSyntheticGGUF() throws {
        let g = try GGUFFile(path: try fixturePath("dequant/synthetic.gguf"))
        var converted = Set<TensorType>()
        for t in g.tensors where t.shape.count == 2 {
            let r = rows(t)
            guard let q = PackedMatrix(quantizing: r, cols: t.rowLength) else {
                XCTAssertEqual(cullme_qpanels_group(t.type.ggmlTypeID), 0, "\(t.name): an integer type that did not convert")
                continue
            }
            converted.insert(t.type)
            XCTAssertEqual(q.ownedBytes, cullme_qpanels_bytes(q.quantized))
            assertSameProducts(t.name, q, dense(r, cols: t.rowLength))
        }
        XCTAssertEqual(converted, [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K])
    }

    /// Q6_K rows (groups of 16) with Q4_K and Q8_0 rows (groups of 32) in one matrix, as a fused Q/K/V can
    /// be: the matrix takes groups of 16.
    func testMixedGroupSizes() throws {
        let g = try GGUFFile(path: try fixturePath("dequant/synthetic.gguf"))
        let q6 = rows(g.tensor(named: "r.Q6_K")!), q4 = rows(g.tensor(named: "r.Q4_K")!), q8 = rows(g.tensor(named: "r.Q8_0")!)
        let mixed = q4 + q6 + q8 + q6
        let q = try XCTUnwrap(PackedMatrix(quantizing: mixed, cols: 512))
        XCTAssertEqual(q.quantized!.pointee.group, 16)
        assertSameProducts("mixed", q, dense(mixed, cols: 512))
    }

    /// K = 1,600 (several k-blocks, a group straddling none of them) and N = 70 (partial panel, several column
    /// groups): Q8_0 rows made here with every int8 value and scales of both signs.
    func testSeveralKBlocks() throws {
        let N = 70, K = 1600, blocks = K / 32
        var bytes = [UInt8](repeating: 0, count: N * blocks * 34)
        for n in 0..<N { for b in 0..<blocks {
            let o = (n * blocks + b) * 34
            let d = Float16(Float(((n * 7 + b * 3) % 11) - 5) * 0.003 + 0.0001)
            withUnsafeBytes(of: d.bitPattern.littleEndian) { for i in 0..<2 { bytes[o + i] = $0[i] } }
            for j in 0..<32 { bytes[o + 2 + j] = UInt8(truncatingIfNeeded: n * 31 + b * 17 + j * 5) }
        } }
        try bytes.withUnsafeBytes { raw in
            let r = (0..<N).map { StoredRow(bytes: raw.baseAddress! + $0 * blocks * 34, type: .q8_0) }
            let q = try XCTUnwrap(PackedMatrix(quantizing: r, cols: K))
            assertSameProducts("Q8_0 1600", q, dense(r, cols: K))
        }
    }

    /// A row of a type without an integer form (f32) keeps the whole matrix dense.
    func testFloatRowsAreNotQuantized() throws {
        let w: [Float] = (0..<64).map { Float($0) }
        let made = w.withUnsafeBytes { raw in
            PackedMatrix(quantizing: [StoredRow(bytes: raw.baseAddress!, type: .f32), StoredRow(bytes: raw.baseAddress! + 128, type: .f32)], cols: 32)
        }
        XCTAssertNil(made)
    }

    /// The model-level choice: quantized is the default (ULLME_WEIGHTS unset) and reports its smaller memory;
    /// a safetensors model (f32) loaded quantized is dense.
    func testModelStorage() throws {
        if getenv("ULLME_WEIGHTS") == nil { XCTAssertEqual(Model.defaultWeightStorage, .quantized) }
        let q = try Model.load(path: ParityFixtures.smolLM2Path, storage: .quantized)
        let d = try Model.load(path: ParityFixtures.smolLM2Path, storage: .dense)
        XCTAssertEqual(q.weightStorage, .quantized)
        XCTAssertLessThan(Double(q.weightBytes), 0.4 * Double(d.weightBytes), "quantized holds about a third of dense")
        let tiny = try Model.load(path: ParityFixtures.root + "/tiny-llama", storage: .quantized)
        let tinyDense = try Model.load(path: ParityFixtures.root + "/tiny-llama", storage: .dense)
        XCTAssertEqual(tiny.weightBytes, tinyDense.weightBytes)
    }
}
