import CULLME
import Glibc
import Synchronization

/// One stored row of a weight: `cols` elements of `type` at `bytes` (inside a model file's mapping).
struct StoredRow: @unchecked Sendable {
    let bytes: UnsafeRawPointer
    let type: TensorType
}

/// A static weight W[N, K] (PyTorch [out, in]) for cullme_gemm, in one of four forms:
///  - dense: dequantised to float32 and packed once at load (16-column panels);
///  - quantized panels (cullme_qpanels): the integer GGUF types' q (int8) and group scale/offset, re-laid
///    out once at load in the same panel order; each product makes its W blocks from them in L2. Same
///    floats, same FMA chains as dense, a third of the bytes (the memory-bound short-input case runs faster);
///  - dense bf16 (Precision.bf16 at inference): rounded to bfloat16 pairs and packed once at load for
///    cullme_gemm_bf16 (half the bytes; no float32 copy is kept, so the float32 backward cannot use it);
///  - dense bf16 for training (`base_precision: bf16`): W's bf16 panels for the forward and Wᵀ's for the
///    backward's dY·W (together the bytes of one float32 copy), both made from another matrix's values;
///  - stored rows (QLoRA-style): the file's own rows (GGUF blocks, f16/bf16, f32) stay where they are and
///    every product dequantises the panels it needs into a per-call buffer right before the kernel runs.
///    The values are the same floats and cullme_gemm computes each output element as the same FMA chain
///    whatever the column split, so both storages give bit-identical results.
/// cullme_gemm computes every output element as one FMA chain over k, so a row's result never
/// depends on the batch it is in, nor on how columns are split across threads.
final class PackedMatrix: @unchecked Sendable {
    let rows: Int      // N (output features)
    let cols: Int      // K (input features)
    /// Dense packed panels (nil for stored rows and bf16).
    let packed: UnsafeMutablePointer<Float>?
    /// Dense bf16-pair panels (cullme_gemm_bf16_pack), or nil.
    let bf16: UnsafeMutablePointer<UInt32>?
    /// Wᵀ's [K, N] bf16-pair panels for linearBackwardInput (training in bf16 only), or nil.
    let bf16Transposed: UnsafeMutablePointer<UInt32>?
    /// Stored rows (nil when dense); their mapping is kept alive by the model's weights.
    let stored: [StoredRow]?
    /// Quantized panels, or nil.
    let quantized: UnsafeMutablePointer<cullme_qpanels>?
    /// Int8 panels (Precision.int8, inference only: the products are not the exact ones), or nil.
    let int8: UnsafeMutablePointer<cullme_i8panels>?

    /// Dense W; `bf16` packs it to bfloat16 pairs instead of float32 (the caller checks the CPU has
    /// AVX512_BF16: cullme_gemm_bf16 would otherwise emulate, slowly).
    init(_ w: [Float], rows: Int, cols: Int, bf16: Bool = false) {
        precondition(w.count == rows * cols, "PackedMatrix: \(w.count) values for \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        stored = nil
        quantized = nil
        int8 = nil
        bf16Transposed = nil
        if bf16 {
            let n = cullme_gemm_bf16_packed_words(Int64(rows), Int64(cols))
            let p = allocateWords(n)
            w.withUnsafeBufferPointer { cullme_gemm_bf16_pack($0.baseAddress, Int64(rows), Int64(cols), p) }
            self.bf16 = p
            packed = nil
            return
        }
        let n = cullme_gemm_packed_floats(Int64(rows), Int64(cols))
        let p = allocateFloats(n)
        w.withUnsafeBufferPointer { cullme_gemm_pack($0.baseAddress, Int64(rows), Int64(cols), p) }
        packed = p
        self.bf16 = nil
    }

    /// W from stored rows of `cols` elements each (every row's type divides `cols` into whole blocks).
    init(storedRows: [StoredRow], cols: Int) {
        precondition(storedRows.allSatisfy { cols % $0.type.blockSize == 0 })
        rows = storedRows.count
        self.cols = cols
        packed = nil
        bf16 = nil
        bf16Transposed = nil
        quantized = nil
        int8 = nil
        stored = storedRows
    }

    /// The bf16 training form of `source`'s values (any storage but bf16 / int8, which lost them): W and Wᵀ
    /// rounded to bfloat16 pairs and packed for cullme_gemm_bf16.
    init(trainingBF16 source: PackedMatrix) {
        let N = source.rows, K = source.cols
        rows = N
        cols = K
        packed = nil
        stored = nil
        quantized = nil
        int8 = nil
        var w = [Float](repeating: 0, count: N * K)
        w.withUnsafeMutableBufferPointer { source.copyRows(into: $0.baseAddress!) }
        let forward = allocateWords(cullme_gemm_bf16_packed_words(Int64(N), Int64(K)))
        w.withUnsafeBufferPointer { cullme_gemm_bf16_pack($0.baseAddress, Int64(N), Int64(K), forward) }
        var wT = [Float](repeating: 0, count: N * K)
        for n in 0..<N { for k in 0..<K { wT[k * N + n] = w[n * K + k] } }
        let backward = allocateWords(cullme_gemm_bf16_packed_words(Int64(K), Int64(N)))
        wT.withUnsafeBufferPointer { cullme_gemm_bf16_pack($0.baseAddress, Int64(K), Int64(N), backward) }
        bf16 = forward
        bf16Transposed = backward
    }

    /// Quantized panels from stored rows, or nil when a row's type has no integer form (f16, bf16, f32) or
    /// a value would differ from its reference dequantisation (each row is checked bit for bit). `int8`:
    /// int8 panels made from them instead (the quantized panels are not kept).
    init?(quantizing storedRows: [StoredRow], cols: Int, int8: Bool = false) {
        let groups = storedRows.map { Int(cullme_qpanels_group($0.type.ggmlTypeID)) }
        guard !storedRows.isEmpty, let group = groups.min(), group > 0, cols % group == 0,
              let q = cullme_qpanels_new(Int64(storedRows.count), Int64(cols), Int32(group)) else { return nil }
        let scratch = allocateFloats(2 * cols)
        defer { free(scratch) }
        for (n, r) in storedRows.enumerated() where cullme_qpanels_set_row(q, Int64(n), r.type.ggmlTypeID, r.bytes, scratch) != 1 {
            cullme_qpanels_free(q)
            return nil
        }
        rows = storedRows.count
        self.cols = cols
        packed = nil
        bf16 = nil
        bf16Transposed = nil
        stored = nil
        if int8 {
            guard let i8 = cullme_i8panels_new(q) else { cullme_qpanels_free(q); return nil }
            cullme_qpanels_free(q)
            quantized = nil
            self.int8 = i8
        } else {
            quantized = q
            self.int8 = nil
        }
    }

    deinit { free(packed); free(bf16); free(bf16Transposed); cullme_qpanels_free(quantized); cullme_i8panels_free(int8) }

    /// Products run without a per-call panel buffer (dense, bf16, quantized or int8 panels).
    var isDense: Bool { packed != nil || bf16 != nil || quantized != nil || int8 != nil }

    /// Bytes this matrix holds in memory of its own (the stored rows live in the file mapping).
    var ownedBytes: Int {
        if let int8 { return cullme_i8panels_bytes(int8) }
        if let quantized { return cullme_qpanels_bytes(quantized) }
        if bf16 != nil {
            return (cullme_gemm_bf16_packed_words(Int64(rows), Int64(cols))
                    + (bf16Transposed == nil ? 0 : cullme_gemm_bf16_packed_words(Int64(cols), Int64(rows)))) * 4
        }
        return packed == nil ? 0 : cullme_gemm_packed_floats(Int64(rows), Int64(cols)) * 4
    }

    /// Bytes of W as stored (packed fp32, or the file's rows).
    var storageBytes: Int {
        guard let stored else { return ownedBytes }
        return stored.reduce(0) { $0 + $1.type.byteCount(elements: cols)! }
    }

    /// W's values as row-major float32 [rows, cols] (from float32 panels, quantized panels or stored rows).
    func copyRows(into w: UnsafeMutablePointer<Float>) {
        precondition(bf16 == nil && int8 == nil, "PackedMatrix: bf16 and int8 weights no longer hold their float32 values")
        let K = cols
        for n in 0..<rows {
            let row = w + n * K
            if let quantized { cullme_qpanels_row(quantized, Int64(n), 0, Int64(K), row) }
            else if let packed { for k in 0..<K { row[k] = packed[(n / 16) * 16 * K + k * 16 + n % 16] } }
            else { let r = stored![n]; dequantizeRaw(r.type, r.bytes, row, count: K) }
        }
    }

    /// Packs rows r0 ..< r1 (r0 a multiple of 16) into buf in cullme_gemm_pack's layout (panel tails zero).
    /// `row` is scratch of `cols` floats.
    func packStoredRows(_ r0: Int, _ r1: Int, into buf: UnsafeMutablePointer<Float>, row: UnsafeMutablePointer<Float>) {
        let K = cols, stored = stored!
        let end = (r1 - r0 + 15) / 16 * 16
        for i in 0..<end {
            let panel = buf + (i / 16) * 16 * K, j = i % 16
            if r0 + i < r1 {
                let r = stored[r0 + i]
                dequantizeRaw(r.type, r.bytes, row, count: K)
                for k in 0..<K { panel[k * 16 + j] = row[k] }
            } else {
                for k in 0..<K { panel[k * 16 + j] = 0 }
            }
        }
    }

    /// Packs Wᵀ's rows c0 ..< c1 (W's columns; c0 a multiple of 256 or c1 == cols) into buf in cullme_gemm_pack's
    /// layout for the [K, N] matrix Wᵀ: element (n, j) of panel q = W[n, c0 + 16 q + j]. From the dense
    /// panels (a 16 × 16 block transpose) or by dequantising the blocks of each stored row that cover the columns.
    /// `span` is scratch of c1 − c0 floats.
    func packTransposedColumns(_ c0: Int, _ c1: Int, into buf: UnsafeMutablePointer<Float>, span: UnsafeMutablePointer<Float>) {
        precondition(bf16 == nil && int8 == nil,
                     "PackedMatrix: bf16 and int8 weights have no float32 panels for backward (training refuses such models)")
        let N = rows, K = cols, width = c1 - c0
        let panels = (width + 15) / 16
        if let quantized {
            for n in 0..<N {
                cullme_qpanels_row(quantized, Int64(n), Int64(c0), Int64(c1), span)
                for c in 0..<(panels * 16) { buf[(c / 16) * 16 * N + n * 16 + c % 16] = c < width ? span[c] : 0 }
            }
            return
        }
        if let packed {
            for p in 0..<((N + 15) / 16) {
                let src = packed + p * 16 * K
                let nCount = min(16, N - p * 16)
                for c in 0..<(panels * 16) {
                    let dst = buf + (c / 16) * 16 * N + p * 16 * 16 + c % 16
                    if c < width {
                        let s = src + (c0 + c) * 16
                        for i in 0..<nCount { dst[i * 16] = s[i] }
                    } else {
                        for i in 0..<nCount { dst[i * 16] = 0 }
                    }
                }
            }
            return
        }
        let stored = stored!
        for n in 0..<N {
            let r = stored[n]
            let bs = r.type.blockSize
            dequantizeRaw(r.type, r.bytes + (c0 / bs) * r.type.blockBytes, span, count: width)
            for c in 0..<(panels * 16) { buf[(c / 16) * 16 * N + n * 16 + c % 16] = c < width ? span[c] : 0 }
        }
    }
}

/// 64-byte aligned floats (free with free()); 2 MB blocks and up are asked to be huge pages (cullme_alloc).
func allocateFloats(_ n: Int) -> UnsafeMutablePointer<Float> {
    guard let raw = cullme_alloc(max(n, 1) * MemoryLayout<Float>.size) else {
        fatalError("PackedMatrix: out of memory for \(n) floats")
    }
    return raw.bindMemory(to: Float.self, capacity: n)
}

/// Per-call scratch kept for the next call: a product's activation buffers grow with its input (tens of MB for a
/// 4096-token batch), and a fresh block every call had the kernel zero new pages (10 % of an int8 embedding in
/// the profile). Any thread takes a block (contents undefined) and gives it back; at most `kept` blocks stay.
enum ScratchFloats {
    struct Block { let floats: UnsafeMutablePointer<Float>; let count: Int }
    private static let free = Mutex<[(address: UInt, count: Int)]>([])
    private static let kept = 4

    static func take(_ n: Int) -> Block {
        let reused = free.withLock { blocks -> (address: UInt, count: Int)? in
            guard let i = blocks.indices.filter({ blocks[$0].count >= n }).min(by: { blocks[$0].count < blocks[$1].count })
            else { return nil }
            return blocks.remove(at: i)
        }
        if let reused { return Block(floats: UnsafeMutablePointer(bitPattern: reused.address)!, count: reused.count) }
        return Block(floats: allocateFloats(n), count: n)
    }

    static func give(_ b: Block) {
        let evicted = free.withLock { blocks -> UInt? in
            blocks.append((UInt(bitPattern: b.floats), b.count))
            guard blocks.count > kept, let i = blocks.indices.min(by: { blocks[$0].count < blocks[$1].count }) else { return nil }
            return blocks.remove(at: i).address
        }
        if let evicted { Glibc.free(UnsafeMutableRawPointer(bitPattern: evicted)) }
    }
}

/// 64-byte aligned 32-bit words (free with free()).
func allocateWords(_ n: Int) -> UnsafeMutablePointer<UInt32> {
    UnsafeMutableRawPointer(allocateFloats(n)).bindMemory(to: UInt32.self, capacity: max(n, 1))
}

/// Threads used by the matrix products of one call (set from ullme_model_params.n_threads / --threads).
/// Our kernels and per-head tasks are parallel here, so OpenBLAS (only used for small per-head and LoRA
/// products) runs single-threaded: its spinning worker threads otherwise fight ours for the cores.
/// Atomic: one thread may load a model with n_threads while another embeds.
public enum ComputeThreads {
    private static let value = Atomic<Int>(coresPinningOpenBLAS())
    public static var count: Int {
        get { value.load(ordering: .relaxed) }
        set { value.store(newValue, ordering: .relaxed) }
    }

    private static func coresPinningOpenBLAS() -> Int {
        openblas_set_num_threads(1)
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }
}

/// Runs body(i) for every i in 0..<n on up to ComputeThreads.count threads: the caller and the engine's
/// persistent workers (cullme_pool_run; inline when one thread or one task, or when called from a task).
func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    let threads = min(ComputeThreads.count, n)
    if threads <= 1 { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { body in
        var task = body
        withUnsafeMutablePointer(to: &task) { p in
            cullme_pool_run(Int64(n), Int32(threads), { ctx, i in
                ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(i))
            }, p)
        }
    }
}

/// Output features per dequantised block of a stored-rows matrix: a 256 × K panel buffer (≤ 1.5 MB for
/// K = 1536) per thread, refilled per block; every x row streams past it, so the dequantisation is paid
/// once per call, not per row tile. A multiple of 16 (panels) and of every block size (32, 256).
let storedBlockColumns = 256

/// out[T, N] = x[T, K] · Wᵀ (+ bias[N]); columns are split across threads in 16-wide panels. Dense float32
/// weights run cullme_gemm, bf16 weights cullme_gemm_bf16 (both: a row's bits independent of the split).
func linearForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: PackedMatrix,
                   bias: UnsafePointer<Float>?, T: Int) {
    guard T > 0 else { return }
    let N = w.rows, K = w.cols
    guard w.isDense else {
        storedProduct(out, x, w, bias: bias, T: T, outputs: N, K: K, transposed: false)
        return
    }
    if let i8 = w.int8 { int8Product(out, x, i8, bias: bias, T: T); return }
    if let words = w.bf16 { bf16Product(out, x, words, bias: bias, T: T, inner: K, outputs: N); return }
    let outAddress = UInt(bitPattern: out), xAddress = UInt(bitPattern: x), biasAddress = UInt(bitPattern: bias)
    forColumnRanges(N, work: T * N * K) { begin, end in
        let x = UnsafePointer<Float>(bitPattern: xAddress), out = UnsafeMutablePointer<Float>(bitPattern: outAddress)
        let bias = UnsafePointer<Float>(bitPattern: biasAddress)
        if let q = w.quantized {
            guard cullme_gemm_q(x, Int64(T), Int64(K), q, Int64(begin), Int64(end), out, Int64(N), bias) == 0 else {
                fatalError("PackedMatrix: out of memory for a \(K)-column weight block buffer")
            }
        } else {
            cullme_gemm(x, Int64(T), Int64(K), w.packed, Int64(N), Int64(begin), Int64(end), out, Int64(N), bias)
        }
    }
}

/// Runs body(begin, end) on column ranges of whole 16-wide panels, one per thread when the work (multiply-adds)
/// amortises the hand-off (~64k per thread), else once on 0 ..< N.
func forColumnRanges(_ N: Int, work: Int, _ body: (Int, Int) -> Void) {
    let panels = (N + 15) / 16
    let parts = min(ComputeThreads.count, panels, max(1, work / 65536))
    if parts <= 1 { body(0, N); return }
    parallelFor(parts) { p in body(panels * p / parts * 16, min(N, panels * (p + 1) / parts * 16)) }
}

/// out[T, outputs] = x[T, inner] · Bᵀ (+ bias) for B's bf16-pair panels (W's for a forward, Wᵀ's for a backward).
func bf16Product(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ words: UnsafePointer<UInt32>,
                 bias: UnsafePointer<Float>?, T: Int, inner: Int, outputs: Int) {
    let addresses = (UInt(bitPattern: out), UInt(bitPattern: x), UInt(bitPattern: words), UInt(bitPattern: bias))
    forColumnRanges(outputs, work: T * outputs * inner) { begin, end in
        cullme_gemm_bf16(UnsafePointer(bitPattern: addresses.1), Int64(T), Int64(inner), UnsafePointer(bitPattern: addresses.2),
                         Int64(outputs), Int64(begin), Int64(end), UnsafeMutablePointer(bitPattern: addresses.0), Int64(outputs),
                         UnsafePointer(bitPattern: addresses.3))
    }
}

/// linearForward for int8 panels: x's outliers split off and x quantised once (per row and group), then the
/// columns split across threads as for the float panels, each range taking the int8 product and then the
/// outliers' float32 one (cullme_gemm_i8.h).
private func int8Product(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                         _ w: UnsafeMutablePointer<cullme_i8panels>, bias: UnsafePointer<Float>?, T: Int) {
    let N = Int(w.pointee.rows), K = Int(w.pointee.cols), G = Int(w.pointee.group), NG = K / G
    let maxOutliers = Int(cullme_i8_outliers_max(Int64(T), Int64(K)))
    // One allocation for the inliers (T * K floats), the group scales and sums (2 * T * NG), the outliers'
    // values, indices (maxOutliers each) and row starts (T + 1 Int64), and the quantised rows (T * K bytes).
    let scratch = ScratchFloats.take(T * K + 2 * T * NG + 2 * maxOutliers + 2 * (T + 1) + (T * K + 3) / 4)
    defer { ScratchFloats.give(scratch) }
    let inliers = scratch.floats
    let sx = inliers + T * K, xsum = sx + T * NG, values = xsum + T * NG
    let indices = UnsafeMutableRawPointer(values + maxOutliers).bindMemory(to: Int32.self, capacity: maxOutliers)
    let starts = UnsafeMutableRawPointer(values + 2 * maxOutliers).bindMemory(to: Int64.self, capacity: T + 1)
    let xq = UnsafeMutableRawPointer(values + 2 * maxOutliers + 2 * (T + 1)).bindMemory(to: Int8.self, capacity: T * K)
    let outliers = cullme_i8_split_outliers(x, Int64(T), Int64(K), inliers, starts, indices, values)
    cullme_i8_quantize_rows(inliers, Int64(T), Int64(K), Int32(G), xq, sx, xsum)
    let addresses = (UInt(bitPattern: xq), UInt(bitPattern: sx), UInt(bitPattern: xsum), UInt(bitPattern: out),
                     UInt(bitPattern: bias), UInt(bitPattern: w))
    let outlierAddresses = (UInt(bitPattern: starts), UInt(bitPattern: indices), UInt(bitPattern: values))
    let columns = { (begin: Int, end: Int) in
        let w = UnsafePointer<cullme_i8panels>(bitPattern: addresses.5), out = UnsafeMutablePointer<Float>(bitPattern: addresses.3)
        cullme_gemm_i8(UnsafePointer(bitPattern: addresses.0), UnsafePointer(bitPattern: addresses.1),
                       UnsafePointer(bitPattern: addresses.2), Int64(T), w, Int64(begin), Int64(end), out, Int64(N),
                       UnsafePointer(bitPattern: addresses.4))
        if outliers > 0 {
            cullme_gemm_i8_outliers(UnsafePointer(bitPattern: outlierAddresses.0), UnsafePointer(bitPattern: outlierAddresses.1),
                                    UnsafePointer(bitPattern: outlierAddresses.2), Int64(T), w, Int64(begin), Int64(end), out, Int64(N))
        }
    }
    forColumnRanges(N, work: T * N * K, columns)
}

/// out[T, outputs] = x[T, K] · Bᵀ (+ bias) where B is W (outputs = N, K = W's cols) or, `transposed`, Wᵀ
/// (outputs = W's cols, K = W's rows), B's panels made block by block (storedBlockColumns outputs at a
/// time) into a per-thread buffer: dequantised from stored rows, or transposed from dense panels. Same
/// values and cullme_gemm's per-element FMA chain: bit-identical to a product with B packed whole.
func storedProduct(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: PackedMatrix,
                   bias: UnsafePointer<Float>?, T: Int, outputs: Int, K: Int, transposed: Bool) {
    let blocks = (outputs + storedBlockColumns - 1) / storedBlockColumns
    let parts = min(ComputeThreads.count, blocks, max(1, T * outputs * K / 65536))
    let outAddress = UInt(bitPattern: out), xAddress = UInt(bitPattern: x), biasAddress = UInt(bitPattern: bias)
    let run = { (p: Int) in
        let buf = allocateFloats(storedBlockColumns * K), scratch = allocateFloats(max(K, storedBlockColumns))
        defer { free(buf); free(scratch) }
        let out = UnsafeMutablePointer<Float>(bitPattern: outAddress)!, bias = UnsafePointer<Float>(bitPattern: biasAddress)
        for b in (blocks * p / parts)..<(blocks * (p + 1) / parts) {
            let c0 = b * storedBlockColumns, c1 = min(outputs, c0 + storedBlockColumns)
            if transposed { w.packTransposedColumns(c0, c1, into: buf, span: scratch) }
            else { w.packStoredRows(c0, c1, into: buf, row: scratch) }
            cullme_gemm(UnsafePointer(bitPattern: xAddress), Int64(T), Int64(K), buf, Int64(c1 - c0), 0, Int64(c1 - c0),
                        out + c0, Int64(outputs), bias.map { $0 + c0 })
        }
    }
    if parts <= 1 { run(0); return }
    parallelFor(parts) { run($0) }
}

/// Splits rows 0..<T into one contiguous range per thread when the work (T · width elements) is worth it;
/// row-wise kernels give the same bits however the rows are split.
func parallelRows(_ T: Int, width: Int, _ body: (Range<Int>) -> Void) {
    let parts = min(ComputeThreads.count, T, max(1, T * width / 16384))
    if parts <= 1 { body(0..<T); return }
    parallelFor(parts) { p in body((T * p / parts)..<(T * (p + 1) / parts)) }
}
