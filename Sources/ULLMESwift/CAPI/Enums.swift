import CULLME

// The C enums and the Swift ones: one converter each way, used by every CAPI file. A value from C is an
// integer a caller may have forged, so the conversion validates instead of trapping. The AUTO values are
// not modes: a model's load parameters resolve them (ModelHandle) before any conversion.

/// The Swift case of a C enum's raw value, or an argument error naming `what`.
private func fromC<T: RawRepresentable>(_ raw: some BinaryInteger, _ what: String) throws -> T where T.RawValue == Int32 {
    let value = Int32(truncatingIfNeeded: raw)
    guard let m = T(rawValue: value) else { throw argError("unknown \(what) value \(value)") }
    return m
}

extension AttentionMode {
    init(c value: ullme_attention) throws { self = try fromC(value.rawValue, "attention") }
    var c: ullme_attention { ullme_attention(rawValue: rawValue) }
}

extension Pooling {
    init(c value: ullme_pooling) throws { self = try fromC(value.rawValue, "pooling") }
    var c: ullme_pooling { ullme_pooling(rawValue: rawValue) }
}

extension WeightStorage {
    /// An `ullme_weight_storage` value of `ullme_model_params.weight_storage`; nil: ULLME_WEIGHTS_DEFAULT (the
    /// load chooses).
    static func fromC(_ raw: Int32) throws -> WeightStorage? {
        switch UInt32(bitPattern: raw) {
        case ULLME_WEIGHTS_DEFAULT.rawValue: nil
        case ULLME_WEIGHTS_DENSE.rawValue: .dense
        case ULLME_WEIGHTS_STORED.rawValue: .stored
        case ULLME_WEIGHTS_QUANTIZED.rawValue: .quantized
        default: throw argError("unknown weight_storage value \(raw)")
        }
    }
}

extension Precision {
    /// An `ullme_precision` value of `ullme_model_params.precision`; nil: ULLME_PRECISION_DEFAULT.
    static func fromC(_ raw: Int32) throws -> Precision? {
        switch UInt32(bitPattern: raw) {
        case ULLME_PRECISION_DEFAULT.rawValue: nil
        case ULLME_PRECISION_EXACT.rawValue: .exact
        case ULLME_PRECISION_BF16.rawValue: .bf16
        case ULLME_PRECISION_INT8.rawValue: .int8
        default: throw argError("unknown precision value \(raw)")
        }
    }
}
