/// Where the instruction and the text go in the string a model embeds, and how it is tokenised.
/// Placeholders: `{instruction}` and `{text}` (exactly one `{text}`).
public struct PromptTemplate: Sendable, Equatable {
    public var query: String
    public var document: String
    /// The template for both sides when the instruction is empty (nil: the templates above with "").
    public var noInstruction: String? = nil
    /// Whether the tokenizer adds its own BOS/EOS (false: the template spells them, tokenised as text).
    public var addSpecial = true
    /// Append EOS when the tokenizer does not add it (e5-mistral, Qwen3-Embedding: last-token pooling).
    public var appendEOS = false

    /// One template for queries and documents alike.
    public init(both: String, noInstruction: String? = nil, addSpecial: Bool = true) {
        self.init(query: both, document: both, noInstruction: noInstruction, addSpecial: addSpecial)
    }

    public init(query: String, document: String, noInstruction: String? = nil, addSpecial: Bool = true, appendEOS: Bool = false) {
        self.query = query; self.document = document; self.noInstruction = noInstruction
        self.addSpecial = addSpecial; self.appendEOS = appendEOS
    }
}

/// Which leading tokens pooling leaves out when the prompt is excluded.
public enum PromptRule: String, Sendable {
    /// The part before the text, tokenised alone as the whole input is (BOS included): that many leading tokens.
    /// With the tokenizer's special tokens, a trailing special token of the prompt alone (an EOS the
    /// post-processor appends) is not counted: sentence-transformers' `_get_prompt_length`.
    case promptTokens = "prompt_tokens"
    /// Everything but the text's own tokens (the text tokenised alone, no special tokens) and an appended EOS:
    /// LLM2Vec's `embed_mask`.
    case textTokens = "text_tokens"
}

/// How a model is used as an embedder when a call does not say otherwise: what its sentence-transformers
/// files say, a named preset, or `ullme` (today's defaults). Explicit arguments override every field.
public struct EmbedderProfile: Sendable, Equatable {
    public var name: String
    public var pooling: Pooling
    public var attention: AttentionMode
    public var template: PromptTemplate
    /// Leave the prompt's tokens out of pooling (sentence-transformers' `include_prompt: false`).
    public var excludePrompt = false
    public var promptRule = PromptRule.promptTokens
    public var normalize = true
    /// Tokens per text (sentence-transformers' `max_seq_length`); nil: 512.
    public var maxLength: Int? = nil
    /// Named prompts (sentence-transformers' `prompts`), sorted by name, and the one used when a call names none.
    public var prompts: [(name: String, text: String)] = []
    public var defaultPromptName: String? = nil
    public var similarity: String? = nil

    public func prompt(named name: String) -> String? { prompts.first { $0.name == name }?.text }

    public static func == (a: EmbedderProfile, b: EmbedderProfile) -> Bool {
        a.name == b.name && a.pooling == b.pooling && a.attention == b.attention && a.template == b.template
            && a.excludePrompt == b.excludePrompt && a.promptRule == b.promptRule && a.normalize == b.normalize
            && a.maxLength == b.maxLength && a.prompts.map(\.name) == b.prompts.map(\.name)
            && a.prompts.map(\.text) == b.prompts.map(\.text) && a.defaultPromptName == b.defaultPromptName
            && a.similarity == b.similarity
    }
}

extension EmbedderProfile {
    /// Today's default: the ULLME reference's formats (docs/method.md §1), mean pooling, bidirectional attention.
    public static let ullme = EmbedderProfile(
        name: "ullme", pooling: .mean, attention: .bidirectional,
        template: PromptTemplate(query: "{instruction}\n{text}", document: "{instruction}\nCandidate:\n{text}", noInstruction: "{text}"))

    /// Named formats of known embedders whose directories carry no sentence-transformers files. One table:
    /// the README's "Supported embedders" lists the same rows.
    public static let presets: [EmbedderProfile] = [
        ullme,
        // GenC (the paper's released models): bos + user header + "{instruction}\n" + text + end of turn + eos,
        // tokenised without adding special tokens; bidirectional mean pooling without the prompt's tokens
        // (hieum98/GenC genc/data/base.py emb_example_format / emb_prompt_format, genc/model/genc.py).
        EmbedderProfile(
            name: "genc-llama3", pooling: .mean, attention: .bidirectional,
            template: PromptTemplate(
                both: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{instruction}\n{text}<|eot_id|>\n<|end_of_text|>",
                addSpecial: false),
            excludePrompt: true),
        EmbedderProfile(
            name: "genc-mistral", pooling: .mean, attention: .bidirectional,
            template: PromptTemplate(both: "<s>[INST]{instruction}\n{text}</s>", addSpecial: false),
            excludePrompt: true),
        // GritLM: "<|user|>\n{instruction}\n<|embed|>\n" (just "<|embed|>\n" without one) after the tokenizer's BOS;
        // bidirectional mean over the text's tokens.
        EmbedderProfile(
            name: "gritlm", pooling: .mean, attention: .bidirectional,
            template: PromptTemplate(both: "<|user|>\n{instruction}\n<|embed|>\n{text}", noInstruction: "<|embed|>\n{text}"),
            excludePrompt: true),
        // LLM2Vec: "{instruction} {text}", bidirectional mean over the text's own tokens (embed_mask).
        EmbedderProfile(
            name: "llm2vec", pooling: .mean, attention: .bidirectional,
            template: PromptTemplate(both: "{instruction} {text}", noInstruction: "{text}"),
            excludePrompt: true, promptRule: .textTokens),
        // e5-mistral-7b-instruct, SFR-Embedding-Mistral: causal, last token with EOS appended; documents bare.
        EmbedderProfile(
            name: "e5-instruct", pooling: .lastToken, attention: .causal,
            template: PromptTemplate(query: "Instruct: {instruction}\nQuery: {text}", document: "{text}", appendEOS: true)),
        // Qwen3-Embedding: as e5 but "Query:" without a space; the tokenizer's post-processor appends the EOS.
        EmbedderProfile(
            name: "qwen3-embedding", pooling: .lastToken, attention: .causal,
            template: PromptTemplate(query: "Instruct: {instruction}\nQuery:{text}", document: "{text}", appendEOS: true)),
    ]

    public static func preset(named name: String) throws -> EmbedderProfile {
        guard let p = presets.first(where: { $0.name == name }) else {
            throw ULLMEError.argument("unknown preset \"\(name)\" (expected \(presets.map(\.name).joined(separator: ", ")))")
        }
        return p
    }

    /// The profile as JSON (what `ullme_model_embedder` and `ullme info` give).
    public var json: String {
        func q(_ s: String) -> String { jsonString(s) }
        let poolingName = ["mean", "weightedmean", "cls", "lasttoken"][Int(pooling.rawValue)]
        var f = ["\"name\": \(q(name))", "\"pooling\": \(q(poolingName))",
                 "\"attention\": \(q(attention == .causal ? "causal" : "bidirectional"))",
                 "\"query_template\": \(q(template.query))", "\"document_template\": \(q(template.document))",
                 "\"no_instruction_template\": \(template.noInstruction.map(q) ?? "null")",
                 "\"add_special_tokens\": \(template.addSpecial)", "\"append_eos\": \(template.appendEOS)",
                 "\"exclude_prompt\": \(excludePrompt)", "\"prompt_rule\": \(q(promptRule.rawValue))",
                 "\"normalize\": \(normalize)", "\"max_length\": \(maxLength.map(String.init) ?? "null")"]
        f.append("\"prompts\": {" + prompts.map { "\(q($0.name)): \(q($0.text))" }.joined(separator: ", ") + "}")
        f.append("\"default_prompt_name\": \(defaultPromptName.map(q) ?? "null")")
        f.append("\"similarity_fn_name\": \(similarity.map(q) ?? "null")")
        return "{" + f.joined(separator: ", ") + "}"
    }
}
