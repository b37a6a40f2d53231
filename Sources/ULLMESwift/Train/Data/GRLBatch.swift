// One optimiser step's worth of training data (a global batch of B examples).

/// One example of a batch: the texts (raw, unformatted; see GRLTextFormat and the extension there for
/// the formatted texts), where it came from, and its label.
public struct GRLBatchExample: Sendable, Equatable {
    public var query: String
    /// The P sampled positives.
    public var positives: [String]
    /// The N sampled negatives.
    public var negatives: [String]
    /// The data set's instruction (`{instruction}` of the query format).
    public var instruction: String
    /// The data set's alignment instruction for the generation examples.
    public var alignmentInstruction: String
    /// Index of the data set in the sampler's list.
    public var dataset: Int
    /// The example's global index: its data set's offset (the sizes of the data sets before it) plus its
    /// index inside the data set (the reference's ConcatDataset index).
    public var index: Int
    /// The contrastive label of the query and its positives: the global index, as the reference's
    /// ConcatULLMEDataset does, so unique across the whole training set. Negatives get their own labels
    /// in the loss (max query label + 1 + k), not here.
    public var label: Int

    public init(query: String, positives: [String], negatives: [String], instruction: String,
                alignmentInstruction: String, dataset: Int, index: Int, label: Int) {
        self.query = query; self.positives = positives; self.negatives = negatives
        self.instruction = instruction; self.alignmentInstruction = alignmentInstruction
        self.dataset = dataset; self.index = index; self.label = label
    }
}

/// A global batch.
public struct GRLBatch: Sendable, Equatable {
    public var epoch: Int
    /// The step inside the epoch (0-based).
    public var step: Int
    /// The data set every example comes from, or nil for a batch mixed from the data sets' leftover
    /// partial batches (GRLBatchSampler.Leftovers.mix, the reference's drop_last=False).
    public var dataset: Int?
    public var examples: [GRLBatchExample]
    /// P and N of this batch (every example has exactly these counts).
    public var positivesPerExample: Int
    public var negativesPerExample: Int

    public init(epoch: Int, step: Int, dataset: Int?, examples: [GRLBatchExample],
                positivesPerExample: Int, negativesPerExample: Int) {
        self.epoch = epoch; self.step = step; self.dataset = dataset; self.examples = examples
        self.positivesPerExample = positivesPerExample; self.negativesPerExample = negativesPerExample
    }

    public var count: Int { examples.count }
    public var labels: [Int] { examples.map(\.label) }
    public var indices: [Int] { examples.map(\.index) }
}
