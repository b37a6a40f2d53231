import CULLME

// The C enums and the Swift ones: one converter each way, used by every CAPI file. A value from C is an
// integer a caller may have forged, so the conversion validates instead of trapping. The AUTO values are
// not modes: a model's load parameters resolve them (ModelHandle) before any conversion.

extension AttentionMode {
    init(c value: ullme_attention) throws {
        guard let m = AttentionMode(rawValue: Int32(truncatingIfNeeded: value.rawValue)) else {
            throw argError("unknown attention value \(Int32(truncatingIfNeeded: value.rawValue))")
        }
        self = m
    }

    var c: ullme_attention { ullme_attention(rawValue: rawValue) }
}

extension Pooling {
    init(c value: ullme_pooling) throws {
        guard let m = Pooling(rawValue: Int32(truncatingIfNeeded: value.rawValue)) else {
            throw argError("unknown pooling value \(Int32(truncatingIfNeeded: value.rawValue))")
        }
        self = m
    }

    var c: ullme_pooling { ullme_pooling(rawValue: rawValue) }
}
