/// GPT-2's reversible byte <-> Unicode map: printable bytes map to themselves
/// ('!'...'~', '¡'...'¬', '®'...'ÿ'); the other 68 bytes map to U+0100, U+0101, ... in byte order
/// (so space 0x20 is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
enum ByteLevelAlphabet {
    static let byteToScalar: [Unicode.Scalar] = {
        var map = [Unicode.Scalar](repeating: "\0", count: 256)
        var extra: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable { map[b] = Unicode.Scalar(UInt32(b))! } else { map[b] = Unicode.Scalar(extra)!; extra += 1 }
        }
        return map
    }()

    /// Inverse map, indexed by scalar value (< 0x144); -1 where the scalar is not in the alphabet.
    static let scalarToByte: [Int16] = {
        var inv = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToScalar.enumerated() { inv[Int(s.value)] = Int16(b) }
        return inv
    }()

    /// The raw bytes of a byte-level token string; nil if it contains a scalar outside the alphabet.
    static func bytes(of token: String) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            let v = Int(s.value)
            guard v < scalarToByte.count, scalarToByte[v] >= 0 else { return nil }
            out.append(UInt8(scalarToByte[v]))
        }
        return out
    }

    /// The byte-level string of raw bytes.
    static func string(of bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }
}
