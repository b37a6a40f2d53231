// The training order: which examples form each global batch, and which positives and negatives each
// example gets, as pure functions of (seed, epoch).
//
// Reference behaviour (ullme/data_modules/ullme_datamodules.py, ClusteringDataSampler — the sampler the
// data module actually uses; ConcatedDataSampler is the same without clusters):
//  1. per data set, its examples grouped by "cluster" (clusters in sorted order), each cluster's indices
//     shuffled (random.Random(seed + epoch)), the clusters concatenated; without clusters this is one
//     shuffle of the data set. Indices are offset into the concatenated data set.
//  2. each data set's list is cut into batches of the global batch size B; a data set's last partial
//     batch is taken out.
//  3. drop_last=False (what the reference uses): the partial batches are put in a random order of data
//     sets, concatenated, cut into batches of B again, and the last partial one is dropped. These few
//     "mixed" batches hold examples of several data sets (each example keeps its own instruction).
//     drop_last=True drops every partial batch, so every batch comes from one data set.
//  4. the batches are shuffled (torch.randperm) and yielded in that order.
// We do the same with counter-based keyed streams in place of torch's and Python's generators (so the
// orders are not bit-identical to the reference's, only the same in structure). `Leftovers.mix` is
// step 3 as the reference; `.drop` keeps every batch within a single data set.
//
// Epoch seeding: the reference re-creates the data each epoch with seed' = seed' + epoch, i.e. a
// cumulative seed + epoch·(epoch+1)/2, and never calls the sampler's set_epoch. We key every stream by
// (seed, epoch) directly.
//
// Positives/negatives (ULLMEDataset.__getitem__ + ULLMECollator): each example samples
// min(count, pos_per_sample) positives and min(count, neg_per_sample) negatives WITHOUT replacement
// (random.sample); the collator then cuts every example of the batch down to the batch minimum, again by
// random.sample. So a batch has P = min over its examples of min(#positives, pos_per_sample) (same for
// N), never with replacement. `Shortfall.batchMinimum` does this (one sample of size P per example,
// keyed by (seed, epoch, global index), which has the same distribution); `Shortfall.withReplacement`
// instead always gives pos_per_sample/neg_per_sample, drawing with replacement only for an example
// that has fewer.
//
// Labels: the example's global index (ConcatULLMEDataset sets query_label = the concatenated index), so
// unique across all data sets.
//
// Note on the reference's collator: it stacks its rows as [all queries, all positives, all negatives]
// and then reshapes '(b n) l -> b n l', which regroups rows by position rather than by example when
// B > 1 (the same for the generation rows [all chosen, all rejected]). We group per example — query,
// its P positives, its N negatives — which is what the reference's loss code assumes.

public struct GRLBatchSampler: Sendable {
    /// What happens to each data set's last partial batch.
    public enum Leftovers: Sendable, Equatable {
        /// The reference (drop_last=False): mix them into batches of B; drop the final partial batch.
        case mix
        /// drop_last=True: drop them; every batch comes from a single data set.
        case drop
    }

    /// What happens when an example has fewer positives (negatives) than asked for.
    public enum Shortfall: Sendable, Equatable {
        /// The reference: the batch uses the minimum available count over its examples.
        case batchMinimum
        /// Always the requested count; draw with replacement only for an example that has fewer.
        case withReplacement
    }

    public let datasets: [GRLDataset]
    /// Global index of each data set's first example.
    public let offsets: [Int]
    public let batchSize: Int
    public let posPerSample: Int
    public let negPerSample: Int
    public let seed: UInt64
    public let leftovers: Leftovers
    public let shortfall: Shortfall
    public let shuffle: Bool
    /// Batches per epoch (the same every epoch).
    public let stepsPerEpoch: Int
    /// Each data set's local indices grouped by cluster, clusters in sorted order (examples without a
    /// cluster form the first group).
    let groups: [[[Int]]]

    public init(datasets: [GRLDataset], batchSize: Int, posPerSample: Int = 1, negPerSample: Int = 1,
                seed: UInt64, leftovers: Leftovers = .mix, shortfall: Shortfall = .batchMinimum,
                shuffle: Bool = true) throws {
        guard !datasets.isEmpty else { throw ULLMEError.argument("GRLBatchSampler: no data sets") }
        guard batchSize >= 1 else { throw ULLMEError.argument("global_batch_size must be >= 1, got \(batchSize)") }
        guard posPerSample >= 1 else { throw ULLMEError.argument("pos_per_sample must be >= 1, got \(posPerSample)") }
        guard negPerSample >= 1 else { throw ULLMEError.argument("neg_per_sample must be >= 1, got \(negPerSample)") }
        for d in datasets where d.examples.isEmpty {
            throw ULLMEError.argument("GRLBatchSampler: data set \(d.name) has no examples")
        }
        self.datasets = datasets
        self.batchSize = batchSize
        self.posPerSample = posPerSample
        self.negPerSample = negPerSample
        self.seed = seed
        self.leftovers = leftovers
        self.shortfall = shortfall
        self.shuffle = shuffle
        var offs: [Int] = [], total = 0
        for d in datasets { offs.append(total); total += d.count }
        offsets = offs
        groups = datasets.map { d in
            var unclustered: [Int] = []
            var byCluster: [GRLClusterKey: [Int]] = [:]
            for (i, e) in d.examples.enumerated() {
                if let c = e.cluster { byCluster[c, default: []].append(i) } else { unclustered.append(i) }
            }
            var g: [[Int]] = unclustered.isEmpty ? [] : [unclustered]
            for k in byCluster.keys.sorted() { g.append(byCluster[k]!) }
            return g
        }
        let full = datasets.reduce(0) { $0 + $1.count / batchSize }
        let rest = datasets.reduce(0) { $0 + $1.count % batchSize }
        stepsPerEpoch = full + (leftovers == .mix ? rest / batchSize : 0)
        guard stepsPerEpoch > 0 else {
            throw ULLMEError.argument("global_batch_size \(batchSize) is larger than the training data "
                + "(\(total) examples in \(datasets.count) data sets): no full batch")
        }
    }

    /// Total number of examples over all data sets.
    public var exampleCount: Int { offsets.last! + datasets.last!.count }

    /// (data set, local index) of a global index.
    public func locate(_ global: Int) -> (dataset: Int, local: Int) {
        precondition(global >= 0 && global < exampleCount, "global index \(global) out of range")
        var lo = 0, hi = offsets.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if offsets[mid] <= global { lo = mid } else { hi = mid - 1 }
        }
        return (lo, global - offsets[lo])
    }

    /// The epoch's batches as global example indices, in training order (`stepsPerEpoch` of them).
    public func batchIndices(epoch: Int) -> [[Int]] {
        var batches: [[Int]] = []
        var partial: [(dataset: Int, indices: [Int])] = []
        for d in datasets.indices {
            var order: [Int] = []
            order.reserveCapacity(datasets[d].count)
            for (g, group) in groups[d].enumerated() {
                order += shuffle ? dataRandom(seed: seed, epoch: epoch, .datasetOrder, d, g).shuffled(group) : group
            }
            let off = offsets[d]
            var s = 0
            while s < order.count {
                let chunk = order[s..<min(s + batchSize, order.count)].map { $0 + off }
                if chunk.count == batchSize { batches.append(chunk) } else { partial.append((d, chunk)) }
                s += batchSize
            }
        }
        if leftovers == .mix && !partial.isEmpty {
            let perm = dataRandom(seed: seed, epoch: epoch, .leftoverOrder).shuffled(Array(partial.indices))
            let pool = perm.flatMap { partial[$0].indices }
            var s = 0
            while s + batchSize <= pool.count {
                batches.append(Array(pool[s..<s + batchSize]))
                s += batchSize
            }
        }
        if shuffle {
            let perm = dataRandom(seed: seed, epoch: epoch, .batchOrder).shuffled(Array(batches.indices))
            batches = perm.map { batches[$0] }
        }
        return batches
    }

    /// The batch of `step` (0-based, < stepsPerEpoch) in `epoch`. Recomputes the epoch's order; to walk
    /// a whole epoch use `batches(epoch:)` or `makeBatch(epoch:step:indices:)` with `batchIndices(epoch:)`.
    public func batch(epoch: Int, step: Int) -> GRLBatch {
        let all = batchIndices(epoch: epoch)
        precondition(step >= 0 && step < all.count, "step \(step) out of range 0..<\(all.count)")
        return makeBatch(epoch: epoch, step: step, indices: all[step])
    }

    /// Every batch of the epoch, in order.
    public func batches(epoch: Int) -> [GRLBatch] {
        batchIndices(epoch: epoch).enumerated().map { makeBatch(epoch: epoch, step: $0.offset, indices: $0.element) }
    }

    /// Builds the batch of the given global indices: samples positives and negatives and sets labels.
    public func makeBatch(epoch: Int, step: Int, indices: [Int]) -> GRLBatch {
        let located = indices.map { locate($0) }
        var p = posPerSample, n = negPerSample
        if shortfall == .batchMinimum {
            for (d, i) in located {
                let e = datasets[d].examples[i]
                p = min(p, e.positives.count)
                n = min(n, e.negatives.count)
            }
        }
        var examples: [GRLBatchExample] = []
        examples.reserveCapacity(indices.count)
        for (k, (d, i)) in located.enumerated() {
            let ds = datasets[d], e = ds.examples[i], g = indices[k]
            let pos = pick(e.positives, p, dataRandom(seed: seed, epoch: epoch, .positives, g))
            let neg = pick(e.negatives, n, dataRandom(seed: seed, epoch: epoch, .negatives, g))
            examples.append(GRLBatchExample(query: e.query, positives: pos, negatives: neg,
                                            instruction: ds.instruction, alignmentInstruction: ds.alignmentInstruction,
                                            dataset: d, index: g, label: g))
        }
        let ds0 = located.first?.dataset
        let single = located.allSatisfy { $0.dataset == ds0 }
        return GRLBatch(epoch: epoch, step: step, dataset: single ? ds0 : nil, examples: examples,
                        positivesPerExample: p, negativesPerExample: n)
    }

    /// k texts of `texts`: without replacement when there are enough, else all of them (shuffled) plus
    /// uniform draws with replacement.
    func pick(_ texts: [String], _ k: Int, _ r: KeyedRandom) -> [String] {
        if k <= texts.count { return r.sampleWithoutReplacement(texts.count, k).map { texts[$0] } }
        var out = r.shuffled(texts)
        for j in texts.count..<k { out.append(texts[r.below(texts.count, (UInt64(1) << 32) + UInt64(j))]) }
        return out
    }
}
