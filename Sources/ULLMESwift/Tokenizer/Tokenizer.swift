/// A text tokenizer: raw bytes in, token ids out (and back).
///
/// Input text is raw bytes. Invalid UTF-8 is replaced exactly as Python's
/// `bytes.decode("utf-8", errors="replace")` does (see `UTF8Scalars.swift`); NUL is an ordinary character.
public protocol Tokenizer: Sendable {
    /// Token ids of `text`; with `addSpecial` the model's BOS/EOS (post-processor template) are added.
    func encode(_ text: [UInt8], addSpecial: Bool) -> [Int32]
    /// The bytes of `ids`; with `skipSpecial` control/special tokens are left out. Unknown ids are skipped.
    func decode(_ ids: [Int32], skipSpecial: Bool) -> [UInt8]
    var vocabSize: Int { get }
    var bosId: Int32? { get }
    var eosId: Int32? { get }
    var padId: Int32? { get }
    /// What `encode(_, addSpecial: true)` puts before and after the text's tokens (the post-processor's template).
    var prefixIds: [Int32] { get }
    var suffixIds: [Int32] { get }
    /// Whether `encode(_, addSpecial: true)` prepends BOS / appends EOS.
    var addsBOS: Bool { get }
    var addsEOS: Bool { get }
    /// The vocabulary string of a token (as stored: byte-level BPE tokens use the GPT-2 byte alphabet,
    /// SentencePiece tokens use "▁" for spaces); nil when out of range.
    func token(_ id: Int32) -> String?
    /// Whether `id` is a special token (BOS, EOS, pad, added tokens marked special).
    func isSpecial(_ id: Int32) -> Bool
}

/// Builds tokenizers from HF tokenizer.json (+ tokenizer_config.json) or GGUF metadata.
public enum TokenizerLoader {
    /// `tokenizer`: the parsed tokenizer.json; `config`: the parsed tokenizer_config.json, if any.
    public static func fromTokenizerJSON(_ tokenizer: JSONValue, config: JSONValue?) throws -> Tokenizer {
        try TokenizerJSONLoader.load(tokenizer, config: config)
    }

    /// `metadata`: the GGUF key/value metadata (`tokenizer.ggml.*`).
    public static func fromGGUF(_ metadata: [String: GGUFValue]) throws -> Tokenizer {
        try GGUFTokenizerLoader.load(metadata)
    }
}
