import CULLME

/// Exact top-k search by dot product (cosine for L2-normalised rows). The score matrix is computed
/// with cblas_sgemm, `chunk` queries at a time, so memory stays at chunk x nDocs floats.
public enum ExactSearch {
    /// queries: nq x dim, docs: nd x dim, row-major. Returns for each query up to k (doc index, score)
    /// pairs, best first; equal scores are ordered by `tieRank` ascending (default: doc index), so
    /// the result is deterministic.
    public static func topK(queries: [Float], docs: [Float], dim: Int, k: Int, chunk: Int = 256,
                            tieRank: [Int]? = nil) -> [[(index: Int, score: Float)]] {
        precondition(dim > 0 && queries.count % dim == 0 && docs.count % dim == 0, "topK: bad shapes")
        let nq = queries.count / dim, nd = docs.count / dim, k = min(k, nd)
        guard nq > 0, nd > 0, k > 0 else { return Array(repeating: [], count: nq) }
        let tie = tieRank ?? Array(0..<nd)
        var results: [[(index: Int, score: Float)]] = []
        results.reserveCapacity(nq)
        let rows = max(1, min(chunk, nq))
        var scores = [Float](repeating: 0, count: rows * nd)
        for q0 in stride(from: 0, to: nq, by: rows) {
            let m = min(rows, nq - q0)
            queries.withUnsafeBufferPointer { qp in
                docs.withUnsafeBufferPointer { dp in
                    scores.withUnsafeMutableBufferPointer { sp in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(nd), Int32(dim), 1,
                                    qp.baseAddress! + q0 * dim, Int32(dim), dp.baseAddress!, Int32(dim), 0,
                                    sp.baseAddress!, Int32(nd))
                    }
                }
            }
            for r in 0..<m {
                results.append(selectTop(scores, row: r * nd, n: nd, k: k, tie: tie))
            }
        }
        return results
    }

    /// The k best of scores[row ..< row+n] with a bounded min-heap (worst on top), then sorted.
    static func selectTop(_ s: [Float], row: Int, n: Int, k: Int, tie: [Int]) -> [(index: Int, score: Float)] {
        // a "worse than" b: lower score, or equal score and larger tie rank
        @inline(__always) func worse(_ a: Int, _ b: Int) -> Bool {
            let sa = s[row + a], sb = s[row + b]
            return sa < sb || (sa == sb && tie[a] > tie[b])
        }
        var heap: [Int] = []
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var w = i
                if l < heap.count && worse(heap[l], heap[w]) { w = l }
                if r < heap.count && worse(heap[r], heap[w]) { w = r }
                if w == i { return }
                heap.swapAt(i, w); i = w
            }
        }
        for d in 0..<n {
            if heap.count < k {
                heap.append(d)
                var i = heap.count - 1
                while i > 0 {
                    let p = (i - 1) / 2
                    if worse(heap[i], heap[p]) { heap.swapAt(i, p); i = p } else { break }
                }
            } else if worse(heap[0], d) {
                heap[0] = d
                siftDown(0)
            }
        }
        heap.sort { worse($1, $0) }
        return heap.map { ($0, s[row + $0]) }
    }
}
