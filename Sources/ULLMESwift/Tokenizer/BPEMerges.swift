/// The merge table of a BPE model: (left id, right id) -> (rank, merged id), and the merge loop.
///
/// The loop is the one of HF tokenizers' `Word::merge_all` and llama.cpp's SPM tokenizer: repeatedly
/// merge the adjacent pair with the lowest rank, ties broken by the leftmost position; implemented
/// with a binary min-heap keyed (rank, position) and lazy invalidation, O(n log n) per word.
struct BPEMerges: Sendable {
    /// key = left << 32 | right (ids as UInt32); value = rank << 32 | merged id.
    private(set) var table: [UInt64: UInt64] = [:]

    var count: Int { table.count }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// Adds a merge unless the pair already has one (the first, lowest rank wins, as in HF).
    mutating func add(left: Int32, right: Int32, merged: Int32, rank: Int) {
        let k = Self.key(left, right)
        if table[k] == nil { table[k] = UInt64(UInt32(rank)) << 32 | UInt64(UInt32(bitPattern: merged)) }
    }

    /// Merges `ids` in place.
    func apply(_ ids: inout [Int32]) {
        let n = ids.count
        if n < 2 || table.isEmpty { return }
        if n == 2 {
            if let v = table[Self.key(ids[0], ids[1])] { ids = [Int32(truncatingIfNeeded: v)] }
            return
        }
        if n <= 24 { applySmall(&ids); return }
        var next = [Int32](repeating: 0, count: n)
        var prev = [Int32](repeating: 0, count: n)
        for i in 0..<n { next[i] = Int32(i + 1); prev[i] = Int32(i - 1) }
        next[n - 1] = -1
        var heap = MinHeap()
        for i in 0..<(n - 1) {
            if let v = table[Self.key(ids[i], ids[i + 1])] { heap.push((v >> 32) << 32 | UInt64(i)) }
        }
        var alive = [Bool](repeating: true, count: n)
        while let top = heap.pop() {
            let rank = top >> 32
            let pos = Int(top & 0xFFFF_FFFF)
            guard alive[pos] else { continue }
            let r = Int(next[pos])
            guard r >= 0, let v = table[Self.key(ids[pos], ids[r])], v >> 32 == rank else { continue }
            // merge pos and r
            ids[pos] = Int32(truncatingIfNeeded: v)
            alive[r] = false
            let rn = Int(next[r])
            next[pos] = Int32(rn)
            if rn >= 0 { prev[rn] = Int32(pos) }
            let p = Int(prev[pos])
            if p >= 0, let pv = table[Self.key(ids[p], ids[pos])] { heap.push((pv >> 32) << 32 | UInt64(p)) }
            if rn >= 0, let nv = table[Self.key(ids[pos], ids[rn])] { heap.push((nv >> 32) << 32 | UInt64(pos)) }
        }
        var out = [Int32]()
        out.reserveCapacity(n)
        var i = 0
        while i >= 0 { out.append(ids[i]); i = Int(next[i]) }
        ids = out
    }
}

extension BPEMerges {
    /// The same loop for short words without allocations: rescan for the lowest (rank, position) each step.
    private func applySmall(_ ids: inout [Int32]) {
        var ranks = [UInt64](repeating: .max, count: ids.count)   // ranks[i]: merge of (i, i+1)
        for i in 0..<(ids.count - 1) { if let v = table[Self.key(ids[i], ids[i + 1])] { ranks[i] = v } }
        while true {
            var best = -1
            var bestRank = UInt64.max
            for i in 0..<(ids.count - 1) where ranks[i] >> 32 < bestRank >> 32 { best = i; bestRank = ranks[i] }
            if best < 0 || bestRank == .max { return }
            ids[best] = Int32(truncatingIfNeeded: bestRank)
            ids.remove(at: best + 1)
            ranks.remove(at: best + 1)
            ranks[best] = best + 1 < ids.count ? (table[Self.key(ids[best], ids[best + 1])] ?? .max) : .max
            if best > 0 { ranks[best - 1] = table[Self.key(ids[best - 1], ids[best])] ?? .max }
            if ids.count < 2 { return }
        }
    }
}

/// A binary min-heap of UInt64.
struct MinHeap {
    private var a: [UInt64] = []
    mutating func push(_ x: UInt64) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if a[p] <= x { break }
            a[i] = a[p]; i = p
        }
        a[i] = x
    }
    mutating func pop() -> UInt64? {
        guard let last = a.popLast() else { return nil }
        if a.isEmpty { return last }
        let top = a[0]
        var i = 0
        let n = a.count
        while true {
            var c = 2 * i + 1
            if c >= n { break }
            if c + 1 < n && a[c + 1] < a[c] { c += 1 }
            if a[c] >= last { break }
            a[i] = a[c]; i = c
        }
        a[i] = last
        return top
    }
}
