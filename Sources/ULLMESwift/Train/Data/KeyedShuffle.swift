// Seeded shuffles and samples for the data pipeline, as pure functions of a key (no hidden RNG state),
// built on KeyedRandom (Train/Random.swift). The keys live in their own domain (a tag absorbed
// first), so they never coincide with the dropout or initialisation streams.

/// What a data stream is for; absorbed into the key.
enum DataStream: UInt64 {
    case datasetOrder = 1     // per data set: the order of its examples in an epoch
    case leftoverOrder = 2    // the order in which the data sets' partial batches are concatenated
    case batchOrder = 3       // the order of the epoch's batches
    case positives = 4        // an example's positives in an epoch
    case negatives = 5        // an example's negatives in an epoch
}

/// The stream for (seed, epoch, what, a, b).
func dataRandom(seed: UInt64, epoch: Int, _ what: DataStream, _ a: Int = 0, _ b: Int = 0) -> KeyedRandom {
    var h = splitMix64(0x4752_4C44_4154_4131)  // "GRLDATA1"
    h = splitMix64(h ^ seed)
    h = splitMix64(h ^ UInt64(truncatingIfNeeded: epoch))
    h = splitMix64(h ^ what.rawValue)
    h = splitMix64(h ^ UInt64(truncatingIfNeeded: a))
    h = splitMix64(h ^ UInt64(truncatingIfNeeded: b))
    return KeyedRandom(rawKey: h)
}

extension KeyedRandom {
    /// A uniform integer in 0..<n (n ≥ 1) for counter i (Lemire's multiply-shift; bias < n / 2^64).
    func below(_ n: Int, _ i: UInt64) -> Int {
        Int(bits(i).multipliedFullWidth(by: UInt64(n)).high)
    }

    /// A Fisher–Yates shuffle of `a`.
    func shuffled<T>(_ a: [T]) -> [T] {
        var a = a
        if a.count < 2 { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = below(i + 1, UInt64(i))
            if i != j { a.swapAt(i, j) }
        }
        return a
    }

    /// k distinct indices of 0..<n in random order (k ≤ n): a partial Fisher–Yates shuffle.
    func sampleWithoutReplacement(_ n: Int, _ k: Int) -> [Int] {
        precondition(k <= n)
        var a = Array(0..<n)
        for i in 0..<k {
            let j = i + below(n - i, UInt64(i))
            if i != j { a.swapAt(i, j) }
        }
        return Array(a[0..<k])
    }
}
