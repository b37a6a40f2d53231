import CULLME

// Conversion of stored tensors (float or ggml-quantised) to float32. The inner loops are the C kernels
// in Sources/CULLME/dequant.c, bit-exact with ggml's reference dequantisation.

/// The 2-D view used for row access: [count / rowLength, rowLength], rowLength = the last dimension.
extension TensorRecord {
    public var rowLength: Int { shape.last ?? 1 }
    public var rowCount: Int { rowLength == 0 ? 0 : count / rowLength }

    /// Dequantises the whole tensor into a new array.
    public func toFloat32() throws -> [Float] {
        let n = count
        return try [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            try dequantize(self, into: buf)
            initialized = n
        }
    }
}

/// Checks that `t.bytes` holds exactly the bytes its shape and type need.
func checkStorage(_ t: TensorRecord) throws {
    guard let need = t.type.byteCount(elements: t.count), t.rowLength % t.type.blockSize == 0 else {
        throw ULLMEError.format("tensor \"\(t.name)\": \(t.count) elements with row length \(t.rowLength) are not whole \(t.type.rawValue) blocks")
    }
    guard t.bytes.count == need else {
        throw ULLMEError.format("tensor \"\(t.name)\": holds \(t.bytes.count) bytes, its \(t.type.rawValue) shape \(t.shape) needs \(need)")
    }
}

/// Dequantises all of `t` into `out` (out.count must equal t.count).
public func dequantize(_ t: TensorRecord, into out: UnsafeMutableBufferPointer<Float>) throws {
    guard out.count == t.count else {
        throw ULLMEError.argument("dequantize \"\(t.name)\": output has \(out.count) floats, the tensor has \(t.count)")
    }
    try dequantizeRows(t, rows: 0 ..< t.rowCount, into: out)
}

/// Dequantises rows `rows` of the 2-D view [count / rowLength, rowLength] of `t` into `out`
/// (out.count must equal rows.count * rowLength).
public func dequantizeRows(_ t: TensorRecord, rows: Range<Int>, into out: UnsafeMutableBufferPointer<Float>) throws {
    try checkStorage(t)
    let rowLen = t.rowLength
    guard rows.lowerBound >= 0, rows.upperBound <= t.rowCount else {
        throw ULLMEError.argument("dequantize \"\(t.name)\": rows \(rows) outside 0..<\(t.rowCount)")
    }
    let n = rows.count * rowLen
    guard out.count == n else {
        throw ULLMEError.argument("dequantize \"\(t.name)\": output has \(out.count) floats, rows \(rows) need \(n)")
    }
    if n == 0 { return }
    let rowBytes = t.type.byteCount(elements: rowLen)!  // checked by checkStorage
    let src = t.bytes.baseAddress! + rows.lowerBound * rowBytes
    dequantizeRaw(t.type, src, out.baseAddress!, count: n)
}

/// Dequantises `n` elements (a whole number of blocks of `type`) stored at `src` into dst[0 ..< n].
/// The caller guarantees both extents (the quantised GEMM path calls this on spans of checked rows).
@inline(__always)
func dequantizeRaw(_ type: TensorType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count n: Int) {
    let blocks = Int64(n / type.blockSize)
    switch type {
    case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
    case .f16: ullme_dequant_f16(src, dst, Int64(n))
    case .bf16: ullme_dequant_bf16(src, dst, Int64(n))
    case .q4_0: ullme_dequant_q4_0(src, dst, blocks)
    case .q4_1: ullme_dequant_q4_1(src, dst, blocks)
    case .q5_0: ullme_dequant_q5_0(src, dst, blocks)
    case .q5_1: ullme_dequant_q5_1(src, dst, blocks)
    case .q8_0: ullme_dequant_q8_0(src, dst, blocks)
    case .q4_K: ullme_dequant_q4_K(src, dst, blocks)
    case .q5_K: ullme_dequant_q5_K(src, dst, blocks)
    case .q6_K: ullme_dequant_q6_K(src, dst, blocks)
    }
}
