import Synchronization

/// How a SentencePiece-style model prefixes "▁" to a text segment (a run between added tokens).
enum SpacePrefix: Sendable {
    case never
    /// HF Metaspace prepend_scheme "first": only the segment at the start of the text, unless it already starts with "▁".
    case first
    /// HF Metaspace prepend_scheme "always": every segment not already starting with "▁".
    case always
    /// HF normalizer Prepend("▁") and llama.cpp's add_space_prefix: every non-empty segment, unconditionally.
    case everySegment
}

/// The model-specific part of encoding one text segment.
enum BPEMode: Sendable {
    /// Byte-level BPE (GPT-2, SmolLM, Llama-3, Qwen2): pre-tokenizer scanners applied in sequence,
    /// then every piece's UTF-8 bytes are the initial symbols.
    case byteLevel(ByteLevelConfig)
    /// SentencePiece-style BPE over scalars with "▁" for spaces and `<0xNN>` byte fallback.
    case sentencePiece(SentencePieceConfig)
}

struct ByteLevelConfig: Sendable {
    var steps: [RegexScanner]
    var addPrefixSpace: Bool
    var ignoreMerges: Bool
    /// id of the single-byte token of each byte (-1 if missing).
    var byteIds: [Int32]
    /// raw bytes -> id, for ignore_merges.
    var bytesVocab: [[UInt8]: Int32]
}

struct SentencePieceConfig: Sendable {
    var prefix: SpacePrefix
    /// Metaspace split=true: each "▁" starts a new word.
    var splitOnSpace: Bool
    /// Whether decode strips the single leading space the prefix introduced.
    var stripLeadingSpaceOnDecode: Bool
    var scalarIds: [Unicode.Scalar: Int32]
    /// id of `<0xNN>` for each byte, or nil without byte fallback.
    var byteFallback: [Int32]?
    var unkId: Int32?
    var fuseUnk: Bool
}

/// A BPE tokenizer (byte-level or SentencePiece-style), the product of both loaders.
final class BPETokenizer: Tokenizer, Sendable {
    let tokens: [String]
    /// Bytes each id decodes to.
    let pieces: [[UInt8]]
    /// Ids left out by decode(skipSpecial: true).
    let specialIds: Set<Int32>
    let merges: BPEMerges
    let added: AddedTokenMatcher
    let mode: BPEMode
    let prefixIds: [Int32]
    let suffixIds: [Int32]
    let bosId: Int32?
    let eosId: Int32?
    let padId: Int32?
    private let cache = Mutex<[[UInt8]: [Int32]]>([:])
    private static let cacheLimit = 65536
    private static let cachedWordMaxBytes = 64

    init(tokens: [String], pieces: [[UInt8]], specialIds: Set<Int32>, merges: BPEMerges, added: [AddedToken],
         mode: BPEMode, prefixIds: [Int32], suffixIds: [Int32], bosId: Int32?, eosId: Int32?, padId: Int32?) {
        self.tokens = tokens
        self.pieces = pieces
        self.specialIds = specialIds
        self.merges = merges
        self.added = AddedTokenMatcher(added)
        self.mode = mode
        self.prefixIds = prefixIds
        self.suffixIds = suffixIds
        self.bosId = bosId
        self.eosId = eosId
        self.padId = padId
    }

    var vocabSize: Int { tokens.count }
    var addsBOS: Bool { bosId.map { prefixIds.contains($0) } ?? false }
    var addsEOS: Bool { eosId.map { suffixIds.contains($0) } ?? false }

    func isSpecial(_ id: Int32) -> Bool { specialIds.contains(id) || id == bosId || id == eosId || id == padId }

    func token(_ id: Int32) -> String? {
        id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : nil
    }

    func encode(_ text: [UInt8], addSpecial: Bool) -> [Int32] {
        let scalars = UTF8Scalars.decode(text)
        var out = [Int32]()
        out.reserveCapacity(text.count / 3 + 4)
        if addSpecial { out += prefixIds }
        for piece in added.split(scalars) {
            switch piece {
            case .token(let id): out.append(id)
            case .text(let r):
                switch mode {
                case .byteLevel(let c): encodeByteLevel(scalars, r, c, into: &out)
                case .sentencePiece(let c): encodeSentencePiece(scalars, r, c, into: &out)
                }
            }
        }
        if addSpecial { out += suffixIds }
        return out
    }

    func decode(_ ids: [Int32], skipSpecial: Bool) -> [UInt8] {
        var out = [UInt8]()
        var first = true
        for id in ids {
            guard id >= 0 && Int(id) < pieces.count else { continue }
            if skipSpecial && specialIds.contains(id) { continue }
            let p = pieces[Int(id)]
            if first, case .sentencePiece(let c) = mode, c.stripLeadingSpaceOnDecode, p.first == 0x20 {
                out += p.dropFirst()
            } else {
                out += p
            }
            first = false
        }
        return out
    }

    // MARK: byte-level

    private func encodeByteLevel(_ all: [Unicode.Scalar], _ r: Range<Int>, _ c: ByteLevelConfig, into out: inout [Int32]) {
        var s: [Unicode.Scalar]
        var range: Range<Int>
        if c.addPrefixSpace && all[r.lowerBound] != " " {
            s = [" "] + all[r]
            range = 0..<s.count
        } else {
            s = all
            range = r
        }
        let cls = s.withUnsafeBufferPointer { b in
            var a = [CharClass](repeating: .other, count: s.count)
            for i in range { a[i] = CharClass.of(b[i]) }
            return a
        }
        var ranges = [range]
        var next = [Range<Int>]()
        for step in c.steps {
            next.removeAll(keepingCapacity: true)
            for rr in ranges { step.split(s, cls, rr, into: &next) }
            swap(&ranges, &next)
        }
        var word = [UInt8]()
        word.reserveCapacity(64)
        for rr in ranges {
            word.removeAll(keepingCapacity: true)
            for i in rr { UTF8Scalars.append(s[i], to: &word) }
            encodeByteLevelWord(word, c, into: &out)
        }
    }

    private func encodeByteLevelWord(_ word: [UInt8], _ c: ByteLevelConfig, into out: inout [Int32]) {
        if word.count == 1 {
            let id = c.byteIds[Int(word[0])]
            if id >= 0 { out.append(id) }
            return
        }
        if c.ignoreMerges, let id = c.bytesVocab[word] { out.append(id); return }
        let cacheable = word.count <= Self.cachedWordMaxBytes
        if cacheable, let hit = cache.withLock({ $0[word] }) { out += hit; return }
        var ids = [Int32]()
        ids.reserveCapacity(word.count)
        for b in word { let id = c.byteIds[Int(b)]; if id >= 0 { ids.append(id) } }
        merges.apply(&ids)
        out += ids
        if cacheable {
            cache.withLock { d in
                if d.count >= Self.cacheLimit { d.removeAll(keepingCapacity: true) }
                d[word] = ids
            }
        }
    }

    // MARK: SentencePiece

    private static let metaspace: Unicode.Scalar = "\u{2581}"

    private func encodeSentencePiece(_ all: [Unicode.Scalar], _ r: Range<Int>, _ c: SentencePieceConfig, into out: inout [Int32]) {
        var s = [Unicode.Scalar]()
        s.reserveCapacity(r.count + 1)
        let startsWithSpace = all[r.lowerBound] == " " || all[r.lowerBound] == Self.metaspace
        switch c.prefix {
        case .never: break
        case .first: if r.lowerBound == 0 && !startsWithSpace { s.append(Self.metaspace) }
        case .always: if !startsWithSpace { s.append(Self.metaspace) }
        case .everySegment: s.append(Self.metaspace)
        }
        for i in r { s.append(all[i] == " " ? Self.metaspace : all[i]) }
        if c.splitOnSpace {
            var start = 0
            for i in 1..<max(s.count, 1) where s[i] == Self.metaspace {
                encodeSentencePieceWord(s[start..<i], c, into: &out)
                start = i
            }
            if start < s.count { encodeSentencePieceWord(s[start...], c, into: &out) }
        } else {
            encodeSentencePieceWord(s[...], c, into: &out)
        }
    }

    private func encodeSentencePieceWord(_ w: ArraySlice<Unicode.Scalar>, _ c: SentencePieceConfig, into out: inout [Int32]) {
        var ids = [Int32]()
        ids.reserveCapacity(w.count)
        var bytes = [UInt8]()
        var lastWasUnk = false
        for ch in w {
            if let id = c.scalarIds[ch] { ids.append(id); lastWasUnk = false; continue }
            if let bf = c.byteFallback {
                bytes.removeAll(keepingCapacity: true)
                UTF8Scalars.append(ch, to: &bytes)
                if bytes.allSatisfy({ bf[Int($0)] >= 0 }) {
                    for b in bytes { ids.append(bf[Int(b)]) }
                    lastWasUnk = false
                    continue
                }
            }
            if let unk = c.unkId {
                if !(c.fuseUnk && lastWasUnk) { ids.append(unk) }
                lastWasUnk = true
            }
        }
        merges.apply(&ids)
        out += ids
    }
}
