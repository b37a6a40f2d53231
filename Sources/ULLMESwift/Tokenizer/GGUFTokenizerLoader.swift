/// Builds a `BPETokenizer` from GGUF `tokenizer.ggml.*` metadata, following llama.cpp (llama-vocab.cpp).
///
/// - "gpt2": byte-level BPE (tokens, merges "a b"); `tokenizer.ggml.pre` selects the pre-tokenizer.
/// - "llama": SentencePiece (tokens, scores, token_type with 6 = `<0xNN>` byte tokens): "▁" prefix
///   (add_space_prefix, default true) on every text segment, spaces -> "▁", then merge the adjacent pair
///   whose concatenation is a token with the highest score (leftmost on ties), unknown scalars fall back
///   to byte tokens — llama.cpp's llm_tokenizer_spm, equivalent to HF LlamaTokenizerFast with byte_fallback.
/// Token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. Control, unknown and
/// user-defined tokens are matched in the text before tokenization (llama.cpp's parse_special=true).
enum GGUFTokenizerLoader {
    /// SentencePiece tokens longer than this (in scalars) get no merges: finding them costs
    /// O(length^2), and real vocabularies' longest pieces are a few dozen scalars.
    static let maxMergeTokenScalars = 256

    static func load(_ m: [String: GGUFValue]) throws -> Tokenizer {
        guard let model = m["tokenizer.ggml.model"]?.string else {
            throw ULLMEError.format("GGUF: tokenizer.ggml.model missing")
        }
        guard let tokVals = m["tokenizer.ggml.tokens"]?.array else { throw ULLMEError.format("GGUF: tokenizer.ggml.tokens missing") }
        var tokens = [String]()
        tokens.reserveCapacity(tokVals.count)
        for t in tokVals {
            guard let s = t.string else { throw ULLMEError.format("GGUF: tokenizer.ggml.tokens has a non-string") }
            tokens.append(s)
        }
        guard !tokens.isEmpty, tokens.count < Int(Int32.max) else { throw ULLMEError.format("GGUF: empty or huge vocabulary") }
        var types = [Int](repeating: 1, count: tokens.count)
        if let tt = m["tokenizer.ggml.token_type"]?.array {
            guard tt.count == tokens.count else { throw ULLMEError.format("GGUF: token_type has \(tt.count) entries for \(tokens.count) tokens") }
            for (i, v) in tt.enumerated() { types[i] = v.int ?? 1 }
        }
        func id(_ key: String) -> Int32? {
            guard let v = m["tokenizer.ggml.\(key)"]?.int, v >= 0, v < tokens.count else { return nil }
            return Int32(v)
        }
        let bos = id("bos_token_id"), eos = id("eos_token_id"), pad = id("padding_token_id"), unk = id("unknown_token_id")

        var added = [AddedToken]()
        var specialIds = Set<Int32>()
        for (i, t) in types.enumerated() where t == 2 || t == 3 || t == 4 {
            added.append(AddedToken(id: Int32(i), content: Array(tokens[i].unicodeScalars), special: t != 4))
            if t != 4 { specialIds.insert(Int32(i)) }
        }
        var vocab = [String: Int32]()
        vocab.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = Int32(i) }

        var pieces = [[UInt8]](repeating: [], count: tokens.count)
        var merges = BPEMerges()
        let mode: BPEMode
        var addBOS: Bool
        switch model {
        case "gpt2":
            let pre = m["tokenizer.ggml.pre"]?.string ?? "default"
            let (steps, isLlama3) = try preTokenizer(pre)
            addBOS = isLlama3
            guard let mv = m["tokenizer.ggml.merges"]?.array else { throw ULLMEError.format("GGUF: tokenizer.ggml.merges missing") }
            for (rank, v) in mv.enumerated() {
                guard let s = v.string else { throw ULLMEError.format("GGUF: merge #\(rank) is not a string") }
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, let a = vocab[String(parts[0])], let b = vocab[String(parts[1])],
                      let c = vocab[String(parts[0]) + String(parts[1])] else {
                    throw ULLMEError.format("GGUF: merge \"\(s)\" uses tokens missing from the vocabulary")
                }
                merges.add(left: a, right: b, merged: c, rank: rank)
            }
            var byteIds = [Int32](repeating: -1, count: 256)
            var bytesVocab = [[UInt8]: Int32]()
            for (i, t) in tokens.enumerated() {
                if types[i] == 3 || types[i] == 4 { pieces[i] = Array(t.utf8); continue }
                if let b = ByteLevelAlphabet.bytes(of: t) {
                    pieces[i] = b
                    if bytesVocab[b] == nil { bytesVocab[b] = Int32(i) }
                    if b.count == 1 && byteIds[Int(b[0])] < 0 { byteIds[Int(b[0])] = Int32(i) }
                } else { pieces[i] = Array(t.utf8) }
            }
            mode = .byteLevel(ByteLevelConfig(steps: steps, addPrefixSpace: false, ignoreMerges: isLlama3,
                                              byteIds: byteIds, bytesVocab: bytesVocab))
        case "llama":
            addBOS = true
            guard let sv = m["tokenizer.ggml.scores"]?.array, sv.count == tokens.count else {
                throw ULLMEError.format("GGUF: tokenizer.ggml.scores missing or of the wrong length")
            }
            let scores = sv.map { $0.double ?? 0 }
            // NaN never equals itself, so it would have no merge rank below (a trap on hostile files).
            guard !scores.contains(where: \.isNaN) else { throw ULLMEError.format("GGUF: tokenizer.ggml.scores holds NaN") }
            var scalarIds = [Unicode.Scalar: Int32]()
            var bf = [Int32](repeating: -1, count: 256)
            for (i, t) in tokens.enumerated() {
                switch types[i] {
                case 6:
                    guard let b = TokenizerJSONLoader.byteToken(t) else { throw ULLMEError.format("GGUF: byte token \(t) is not <0xNN>") }
                    pieces[i] = [b]; bf[Int(b)] = Int32(i)
                case 2, 3, 4:
                    pieces[i] = Array(t.utf8)
                default:
                    pieces[i] = Array(t.replacingMetaspace.utf8)
                    let sc = t.unicodeScalars
                    if sc.count == 1, let f = sc.first, scalarIds[f] == nil { scalarIds[f] = Int32(i) }
                }
            }
            // Merge ranks: dense rank of the merged token's score, highest score first (ties share a rank,
            // so the leftmost position wins, as in llama.cpp's bigram queue).
            let distinct = Array(Set(scores)).sorted(by: >)
            var rankOf = [Double: Int]()
            for (r, s) in distinct.enumerated() { rankOf[s] = r }
            var cand = [Unicode.Scalar]()
            for (i, t) in tokens.enumerated() where types[i] == 1 || types[i] == 5 {
                cand.removeAll(keepingCapacity: true)
                cand.append(contentsOf: t.unicodeScalars)
                // Splitting costs O(length^2): real SentencePiece pieces are short; hostile ones are skipped.
                if cand.count < 2 || cand.count > GGUFTokenizerLoader.maxMergeTokenScalars { continue }
                let rank = rankOf[scores[i]]!
                for k in 1..<cand.count {
                    let a = String(String.UnicodeScalarView(cand[..<k])), b = String(String.UnicodeScalarView(cand[k...]))
                    guard let ia = vocab[a], let ib = vocab[b], types[Int(ia)] != 3, types[Int(ib)] != 3,
                          types[Int(ia)] != 6, types[Int(ib)] != 6 else { continue }
                    merges.add(left: ia, right: ib, merged: Int32(i), rank: rank)
                }
            }
            let spacePrefix = m["tokenizer.ggml.add_space_prefix"]?.bool ?? true
            mode = .sentencePiece(SentencePieceConfig(prefix: spacePrefix ? .everySegment : .never, splitOnSpace: false,
                                                      stripLeadingSpaceOnDecode: spacePrefix, scalarIds: scalarIds,
                                                      byteFallback: bf, unkId: unk, fuseUnk: false))
        default:
            throw ULLMEError.unsupported("GGUF: tokenizer model \"\(model)\" (supported: gpt2, llama)")
        }
        if let b = m["tokenizer.ggml.add_bos_token"]?.bool { addBOS = b }
        let addEOS = m["tokenizer.ggml.add_eos_token"]?.bool ?? false
        return BPETokenizer(tokens: tokens, pieces: pieces, specialIds: specialIds, merges: merges, added: added, mode: mode,
                            prefixIds: addBOS ? bos.map { [$0] } ?? [] : [], suffixIds: addEOS ? eos.map { [$0] } ?? [] : [],
                            bosId: bos, eosId: eos, padId: pad)
    }

    /// llama.cpp's `tokenizer.ggml.pre` values -> pre-tokenizer steps (and whether it is the Llama-3 family,
    /// which adds BOS and uses ignore_merges).
    static func preTokenizer(_ pre: String) throws -> ([RegexScanner], Bool) {
        switch pre {
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
            return ([.llama3(maxDigits: 3, marksAreLetters: false)], pre != "falcon3" && pre != "falcon-h1" && pre != "lfm2" && pre != "pixtral" && pre != "midm-2.0")
        case "qwen2", "deepseek-r1-qwen", "megrez":
            return ([.llama3(maxDigits: 1, marksAreLetters: false)], false)
        case "qwen35":
            return ([.llama3(maxDigits: 1, marksAreLetters: true)], false)
        case "default", "gpt-2", "phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "jina-v2-code",
             "roberta-bpe", "gigachat", "mpt", "olmo", "jais", "gpt-neox":
            return ([.gpt2], false)
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            return ([.digitsIndividual, .gpt2], false)
        default:
            throw ULLMEError.unsupported("GGUF: tokenizer.ggml.pre \"\(pre)\" (no pre-tokenizer for it)")
        }
    }
}
