import Glibc

/// A loaded decoder with its tokenizer: immutable after load, so one instance serves concurrent calls.
public final class Model: @unchecked Sendable {
    public let config: ModelConfig
    /// nil only for weight-only directories (no tokenizer.json); text calls then fail with a clear error.
    public let tokenizer: Tokenizer?
    public let parameterCount: Int
    let decoder: TransformerDecoder

    init(config: ModelConfig, tokenizer: Tokenizer?, weights: DecoderWeights) {
        self.config = config
        self.tokenizer = tokenizer
        self.parameterCount = weights.parameterCount
        let rope = RotaryEmbedding(rotaryDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling,
                                   freqFactors: weights.ropeFreqFactors)
        self.decoder = TransformerDecoder(config: config, weights: weights, rope: rope)
    }

    /// Loads a .gguf file or a Hugging Face model directory.
    public static func load(path: String) throws -> Model {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ULLMEError.io("\(path): \(String(cString: strerror(errno)))") }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            let dir = try HFModelDirectory(path: path)
            var config = try ModelConfig.fromHF(dir.config)
            let tokenizer = try dir.tokenizer.map { try TokenizerLoader.fromTokenizerJSON($0, config: dir.tokenizerConfig) }
            if config.tieWordEmbeddings == false, dir.tensor(named: "lm_head.weight") == nil {
                config.tieWordEmbeddings = true   // some checkpoints omit the head and tie silently
            }
            let weights = try DecoderWeights(config: config, naming: .huggingFace, tensor: { dir.tensor(named: $0) })
            return Model(config: config, tokenizer: tokenizer, weights: weights)
        }
        let file = try GGUFFile(path: path)
        let tokenizer = try TokenizerLoader.fromGGUF(file.metadata)
        var config = try ModelConfig.fromGGUF(file.metadata, vocabSizeFallback: tokenizer.vocabSize)
        config.tieWordEmbeddings = file.tensor(named: "output.weight") == nil
        let weights = try DecoderWeights(config: config, naming: .gguf, tensor: { file.tensor(named: $0) })
        return Model(config: config, tokenizer: tokenizer, weights: weights)
    }

    /// Runs the decoder on packed sequences (see `Decoder`).
    public func forward(_ sequences: [[Int32]], attention: AttentionMode, wantLogits: Bool = false) throws -> DecoderOutput {
        try decoder.forward(sequences, attention: attention, wantLogits: wantLogits)
    }

    func requireTokenizer() throws -> Tokenizer {
        guard let tokenizer else { throw ULLMEError.state("this model has no tokenizer (tokenizer.json missing); use token ids") }
        return tokenizer
    }

    /// Pad id as the reference sets it: the tokenizer's pad token, else EOS.
    public var padTokenId: Int32? { tokenizer?.padId ?? tokenizer?.eosId }
}
