#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A sentence-transformers model directory, as `SentenceTransformer.save` writes it: `modules.json` (the
/// Transformer, Pooling and Normalize modules, in order), `1_Pooling/config.json`, `sentence_bert_config.json`
/// (`max_seq_length`; tokenizer_config.json's `model_max_length` from version 6) and `config_sentence_transformers.json` (`prompts`, `default_prompt_name`,
/// `similarity_fn_name`). The Transformer module's folder is an ordinary Hugging Face directory whose weights
/// may come from the base model class (no `model.` prefix, no lm_head).
enum SentenceTransformersDirectory {
    /// nil when `path` has no modules.json; else the Transformer module's folder and the profile the files give.
    /// `dimension`: the Pooling module's `embedding_dimension` (legacy `word_embedding_dimension`), if given.
    static func read(_ path: String) throws -> (modelPath: String, profile: EmbedderProfile, dimension: Int?)? {
        func join(_ dir: String, _ name: String) -> String {
            name.isEmpty ? dir : (dir.hasSuffix("/") ? dir + name : dir + "/" + name)
        }
        func exists(_ p: String) -> Bool { access(p, F_OK) == 0 }
        let modulesPath = join(path, "modules.json")
        guard exists(modulesPath) else { return nil }
        guard let modules = try JSONValue.read(file: modulesPath).array else { throw ULLMEError.format("\(modulesPath): not a JSON list") }

        var profile = EmbedderProfile.ullme
        profile.name = "sentence-transformers"
        profile.attention = .causal      // AutoModel of a decoder config: ordinary causal attention
        profile.normalize = false        // only with a Normalize module
        var modelPath: String? = nil
        var sawPooling = false
        var dimension: Int? = nil
        for m in modules {
            guard let type = m["type"]?.string else { throw ULLMEError.format("\(modulesPath): a module without \"type\"") }
            let sub = m["path"]?.string ?? ""
            guard !sub.hasPrefix("/"), !sub.split(separator: "/").contains("..") else {
                throw ULLMEError.format("\(modulesPath): module path \"\(sub)\" leaves the directory")
            }
            let kind = type.split(separator: ".").last.map(String.init) ?? type
            switch kind {
            case "Transformer":
                guard modelPath == nil else { throw ULLMEError.unsupported("\(modulesPath): more than one Transformer module") }
                modelPath = join(path, sub)
            case "Pooling":
                let cfgPath = join(join(path, sub), "config.json")
                let cfg = try JSONValue.read(file: cfgPath)
                profile.pooling = try poolingMode(cfg, what: cfgPath)
                profile.excludePrompt = !(cfg["include_prompt"]?.bool ?? true)
                dimension = cfg["embedding_dimension"]?.int ?? cfg["word_embedding_dimension"]?.int
                sawPooling = true
            case "Normalize":
                profile.normalize = true
            default:
                throw ULLMEError.unsupported("\(modulesPath): module type \(type) (supported: Transformer, Pooling, Normalize)")
            }
        }
        guard let modelPath else { throw ULLMEError.format("\(modulesPath): no Transformer module") }
        if !sawPooling { profile.pooling = .mean }
        let sbert = join(modelPath, "sentence_bert_config.json")
        if exists(sbert), try JSONValue.read(file: sbert)["do_lower_case"]?.bool == true {
            throw ULLMEError.unsupported("\(sbert): do_lower_case true (texts are never lower-cased here)")
        }
        // max_seq_length: sentence_bert_config.json (sentence-transformers < 6), else the tokenizer's
        // model_max_length (>= 6 keeps it there; the "unset" value 1e30 is ignored).
        for (name, key) in [("sentence_bert_config.json", "max_seq_length"), ("sentence_transformer_config.json", "max_seq_length"),
                            ("tokenizer_config.json", "model_max_length")] {
            let p = join(modelPath, name)
            if exists(p), let v = try JSONValue.read(file: p)[key]?.double, v < 1e9 {
                guard v >= 1, v == v.rounded() else { throw ULLMEError.format("\(p): \(key) \(v) must be a positive integer") }
                profile.maxLength = Int(v)
                break
            }
        }
        let stConfig = join(path, "config_sentence_transformers.json")
        if exists(stConfig) {
            let c = try JSONValue.read(file: stConfig)
            if let prompts = c["prompts"]?.object {
                // sentence-transformers >= 6 may nest prompts per modality ({"query": {"text": ...}}).
                profile.prompts = try prompts.map { name, v in
                    guard let text = v.string ?? v["text"]?.string else {
                        throw ULLMEError.unsupported("\(stConfig): prompt \"\(name)\" is not a text prompt")
                    }
                    return (name, text)
                }.sorted { $0.name < $1.name }
            }
            if let d = c["default_prompt_name"]?.string {
                guard profile.prompt(named: d) != nil else {
                    throw ULLMEError.format("\(stConfig): default_prompt_name \"\(d)\" is not one of the prompts")
                }
                profile.defaultPromptName = d
            }
            profile.similarity = c["similarity_fn_name"]?.string
        }
        return (modelPath, profile, dimension)
    }

    /// The pooling of a Pooling module's config: sentence-transformers >= 6's `pooling_mode` (a name or a list
    /// of one) or the legacy `pooling_mode_*_tokens` flags.
    static func poolingMode(_ cfg: JSONValue, what: String) throws -> Pooling {
        var modes: [String] = []
        if let m = cfg["pooling_mode"] {
            modes = m.string.map { [$0] } ?? (m.array ?? []).compactMap(\.string)
        } else {
            let legacy = [("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_tokens", "mean"),
                          ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                          ("pooling_mode_weightedmean_tokens", "weightedmean"), ("pooling_mode_lasttoken", "lasttoken")]
            modes = legacy.filter { cfg[$0.0]?.bool == true }.map(\.1)
            if modes.isEmpty { modes = ["mean"] }
        }
        guard modes.count == 1 else {
            throw ULLMEError.unsupported("\(what): pooling modes \(modes) (one of mean, weightedmean, cls, lasttoken is supported)")
        }
        do { return try Pooling(name: modes[0]) } catch {
            throw ULLMEError.unsupported("\(what): pooling mode \"\(modes[0])\" (supported: mean, weightedmean, cls, lasttoken)")
        }
    }
}
