import Glibc

/// A loaded decoder with its tokenizer: immutable after load, so one instance serves concurrent calls.
public final class Model: @unchecked Sendable {
    public let config: ModelConfig
    /// nil only for weight-only directories (no tokenizer.json); text calls then fail with a clear error.
    public let tokenizer: Tokenizer?
    public let parameterCount: Int
    let decoder: TransformerDecoder
    /// LoRA adapters applied by every inference forward (eval mode: no dropout); nil for the base model.
    public let adapter: LoRAModel?
    /// The projection head that came with the adapter (training only: embeddings never go through it).
    public let projectionHead: ProjectionHead?
    /// How texts are embedded when a call does not say: the directory's sentence-transformers files, a preset
    /// asked for at load, else `EmbedderProfile.ullme`.
    public private(set) var embedder = EmbedderProfile.ullme

    init(config: ModelConfig, tokenizer: Tokenizer?, weights: DecoderWeights) {
        self.config = config
        self.tokenizer = tokenizer
        self.parameterCount = weights.parameterCount
        self.decoder = TransformerDecoder(config: config, weights: weights)
        self.adapter = nil
        self.projectionHead = nil
    }

    private init(base: Model, adapter: LoRAModel?, head: ProjectionHead?) {
        config = base.config; tokenizer = base.tokenizer; parameterCount = base.parameterCount; embedder = base.embedder
        decoder = base.decoder   // shares the (immutable) weights
        self.adapter = adapter; projectionHead = head
    }

    /// This model's weights with `lora` applied at inference (replacing any adapter it had; nil = none).
    /// The adapters are copied and put in eval mode, so later changes to `lora` do not affect the result.
    public func withAdapter(_ lora: LoRAModel?, head: ProjectionHead? = nil) throws -> Model {
        guard let lora else { return Model(base: self, adapter: nil, head: nil) }
        guard lora.adapters.count == config.nLayers else {
            throw ULLMEError.argument("the adapter has \(lora.adapters.count) layers, the model \(config.nLayers)")
        }
        let known = config.loraTargets
        for t in lora.targets where !known.contains(t) {
            throw ULLMEError.argument("adapter target \(t.name) does not fit this \(config.architecture) model")
        }
        let copy = LoRAModel(targets: lora.targets, adapters: lora.adapters, seed: lora.seed)
        copy.training = false
        return Model(base: self, adapter: copy, head: head)
    }

    /// How linear weights are kept (see WeightStorage).
    public var weightStorage: WeightStorage { decoder.weights.storage }
    /// The precision asked for at load (see Precision).
    public var precision: Precision { decoder.weights.precision }
    /// What the linear layers run: "exact", "avx512_bf16", or "exact fallback: <why>" when bf16 was asked
    /// for and the CPU has no AVX512_BF16 (or the weights are stored).
    public var precisionPath: String { decoder.weights.precisionPath }
    /// True when the linear weights are bf16 (inference only: training needs the float32 weights).
    public var usesBF16Weights: Bool { decoder.weights.bf16 }
    /// Bytes of weights the model holds in memory of its own (stored rows stay in the file mapping).
    public var weightBytes: Int { decoder.weights.ownedBytes }

    /// The storage a load gets when none is asked for: ULLME_WEIGHTS=dense|stored|quantized, else quantized
    /// (dense's speed at a third of its memory; dense wherever a weight has no integer quantisation; training
    /// runs that load their own model ask for stored, see GRLTrainer).
    public static var defaultWeightStorage: WeightStorage {
        environmentChoice("ULLME_WEIGHTS", default: .quantized, expected: "dense, stored or quantized")
    }

    /// Loads a model (as `load(path:)`) with a PEFT LoRA adapter directory applied (see AdapterIO) and
    /// the embedder profile `preset` (a name of `EmbedderProfile.presets`; nil: the directory's
    /// sentence-transformers files, else `ullme`).
    public static func load(path: String, adapter: String?, storage: WeightStorage? = nil,
                            precision: Precision? = nil, preset: String? = nil) throws -> Model {
        let base = try load(path: path, storage: storage, precision: precision)
        if let preset { base.embedder = try EmbedderProfile.preset(named: preset) }
        guard let adapter else { return base }
        // Several directories, one per line, are stacked in order (LLM2Vec: the MNTP adapter, then the supervised
        // one): their updates add up, as merging each into the weights before loading the next does.
        let dirs = adapter.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard !dirs.contains(where: \.isEmpty) else { throw ULLMEError.argument("adapter path list has an empty entry") }
        let loaded = try dirs.map { try AdapterIO.load(from: $0, config: base.config) }
        let lora = loaded.count == 1 ? loaded[0].lora : LoRAModel(stacking: loaded.map(\.lora), config: base.config)
        return try base.withAdapter(lora, head: loaded.last { $0.head != nil }?.head)
    }

    /// Loads a .gguf file or a Hugging Face model directory. `precision` nil means
    /// Precision.defaultPrecision ($ULLME_PRECISION, else exact).
    public static func load(path: String, storage: WeightStorage? = nil, precision: Precision? = nil) throws -> Model {
        let storage = storage ?? defaultWeightStorage
        let precision = precision ?? Precision.defaultPrecision
        var st = stat()
        guard stat(path, &st) == 0 else { throw ULLMEError.io("\(path): \(String(cString: strerror(errno)))") }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            let st = try SentenceTransformersDirectory.read(path)
            let dir = try HFModelDirectory(path: st?.modelPath ?? path)
            var config = try ModelConfig.fromHF(dir.config)
            if let d = st?.dimension, d != config.hiddenSize {
                throw ULLMEError.format("\(path): the Pooling module's embedding_dimension \(d) is not the model's hidden size \(config.hiddenSize)")
            }
            let tokenizer = try dir.tokenizer.map { try TokenizerLoader.fromTokenizerJSON($0, config: dir.tokenizerConfig) }
            if config.tieWordEmbeddings == false, dir.tensor(named: "lm_head.weight") == nil {
                config.tieWordEmbeddings = true   // some checkpoints omit the head and tie silently
            }
            // Weights saved from the base model class (sentence-transformers, AutoModel) name the decoder's
            // tensors without the "model." prefix.
            let bare = dir.tensor(named: "model.embed_tokens.weight") == nil && dir.tensor(named: "embed_tokens.weight") != nil
            let weights = try DecoderWeights(config: config, naming: .huggingFace, storage: storage, precision: precision, owner: dir,
                                             tensor: { dir.tensor(named: bare && $0.hasPrefix("model.") ? String($0.dropFirst(6)) : $0) })
            let model = Model(config: config, tokenizer: tokenizer, weights: weights)
            if let st { model.embedder = st.profile }
            return model
        }
        let file = try GGUFFile(path: path)
        let tokenizer = try TokenizerLoader.fromGGUF(file.metadata)
        var config = try ModelConfig.fromGGUF(file.metadata, vocabSizeFallback: tokenizer.vocabSize)
        config.tieWordEmbeddings = file.tensor(named: "output.weight") == nil
        let weights = try DecoderWeights(config: config, naming: .gguf, storage: storage, precision: precision, owner: file,
                                         tensor: { file.tensor(named: $0) })
        if case .longrope(_, _, let original, let factor) = config.ropeScaling {
            guard let f = weights.longropeFactors else { throw ULLMEError.format("GGUF: longrope without rope_factors_long/short tensors") }
            config.ropeScaling = .longrope(short: f.short, long: f.long, originalMaxPositions: original, attentionFactor: factor)
        }
        try config.validate()
        return Model(config: config, tokenizer: tokenizer, weights: weights)
    }

    /// Runs the decoder on packed sequences (see `Decoder`).
    public func forward(_ sequences: [[Int32]], attention: AttentionMode, wantLogits: Bool = false) throws -> DecoderOutput {
        try decoder.forward(sequences, attention: attention, wantLogits: wantLogits,
                            lora: adapter.map { LoRAContext(model: $0, examples: Array(sequences.indices), pass: 0) })
    }

    func requireTokenizer() throws -> Tokenizer {
        guard let tokenizer else { throw ULLMEError.state("this model has no tokenizer (tokenizer.json missing); use token ids") }
        return tokenizer
    }

    /// Pad id as the reference sets it: the tokenizer's pad token, else EOS.
    public var padTokenId: Int32? { tokenizer?.padId ?? tokenizer?.eosId }
}
