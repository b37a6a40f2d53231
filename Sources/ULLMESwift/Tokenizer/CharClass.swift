/// The Unicode classes the pre-tokenizer regexes use, from Swift's own Unicode tables
/// (Unicode.Scalar.Properties; no ICU): \p{L}, \p{N}, \p{M}, \s (White_Space) and [\r\n].
enum CharClass: UInt8 {
    case letter      // \p{L}: Lu Ll Lt Lm Lo
    case number      // \p{N}: Nd Nl No
    case mark        // \p{M}: Mn Mc Me
    case space       // \s other than \r \n (White_Space property, as Oniguruma/Rust regex \s)
    case newline     // \r or \n (also \s)
    case other       // everything else (punctuation, symbols, controls, unassigned, ...)

    private static let ascii: [CharClass] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

    @inline(__always)
    static func of(_ s: Unicode.Scalar) -> CharClass {
        s.value < 128 ? ascii[Int(s.value)] : classify(s)
    }

    static func classify(_ s: Unicode.Scalar) -> CharClass {
        if s == "\r" || s == "\n" { return .newline }
        let p = s.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        case .nonspacingMark, .spacingMark, .enclosingMark: return .mark
        default: return p.isWhitespace ? .space : .other
        }
    }

    @inline(__always) var isSpace: Bool { self == .space || self == .newline }

    static func classes(_ s: ArraySlice<Unicode.Scalar>) -> [CharClass] { s.map(of) }
}
