import CULLME
import Dispatch
import Glibc
import Synchronization

/// A static weight W[N, K] (PyTorch [out, in]) packed once at load for cullme_gemm.
/// cullme_gemm computes every output element as one FMA chain over k, so a row's result never
/// depends on the batch it is in, nor on how columns are split across threads.
final class PackedMatrix: @unchecked Sendable {
    let rows: Int      // N (output features)
    let cols: Int      // K (input features)
    let packed: UnsafeMutablePointer<Float>
    /// Wᵀ packed, for training's backward pass (see `transposed`); nil until training asks.
    let transposedCache = Mutex<PackedMatrix?>(nil)

    init(_ w: [Float], rows: Int, cols: Int) {
        precondition(w.count == rows * cols, "PackedMatrix: \(w.count) values for \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        let n = cullme_gemm_packed_floats(Int64(rows), Int64(cols))
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, 64, max(n, 1) * MemoryLayout<Float>.size) == 0, let raw else {
            fatalError("PackedMatrix: out of memory for \(n) floats")
        }
        packed = raw.bindMemory(to: Float.self, capacity: n)
        w.withUnsafeBufferPointer { cullme_gemm_pack($0.baseAddress, Int64(rows), Int64(cols), packed) }
    }

    deinit { free(packed) }
}

/// Threads used by the matrix products of one call (set from ullme_model_params.n_threads / --threads).
/// Our kernels and per-head tasks are parallel here, so OpenBLAS (only used for small per-head and LoRA
/// products) runs single-threaded: its spinning worker threads otherwise fight ours for the cores.
public enum ComputeThreads {
    nonisolated(unsafe) public static var count: Int = {
        openblas_set_num_threads(1)
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }()
}

/// Runs body(0..<n) on up to ComputeThreads.count threads (inline when one thread or one task).
func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    let threads = min(ComputeThreads.count, n)
    if threads <= 1 { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var i = t
            while i < n { body(i); i += threads }
        }
    }
}

/// out[T, N] = x[T, K] · Wᵀ (+ bias[N]); columns are split across threads in 16-wide panels.
func linearForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: PackedMatrix,
                   bias: UnsafePointer<Float>?, T: Int) {
    guard T > 0 else { return }
    let N = w.rows, K = w.cols
    let panels = (N + 15) / 16
    // Enough work per thread to amortise the hand-off (~64k FMAs).
    let parts = min(ComputeThreads.count, panels, max(1, T * N * K / 65536))
    if parts <= 1 {
        cullme_gemm(x, Int64(T), Int64(K), w.packed, Int64(N), 0, Int64(N), out, Int64(N), bias)
        return
    }
    let outAddress = UInt(bitPattern: out), xAddress = UInt(bitPattern: x), biasAddress = UInt(bitPattern: bias)
    DispatchQueue.concurrentPerform(iterations: parts) { p in
        let begin = panels * p / parts * 16, end = min(N, panels * (p + 1) / parts * 16)
        cullme_gemm(UnsafePointer(bitPattern: xAddress), Int64(T), Int64(K), w.packed, Int64(N), Int64(begin), Int64(end),
                    UnsafeMutablePointer(bitPattern: outAddress), Int64(N), UnsafePointer(bitPattern: biasAddress))
    }
}

/// Splits rows 0..<T into one contiguous range per thread when the work (T · width elements) is worth it;
/// row-wise kernels give the same bits however the rows are split.
func parallelRows(_ T: Int, width: Int, _ body: (Range<Int>) -> Void) {
    let parts = min(ComputeThreads.count, T, max(1, T * width / 16384))
    if parts <= 1 { body(0..<T); return }
    parallelFor(parts) { p in body((T * p / parts)..<(T * (p + 1) / parts)) }
}
