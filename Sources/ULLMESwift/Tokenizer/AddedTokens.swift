/// An added token (tokenizer.json `added_tokens`, or a GGUF control / user-defined token).
struct AddedToken: Sendable {
    var id: Int32
    var content: [Unicode.Scalar]
    var special: Bool
    var lstrip = false
    var rstrip = false
    var singleWord = false
    var normalized = false
}

/// Splits text into runs of ordinary text and added tokens, before normalization / pre-tokenization,
/// as HF tokenizers' AddedVocabulary does: leftmost-longest match; `lstrip`/`rstrip` absorb the
/// whitespace to the left/right of the match; `single_word` only matches when not touching word
/// characters (alphanumerics or '_') on either side. Special tokens are always matched (HF's default
/// `split_special_tokens=False`, llama.cpp's `parse_special=true`).
struct AddedTokenMatcher: Sendable {
    enum Piece: Equatable { case text(Range<Int>), token(Int32) }

    /// Candidates by first scalar, longest first.
    private var byFirst: [Unicode.Scalar: [AddedToken]] = [:]

    var isEmpty: Bool { byFirst.isEmpty }

    init(_ tokens: [AddedToken]) {
        for t in tokens where !t.content.isEmpty { byFirst[t.content[0], default: []].append(t) }
        for k in byFirst.keys { byFirst[k]!.sort { $0.content.count > $1.content.count } }
    }

    @inline(__always) private static func isWordChar(_ s: Unicode.Scalar) -> Bool {
        let c = CharClass.of(s)
        return c == .letter || c == .number || s == "_"
    }

    func split(_ s: [Unicode.Scalar]) -> [Piece] {
        if byFirst.isEmpty { return s.isEmpty ? [] : [.text(0..<s.count)] }
        var out = [Piece]()
        var textStart = 0
        var i = 0
        let n = s.count
        while i < n {
            guard let cands = byFirst[s[i]] else { i += 1; continue }
            var matched: AddedToken?
            for t in cands where i + t.content.count <= n {
                var ok = true
                for k in 1..<max(t.content.count, 1) where s[i + k] != t.content[k] { ok = false; break }
                guard ok else { continue }
                if t.singleWord {
                    if i > 0 && Self.isWordChar(s[i - 1]) { continue }
                    let e = i + t.content.count
                    if e < n && Self.isWordChar(s[e]) { continue }
                }
                matched = t; break
            }
            guard let t = matched else { i += 1; continue }
            var start = i
            if t.lstrip { while start > textStart && CharClass.of(s[start - 1]).isSpace { start -= 1 } }
            var end = i + t.content.count
            if t.rstrip { while end < n && CharClass.of(s[end]).isSpace { end += 1 } }
            if start > textStart { out.append(.text(textStart..<start)) }
            out.append(.token(t.id))
            textStart = end
            i = end
        }
        if textStart < n { out.append(.text(textStart..<n)) }
        return out
    }
}
