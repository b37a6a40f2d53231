/// Builds a `BPETokenizer` from HF tokenizer.json (+ tokenizer_config.json).
///
/// Supported: model BPE (merges as "a b" strings or [a, b] pairs; byte_fallback, ignore_merges,
/// unk_token, fuse_unk); normalizer null / NFC-free Prepend("▁") + Replace(" ", "▁");
/// pre-tokenizers ByteLevel, Split (known regexes), Digits, Metaspace, Sequence;
/// post-processors TemplateProcessing, ByteLevel, Sequence of those. Anything else: `.unsupported`.
enum TokenizerJSONLoader {
    static func load(_ j: JSONValue, config: JSONValue?) throws -> Tokenizer {
        guard let model = j["model"], model.object != nil else { throw ULLMEError.format("tokenizer.json: no \"model\"") }
        let type = model["type"]?.string ?? "BPE"
        guard type == "BPE" else { throw ULLMEError.unsupported("tokenizer.json: model type \(type) (only BPE)") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key]?.string, !v.isEmpty {
                throw ULLMEError.unsupported("tokenizer.json: BPE \(key) \"\(v)\"")
            }
        }
        if let d = model["dropout"]?.double, d > 0 { throw ULLMEError.unsupported("tokenizer.json: BPE dropout") }

        // Vocabulary (model vocab + added tokens).
        guard let vocabObj = model["vocab"]?.object else { throw ULLMEError.format("tokenizer.json: model.vocab missing") }
        var vocab = [String: Int32]()
        vocab.reserveCapacity(vocabObj.count)
        var maxId = -1
        for (k, v) in vocabObj {
            guard let id = v.int, id >= 0, id < Int(Int32.max) else { throw ULLMEError.format("tokenizer.json: bad id for token \(k)") }
            vocab[k] = Int32(id); maxId = max(maxId, id)
        }
        var added = [AddedToken]()
        for a in j["added_tokens"]?.array ?? [] {
            guard let id = a["id"]?.int, id >= 0, id < Int(Int32.max), let content = a["content"]?.string else {
                throw ULLMEError.format("tokenizer.json: bad added_tokens entry")
            }
            added.append(AddedToken(id: Int32(id), content: Array(content.unicodeScalars), special: a["special"]?.bool ?? false,
                                    lstrip: a["lstrip"]?.bool ?? false, rstrip: a["rstrip"]?.bool ?? false,
                                    singleWord: a["single_word"]?.bool ?? false, normalized: a["normalized"]?.bool ?? false))
            maxId = max(maxId, id)
        }
        // The token table is indexed by id: a lone huge id would allocate far more than the file's size.
        guard maxId < 10_000_000, maxId < 2 * (vocabObj.count + added.count) + 1024 else {
            throw ULLMEError.format("tokenizer.json: token id \(maxId) too large for \(vocabObj.count + added.count) tokens")
        }
        var tokens = [String](repeating: "", count: maxId + 1)
        for (k, v) in vocab { tokens[Int(v)] = k }
        for a in added {
            tokens[Int(a.id)] = String(String.UnicodeScalarView(a.content))
            if vocab[tokens[Int(a.id)]] == nil { vocab[tokens[Int(a.id)]] = a.id }
        }

        // Merges.
        var merges = BPEMerges()
        for (rank, m) in (model["merges"]?.array ?? []).enumerated() {
            let a: String, b: String
            if let s = m.string {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw ULLMEError.format("tokenizer.json: bad merge \"\(s)\"") }
                a = String(parts[0]); b = String(parts[1])
            } else if let p = m.array, p.count == 2, let x = p[0].string, let y = p[1].string {
                a = x; b = y
            } else { throw ULLMEError.format("tokenizer.json: bad merge entry #\(rank)") }
            guard let ia = vocab[a], let ib = vocab[b], let im = vocab[a + b] else {
                throw ULLMEError.format("tokenizer.json: merge \"\(a) \(b)\" uses tokens missing from the vocab")
            }
            merges.add(left: ia, right: ib, merged: im, rank: rank)
        }

        // Normalizer / pre-tokenizer.
        var norm = try normalizer(j["normalizer"])
        var steps = [RegexScanner]()
        var byteLevel = false
        var addPrefixSpace = false
        var metaspace: (prefix: SpacePrefix, split: Bool)?
        try preTokenizer(j["pre_tokenizer"], replaceSpace: norm.replaceSpace, steps: &steps, byteLevel: &byteLevel, addPrefixSpace: &addPrefixSpace, metaspace: &metaspace)
        if j["decoder"]?["type"]?.string == "ByteLevel" { byteLevel = true }
        if addPrefixSpace && !steps.isEmpty && steps.first != .gpt2 {
            throw ULLMEError.unsupported("tokenizer.json: ByteLevel add_prefix_space after another pre-tokenizer")
        }

        let byteFallback = model["byte_fallback"]?.bool ?? false
        let unkId = model["unk_token"]?.string.flatMap { vocab[$0] }
        var pieces = [[UInt8]](repeating: [], count: tokens.count)
        let addedIds = Set(added.map(\.id))
        let mode: BPEMode
        if byteLevel {
            if norm.prefix != nil || norm.replaceSpace || metaspace != nil {
                throw ULLMEError.unsupported("tokenizer.json: byte-level BPE combined with a Metaspace/Prepend normalizer")
            }
            var byteIds = [Int32](repeating: -1, count: 256)
            var bytesVocab = [[UInt8]: Int32]()
            bytesVocab.reserveCapacity(tokens.count)
            for (id, t) in tokens.enumerated() {
                if addedIds.contains(Int32(id)) { pieces[id] = Array(t.utf8); continue }
                if let b = ByteLevelAlphabet.bytes(of: t) {
                    pieces[id] = b
                    bytesVocab[b] = Int32(id)
                    if b.count == 1 && byteIds[Int(b[0])] < 0 { byteIds[Int(b[0])] = Int32(id) }
                } else {
                    pieces[id] = Array(t.utf8)
                }
            }
            mode = .byteLevel(ByteLevelConfig(steps: steps, addPrefixSpace: addPrefixSpace,
                                              ignoreMerges: model["ignore_merges"]?.bool ?? false,
                                              byteIds: byteIds, bytesVocab: bytesVocab))
        } else {
            if !steps.isEmpty { throw ULLMEError.unsupported("tokenizer.json: Split/Digits pre-tokenizers without ByteLevel") }
            if model["ignore_merges"]?.bool == true { throw ULLMEError.unsupported("tokenizer.json: ignore_merges without ByteLevel") }
            var prefix: SpacePrefix = .never
            var split = false
            if let m = metaspace {
                if norm.prefix != nil || norm.replaceSpace { throw ULLMEError.unsupported("tokenizer.json: Metaspace with a Prepend/Replace normalizer") }
                prefix = m.prefix; split = m.split
            } else {
                guard norm.replaceSpace else {
                    throw ULLMEError.unsupported("tokenizer.json: BPE without ByteLevel nor Metaspace/Replace(\" \", \"▁\")")
                }
                if norm.prefix != nil { prefix = .everySegment }
            }
            norm.prefix = nil
            var scalarIds = [Unicode.Scalar: Int32]()
            var bf = [Int32](repeating: -1, count: 256)
            for (id, t) in tokens.enumerated() {
                if addedIds.contains(Int32(id)) { pieces[id] = Array(t.utf8); continue }
                if let b = byteToken(t) {
                    pieces[id] = [b]; bf[Int(b)] = Int32(id); continue
                }
                let sc = t.unicodeScalars
                if sc.count == 1, let f = sc.first { scalarIds[f] = Int32(id) }
                pieces[id] = Array(t.replacingMetaspace.utf8)
            }
            mode = .sentencePiece(SentencePieceConfig(prefix: prefix, splitOnSpace: split,
                                                      stripLeadingSpaceOnDecode: prefix != .never,
                                                      scalarIds: scalarIds, byteFallback: byteFallback ? bf : nil,
                                                      unkId: unkId, fuseUnk: model["fuse_unk"]?.bool ?? false))
        }

        // Post-processor and special ids.
        var prefixIds = [Int32](), suffixIds = [Int32]()
        try postProcessor(j["post_processor"], vocab: vocab, prefix: &prefixIds, suffix: &suffixIds)
        func tokenId(_ v: JSONValue?) -> Int32? {
            guard let v else { return nil }
            if let s = v.string { return vocab[s] }
            if let s = v["content"]?.string { return vocab[s] }
            return nil
        }
        let bos = tokenId(config?["bos_token"]) ?? prefixIds.first
        let eos = tokenId(config?["eos_token"]) ?? suffixIds.last
        let pad = tokenId(config?["pad_token"])
        if let add = config?["add_bos_token"]?.bool, let bos {
            prefixIds.removeAll { $0 == bos }
            if add { prefixIds.insert(bos, at: 0) }
        }
        if let add = config?["add_eos_token"]?.bool, let eos {
            suffixIds.removeAll { $0 == eos }
            if add { suffixIds.append(eos) }
        }
        let specialIds = Set(added.filter(\.special).map(\.id))
        return BPETokenizer(tokens: tokens, pieces: pieces, specialIds: specialIds, merges: merges, added: added,
                            mode: mode, prefixIds: prefixIds, suffixIds: suffixIds, bosId: bos, eosId: eos, padId: pad)
    }

    /// `<0xNN>` -> NN.
    static func byteToken(_ t: String) -> UInt8? {
        let u = Array(t.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }

    struct Normalizer { var prefix: String?; var replaceSpace = false }

    private static func normalizer(_ n: JSONValue?) throws -> Normalizer {
        var out = Normalizer()
        guard let n, !n.isNull else { return out }
        func visit(_ n: JSONValue) throws {
            switch n["type"]?.string {
            case "Sequence": for x in n["normalizers"]?.array ?? [] { try visit(x) }
            case "Prepend":
                guard n["prepend"]?.string == "\u{2581}" else { throw ULLMEError.unsupported("tokenizer.json: normalizer Prepend \(n["prepend"]?.string ?? "?")") }
                out.prefix = "\u{2581}"
            case "Replace":
                guard n["pattern"]?["String"]?.string == " ", n["content"]?.string == "\u{2581}" else {
                    throw ULLMEError.unsupported("tokenizer.json: normalizer Replace other than \" \" -> \"▁\"")
                }
                out.replaceSpace = true
            case let t:
                throw ULLMEError.unsupported("tokenizer.json: normalizer \(t ?? "?") (supported: Prepend(▁), Replace(' ', ▁), Sequence)")
            }
        }
        try visit(n)
        return out
    }

    private static func preTokenizer(_ p: JSONValue?, replaceSpace: Bool, steps: inout [RegexScanner], byteLevel: inout Bool,
                                     addPrefixSpace: inout Bool, metaspace: inout (prefix: SpacePrefix, split: Bool)?) throws {
        guard let p, !p.isNull else { return }
        switch p["type"]?.string {
        case "Sequence":
            for x in p["pretokenizers"]?.array ?? [] {
                try preTokenizer(x, replaceSpace: replaceSpace, steps: &steps, byteLevel: &byteLevel, addPrefixSpace: &addPrefixSpace, metaspace: &metaspace)
            }
        case "ByteLevel":
            byteLevel = true
            if p["add_prefix_space"]?.bool == true {
                guard steps.isEmpty else { throw ULLMEError.unsupported("tokenizer.json: ByteLevel add_prefix_space after another pre-tokenizer") }
                addPrefixSpace = true
            }
            if p["use_regex"]?.bool ?? true { steps.append(.gpt2) }
        case "Digits":
            steps.append(p["individual_digits"]?.bool == true ? .digitsIndividual : .digitsGrouped)
        case "Split":
            // Gemma's Split on the string " " comes after the Replace(" ", "▁") normalizer: it never matches.
            if p["pattern"]?["String"]?.string == " ", replaceSpace { return }
            guard let pattern = p["pattern"]?["Regex"]?.string else {
                throw ULLMEError.unsupported("tokenizer.json: Split pre-tokenizer without a Regex pattern")
            }
            let behavior = p["behavior"]?.string ?? "Isolated"
            guard behavior == "Isolated", p["invert"]?.bool != true else {
                throw ULLMEError.unsupported("tokenizer.json: Split behavior \(behavior) / invert")
            }
            steps.append(try RegexScanner(pattern: pattern))
        case "Metaspace":
            guard (p["replacement"]?.string ?? "\u{2581}") == "\u{2581}" else { throw ULLMEError.unsupported("tokenizer.json: Metaspace replacement") }
            let scheme: SpacePrefix
            switch p["prepend_scheme"]?.string {
            case "always": scheme = .always
            case "first": scheme = .first
            case "never": scheme = .never
            case nil: scheme = (p["add_prefix_space"]?.bool ?? true) ? .always : .never
            case let s?: throw ULLMEError.unsupported("tokenizer.json: Metaspace prepend_scheme \(s)")
            }
            metaspace = (scheme, p["split"]?.bool ?? true)
        case let t:
            throw ULLMEError.unsupported("tokenizer.json: pre-tokenizer \(t ?? "?")")
        }
    }

    private static func postProcessor(_ p: JSONValue?, vocab: [String: Int32], prefix: inout [Int32], suffix: inout [Int32]) throws {
        guard let p, !p.isNull else { return }
        switch p["type"]?.string {
        case "Sequence":
            for x in p["processors"]?.array ?? [] { try postProcessor(x, vocab: vocab, prefix: &prefix, suffix: &suffix) }
        case "ByteLevel": return
        case "TemplateProcessing":
            var seenA = false
            for item in p["single"]?.array ?? [] {
                if item["Sequence"] != nil { seenA = true; continue }
                guard let name = item["SpecialToken"]?["id"]?.string else { throw ULLMEError.format("tokenizer.json: bad TemplateProcessing item") }
                var ids = [Int32]()
                if let st = p["special_tokens"]?[name], let arr = st["ids"]?.array {
                    ids = arr.compactMap { $0.int.map { Int32($0) } }
                } else if let id = vocab[name] { ids = [id] }
                else { throw ULLMEError.format("tokenizer.json: TemplateProcessing special token \(name) unknown") }
                if seenA { suffix += ids } else { prefix += ids }
            }
        case let t:
            throw ULLMEError.unsupported("tokenizer.json: post-processor \(t ?? "?")")
        }
    }
}

extension String {
    var replacingMetaspace: String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 }))
    }
}
