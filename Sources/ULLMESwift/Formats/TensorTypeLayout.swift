/// Storage layout of each `TensorType`: elements are stored in blocks of `blockSize` elements taking
/// `blockBytes` bytes (1 element for the float types). A row's length must be a multiple of the block size.
extension TensorType {
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        case .q4_K, .q5_K, .q6_K: return 256
        }
    }

    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        }
    }

    /// The ggml type id used in GGUF files.
    public var ggmlTypeID: UInt32 {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q5_0: return 6
        case .q5_1: return 7
        case .q8_0: return 8
        case .q4_K: return 12
        case .q5_K: return 13
        case .q6_K: return 14
        case .bf16: return 30
        }
    }

    public init?(ggmlTypeID id: UInt32) {
        guard let t = TensorType.allCases.first(where: { $0.ggmlTypeID == id }) else { return nil }
        self = t
    }

    /// Names of ggml type ids that exist (or existed) but that this engine cannot dequantise.
    static let unsupportedGGMLTypes: [UInt32: String] = [
        4: "Q4_2 (removed from ggml)", 5: "Q4_3 (removed from ggml)",
        9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 15: "Q8_K",
        16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
        23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
        31: "Q4_0_4_4 (removed from ggml)", 32: "Q4_0_4_8 (removed from ggml)", 33: "Q4_0_8_8 (removed from ggml)",
        34: "TQ1_0", 35: "TQ2_0",
        36: "IQ4_NL_4_4 (removed from ggml)", 37: "IQ4_NL_4_8 (removed from ggml)", 38: "IQ4_NL_8_8 (removed from ggml)",
        39: "MXFP4", 40: "NVFP4", 41: "Q1_0",
    ]

    /// Bytes taken by `elements` elements, nil on overflow or if `elements` is not a whole number of blocks.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (r, o) = (elements / blockSize).multipliedReportingOverflow(by: blockBytes)
        return o ? nil : r
    }
}
