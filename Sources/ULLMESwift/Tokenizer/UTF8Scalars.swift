/// Decodes raw bytes into Unicode scalars, replacing invalid UTF-8 exactly like Python's
/// `bytes.decode("utf-8", errors="replace")`: one U+FFFD per *maximal subpart* of an ill-formed
/// sequence (Unicode §3.9 "U+FFFD substitution of maximal subparts", also what WHATWG does).
/// - A byte that can never start a sequence (0x80–0xC1, 0xF5–0xFF) is one U+FFFD.
/// - A valid lead byte followed by fewer valid continuation bytes than it needs (the allowed range
///   of the 2nd byte depends on the lead: E0→A0–BF, ED→80–9F, F0→90–BF, F4→80–8F) gives one U+FFFD
///   for the lead plus the continuations accepted so far; decoding resumes at the offending byte.
/// So overlongs (C0 AF) and surrogates (ED A0 80) give one U+FFFD per byte, a truncated
/// 4-byte sequence at the end (F0 9F 98) gives a single one. NUL (0x00) is an ordinary character.
enum UTF8Scalars {
    static let replacement = Unicode.Scalar(0xFFFD)!

    static func decode(_ bytes: [UInt8]) -> [Unicode.Scalar] {
        var out = [Unicode.Scalar]()
        out.reserveCapacity(bytes.count)
        bytes.withUnsafeBufferPointer { b in
            let n = b.count
            var i = 0
            while i < n {
                let c0 = b[i]
                if c0 < 0x80 { out.append(Unicode.Scalar(c0)); i += 1; continue }
                var need = 0
                var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
                var cp: UInt32 = 0
                switch c0 {
                case 0xC2...0xDF: need = 1; cp = UInt32(c0 & 0x1F)
                case 0xE0: need = 2; lo = 0xA0; cp = UInt32(c0 & 0x0F)
                case 0xE1...0xEC, 0xEE...0xEF: need = 2; cp = UInt32(c0 & 0x0F)
                case 0xED: need = 2; hi = 0x9F; cp = UInt32(c0 & 0x0F)
                case 0xF0: need = 3; lo = 0x90; cp = UInt32(c0 & 0x07)
                case 0xF1...0xF3: need = 3; cp = UInt32(c0 & 0x07)
                case 0xF4: need = 3; hi = 0x8F; cp = UInt32(c0 & 0x07)
                default:
                    out.append(replacement); i += 1; continue
                }
                var j = i + 1
                var ok = true
                for k in 0..<need {
                    guard j < n else { ok = false; break }
                    let c = b[j]
                    let l: UInt8 = k == 0 ? lo : 0x80, h: UInt8 = k == 0 ? hi : 0xBF
                    guard c >= l && c <= h else { ok = false; break }
                    cp = (cp << 6) | UInt32(c & 0x3F)
                    j += 1
                }
                if ok, let s = Unicode.Scalar(cp) { out.append(s) } else { out.append(replacement) }
                i = j
            }
        }
        return out
    }

    /// Appends the UTF-8 encoding of `s` to `out`.
    @inline(__always)
    static func append(_ s: Unicode.Scalar, to out: inout [UInt8]) {
        let v = s.value
        if v < 0x80 { out.append(UInt8(v)) }
        else if v < 0x800 { out.append(UInt8(0xC0 | (v >> 6))); out.append(UInt8(0x80 | (v & 0x3F))) }
        else if v < 0x10000 {
            out.append(UInt8(0xE0 | (v >> 12))); out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (v >> 18))); out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F))); out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }
}
