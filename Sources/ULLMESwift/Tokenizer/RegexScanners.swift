/// Hand-written scanners for the pre-tokenizer split regexes of the supported model families.
/// Each one reproduces the leftmost-first alternation semantics of its regex (as Oniguruma in HF
/// tokenizers and llama.cpp's unicode.cpp evaluate it) over Unicode scalars. Unknown patterns are
/// rejected with `.unsupported` by `RegexScanner.init(pattern:)`.
enum RegexScanner: Sendable, Equatable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama-3 (digits ≤ 3), Qwen2 (single digits), Qwen3.5 (letters include \p{M}):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3(maxDigits: Int, marksAreLetters: Bool)
    /// `\p{N}` isolated (HF Digits(individual_digits=true); llama.cpp's "\\p{N}" step).
    case digitsIndividual
    /// `\p{N}+` isolated (HF Digits(individual_digits=false)).
    case digitsGrouped

    static let gpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
    static let llama3Pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let qwen2Pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let qwen35Pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

    /// The scanner of a Split pre-tokenizer regex (behavior Isolated).
    init(pattern: String) throws {
        switch pattern {
        case Self.gpt2Pattern: self = .gpt2
        case Self.llama3Pattern: self = .llama3(maxDigits: 3, marksAreLetters: false)
        case Self.qwen2Pattern: self = .llama3(maxDigits: 1, marksAreLetters: false)
        case Self.qwen35Pattern: self = .llama3(maxDigits: 1, marksAreLetters: true)
        case "\\p{N}": self = .digitsIndividual
        case "\\p{N}+", "\\d+": self = .digitsGrouped
        default: throw ULLMEError.unsupported("tokenizer: pre-tokenizer Split regex \(pattern) has no scanner")
        }
    }

    /// Splits s[range] into consecutive pieces (Isolated: every scalar belongs to exactly one piece).
    func split(_ s: [Unicode.Scalar], _ cls: [CharClass], _ range: Range<Int>, into out: inout [Range<Int>]) {
        var i = range.lowerBound
        let n = range.upperBound
        while i < n {
            let e: Int
            switch self {
            case .gpt2: e = Self.gpt2Match(s, cls, i, n)
            case .llama3(let d, let m): e = Self.llama3Match(s, cls, i, n, maxDigits: d, marksAreLetters: m)
            case .digitsIndividual, .digitsGrouped:
                if cls[i] == .number {
                    var j = i + 1
                    if self == .digitsGrouped { while j < n && cls[j] == .number { j += 1 } }
                    e = j
                } else {
                    var j = i + 1
                    while j < n && cls[j] != .number { j += 1 }
                    e = j
                }
            }
            out.append(i..<e)
            i = e
        }
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` at i (case-insensitive if asked): the end, or nil.
    @inline(__always)
    private static func contraction(_ s: [Unicode.Scalar], _ i: Int, _ n: Int, caseless: Bool) -> Int? {
        guard s[i] == "'", i + 1 < n else { return nil }
        func low(_ c: Unicode.Scalar) -> UInt32 {
            caseless && c.value >= 65 && c.value <= 90 ? c.value + 32 : c.value
        }
        let a = low(s[i + 1])
        switch a {
        case 0x73, 0x74, 0x6D, 0x64: return i + 2          // s t m d
        case 0x72, 0x76:                                    // re ve
            if i + 2 < n && low(s[i + 2]) == 0x65 { return i + 3 }
        case 0x6C:                                          // ll
            if i + 2 < n && low(s[i + 2]) == 0x6C { return i + 3 }
        default: break
        }
        return nil
    }

    /// Whitespace alternatives `\s+(?!\S)|\s+` at i (s[i] is whitespace).
    @inline(__always)
    private static func trailingSpaceRun(_ cls: [CharClass], _ i: Int, _ n: Int) -> Int {
        var k = i + 1
        while k < n && cls[k].isSpace { k += 1 }
        if k == n || k - i == 1 { return k }
        return k - 1
    }

    private static func gpt2Match(_ s: [Unicode.Scalar], _ cls: [CharClass], _ i: Int, _ n: Int) -> Int {
        if let e = contraction(s, i, n, caseless: false) { return e }
        var j = i
        if s[i] == " " && i + 1 < n { j = i + 1 }
        let c = cls[j]
        switch c {
        case .letter, .number:
            var k = j + 1
            while k < n && cls[k] == c { k += 1 }
            return k
        case .other, .mark:
            var k = j + 1
            while k < n && (cls[k] == .other || cls[k] == .mark) { k += 1 }
            return k
        case .space, .newline:
            return trailingSpaceRun(cls, i, n)
        }
    }

    private static func llama3Match(_ s: [Unicode.Scalar], _ cls: [CharClass], _ i: Int, _ n: Int,
                                    maxDigits: Int, marksAreLetters: Bool) -> Int {
        if let e = contraction(s, i, n, caseless: true) { return e }
        @inline(__always) func isLetter(_ c: CharClass) -> Bool { c == .letter || (marksAreLetters && c == .mark) }
        @inline(__always) func isOther(_ c: CharClass) -> Bool { c == .other || (!marksAreLetters && c == .mark) }
        let c = cls[i]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if isLetter(c) {
            var k = i + 1
            while k < n && isLetter(cls[k]) { k += 1 }
            return k
        }
        if c != .newline && c != .number && c != .letter && i + 1 < n && isLetter(cls[i + 1]) {
            var k = i + 2
            while k < n && isLetter(cls[k]) { k += 1 }
            return k
        }
        // \p{N}{1,maxDigits}
        if c == .number {
            var k = i + 1
            while k < n && k - i < maxDigits && cls[k] == .number { k += 1 }
            return k
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        var j = i
        if s[i] == " " && i + 1 < n { j = i + 1 }
        if isOther(cls[j]) {
            var k = j + 1
            while k < n && isOther(cls[k]) { k += 1 }
            while k < n && cls[k] == .newline { k += 1 }
            return k
        }
        // c is whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
        var k = i
        var lastNL = -1
        while k < n && cls[k].isSpace {
            if cls[k] == .newline { lastNL = k }
            k += 1
        }
        if lastNL >= 0 { return lastNL + 1 }
        return trailingSpaceRun(cls, i, n)
    }
}
