// The contracts between Formats/, Tokenizer/ and Model/. Implementations live in their own files.

/// How a tensor's elements are stored in a model file.
public enum TensorType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q8_0 = "Q8_0"
    /// Q5_0 / Q5_1: gemma-3-270m's Q4_K_M GGUF stores attn_q/attn_k/ffn tensors as Q5_0.
    case q5_0 = "Q5_0", q5_1 = "Q5_1"
    case q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K"
}

/// One tensor inside a memory-mapped model file.
/// `shape` is row-major, outermost first (PyTorch order): a Linear weight is [out_features, in_features]
/// (a GGUF tensor with ne = [in, out] is reported as [out, in]).
public struct TensorRecord: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    public let type: TensorType
    /// The raw stored bytes, inside the owning file's mapping (alive as long as that file object).
    public let bytes: UnsafeRawBufferPointer
    public var count: Int { shape.reduce(1, *) }
}

/// A value of GGUF metadata.
public enum GGUFValue: Sendable, Equatable {
    case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String)
    case array([GGUFValue])

    public var int: Int? {
        switch self {
        case .uint(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int(let v): return Int(v)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .float(let v): return v
        case .uint(let v): return Double(v)
        case .int(let v): return Double(v)
        default: return nil
        }
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [GGUFValue]? { if case .array(let a) = self { return a }; return nil }
}
