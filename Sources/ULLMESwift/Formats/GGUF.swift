/// A GGUF model file (v2 or v3, little-endian), memory-mapped and validated up front.
///
/// Every byte is treated as hostile: counts and lengths are bounded by the bytes actually left in the
/// file before anything is allocated, tensor shapes are overflow-checked, and every tensor's data range
/// must lie inside the file. Failures are `ULLMEError.format` (malformed), `.unsupported` (valid but
/// not handled: GGUF v1, big-endian files, tensor types such as Q2_K or IQ*) or `.io` (cannot read).
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensors in file order; shapes in PyTorch order (reverse of GGUF's ne[]).
    public let tensors: [TensorRecord]
    /// general.alignment (default 32).
    public let alignment: Int
    /// Offset of the tensor data section in the file.
    public let dataOffset: Int
    /// The mapping every tensor's `bytes` points into.
    public let file: MappedFile
    private let index: [String: Int]

    public static let defaultAlignment = 32
    /// Nested arrays deeper than this are rejected (guards the recursive parser's stack).
    static let maxArrayDepth = 8
    /// Upper bound on the total number of metadata values (array elements included): a one-byte
    /// value becomes a much larger GGUFValue, so this bounds the memory a hostile file can claim.
    /// Real vocabularies need about 1.5M (262k tokens x 3 arrays + merges).
    static let maxMetadataValues = 1 << 24

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        var r = ByteReader(file.bytes, what: file.path)

        let magic = try r.readU32("magic")
        guard magic == 0x4655_4747 else {  // "GGUF" little-endian
            throw ULLMEError.format("\(path): not a GGUF file (magic 0x\(String(magic, radix: 16)) is not \"GGUF\")")
        }
        let v = try r.readU32("version")
        switch v {
        case 2, 3: break
        case 1: throw ULLMEError.unsupported("\(path): GGUF version 1 is not supported (only versions 2 and 3)")
        case 0: throw ULLMEError.format("\(path): GGUF version 0 is invalid")
        default:
            if v.byteSwapped == 2 || v.byteSwapped == 3 {
                throw ULLMEError.unsupported("\(path): big-endian GGUF files are not supported")
            }
            throw ULLMEError.unsupported("\(path): GGUF version \(v) is not supported (only versions 2 and 3)")
        }
        version = v

        let tensorCount = try r.readU64("tensor_count")
        let kvCount = try r.readU64("metadata_kv_count")
        // Each key/value pair takes at least 8 (key length) + 4 (type) + 1 byte; each tensor info
        // at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw ULLMEError.format("\(path): metadata_kv_count \(kvCount) cannot fit in the \(r.remaining) remaining bytes")
        }
        guard tensorCount <= UInt64(r.remaining / 24) else {
            throw ULLMEError.format("\(path): tensor_count \(tensorCount) cannot fit in the \(r.remaining) remaining bytes")
        }

        var meta: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(Int(kvCount))
        var budget = GGUFFile.maxMetadataValues
        for i in 0 ..< Int(kvCount) {
            let key = try r.readString("metadata key #\(i)")
            let type = try r.readU32("type of metadata \"\(key)\"")
            let value = try GGUFFile.readValue(&r, type: type, key: key, depth: 0, budget: &budget, path: path)
            guard meta.updateValue(value, forKey: key) == nil else {
                throw ULLMEError.format("\(path): metadata key \"\(key)\" appears twice")
            }
            keys.append(key)
        }
        metadata = meta
        metadataKeys = keys

        var align = GGUFFile.defaultAlignment
        if let a = meta["general.alignment"] {
            guard let ai = a.int, ai > 0, ai <= 1 << 30, ai & (ai - 1) == 0 else {
                throw ULLMEError.format("\(path): general.alignment \(a) must be a power of two")
            }
            align = ai
        }
        alignment = align

        struct Info { var name: String; var shape: [Int]; var type: TensorType; var offset: Int; var nbytes: Int }
        var infos: [Info] = []
        infos.reserveCapacity(Int(tensorCount))
        var seen: [String: Int] = [:]
        for i in 0 ..< Int(tensorCount) {
            let name = try r.readString("name of tensor #\(i)")
            let nd = try r.readU32("n_dims of tensor \"\(name)\"")
            guard nd <= 4 else { throw ULLMEError.format("\(path): tensor \"\(name)\" has \(nd) dimensions (at most 4)") }
            var ne: [Int] = []
            var count = 1
            for d in 0 ..< Int(nd) {
                let x = try r.readU64("ne[\(d)] of tensor \"\(name)\"")
                guard x <= UInt64(Int64.max) else {
                    throw ULLMEError.format("\(path): tensor \"\(name)\" dimension \(d) is \(Int64(bitPattern: x)) (negative)")
                }
                let (c, o) = count.multipliedReportingOverflow(by: Int(x))
                guard !o else { throw ULLMEError.format("\(path): tensor \"\(name)\" element count overflows") }
                count = c
                ne.append(Int(x))
            }
            let typeID = try r.readU32("type of tensor \"\(name)\"")
            guard let type = TensorType(ggmlTypeID: typeID) else {
                if let known = TensorType.unsupportedGGMLTypes[typeID] {
                    throw ULLMEError.unsupported("\(path): tensor \"\(name)\" has type \(known) (ggml type \(typeID)), which is not supported")
                }
                throw ULLMEError.format("\(path): tensor \"\(name)\" has unknown ggml type id \(typeID)")
            }
            let off = try r.readU64("offset of tensor \"\(name)\"")
            let rowLen = ne.first ?? 1
            guard rowLen % type.blockSize == 0 else {
                throw ULLMEError.format("\(path): tensor \"\(name)\" row length \(rowLen) is not a multiple of the \(type.rawValue) block size \(type.blockSize)")
            }
            guard let nbytes = type.byteCount(elements: count) else {
                throw ULLMEError.format("\(path): tensor \"\(name)\" byte size overflows")
            }
            guard off <= UInt64(Int.max), Int(off) % align == 0 else {
                throw ULLMEError.format("\(path): tensor \"\(name)\" offset \(off) is not a multiple of the alignment \(align)")
            }
            guard seen.updateValue(i, forKey: name) == nil else {
                throw ULLMEError.format("\(path): tensor name \"\(name)\" appears twice")
            }
            infos.append(Info(name: name, shape: ne.reversed(), type: type, offset: Int(off), nbytes: nbytes))
        }

        // The data section starts at the next multiple of the alignment.
        let (padded, o1) = r.offset.addingReportingOverflow(align - 1)
        guard !o1 else { throw ULLMEError.format("\(path): data offset overflows") }
        // A file without tensors (llama.cpp's vocab-only files) may end before that padding.
        let start = infos.isEmpty ? min(padded / align * align, file.count) : padded / align * align
        guard start <= file.count else {
            throw ULLMEError.format("\(path): truncated: tensor data would start at \(start) but the file has \(file.count) bytes")
        }
        dataOffset = start

        var records: [TensorRecord] = []
        records.reserveCapacity(infos.count)
        for t in infos {
            let (b, o2) = start.addingReportingOverflow(t.offset)
            let (e, o3) = b.addingReportingOverflow(t.nbytes)
            guard !o2, !o3, e <= file.count else {
                throw ULLMEError.format("\(path): tensor \"\(t.name)\" data [\(t.offset), \(t.offset &+ t.nbytes)) relative to the data section at \(start) extends past the end of the \(file.count)-byte file")
            }
            let bytes = UnsafeRawBufferPointer(rebasing: file.bytes[b ..< e])
            records.append(TensorRecord(name: t.name, shape: t.shape, type: t.type, bytes: bytes))
        }
        tensors = records
        index = seen
    }

    public var tensorNames: [String] { tensors.map(\.name) }

    public func tensor(named name: String) -> TensorRecord? {
        guard let i = index[name] else { return nil }
        return tensors[i]
    }

    /// The minimum number of bytes one value of a GGUF metadata type takes (for bounding counts).
    private static func minSize(of type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12: return 8
        case 8: return 8
        case 9: return 12
        default: return nil
        }
    }

    private static func readValue(_ r: inout ByteReader, type: UInt32, key: String, depth: Int,
                                  budget: inout Int, path: String) throws -> GGUFValue {
        budget -= 1
        guard budget >= 0 else {
            throw ULLMEError.format("\(path): metadata holds more than \(maxMetadataValues) values (at \"\(key)\")")
        }
        let f = "value of \"\(key)\""
        switch type {
        case 0: return .uint(UInt64(try r.readU8(f)))
        case 1: return .int(Int64(try r.readI8(f)))
        case 2: return .uint(UInt64(try r.readU16(f)))
        case 3: return .int(Int64(try r.readI16(f)))
        case 4: return .uint(UInt64(try r.readU32(f)))
        case 5: return .int(Int64(try r.readI32(f)))
        case 6: return .float(Double(try r.readF32(f)))
        case 7:
            let b = try r.readU8(f)
            guard b <= 1 else { throw ULLMEError.format("\(path): metadata \"\(key)\" has bool value \(b) (must be 0 or 1)") }
            return .bool(b == 1)
        case 8: return .string(try r.readString(f, strict: false))
        case 9:
            guard depth < maxArrayDepth else {
                throw ULLMEError.format("\(path): metadata \"\(key)\" nests arrays deeper than \(maxArrayDepth)")
            }
            let et = try r.readU32("element type of \"\(key)\"")
            guard let esize = minSize(of: et) else {
                throw ULLMEError.format("\(path): metadata \"\(key)\" has unknown array element type \(et)")
            }
            let n = try r.readU64("array length of \"\(key)\"")
            guard n <= UInt64(r.remaining / esize) else {
                throw ULLMEError.format("\(path): metadata \"\(key)\" array length \(n) cannot fit in the \(r.remaining) remaining bytes")
            }
            guard Int(n) <= budget else {
                throw ULLMEError.format("\(path): metadata holds more than \(maxMetadataValues) values (array \"\(key)\" has \(n))")
            }
            var a: [GGUFValue] = []
            a.reserveCapacity(Int(n))
            for _ in 0 ..< Int(n) {
                a.append(try readValue(&r, type: et, key: key, depth: depth + 1, budget: &budget, path: path))
            }
            return .array(a)
        case 10: return .uint(try r.readU64(f))
        case 11: return .int(try r.readI64(f))
        case 12: return .float(try r.readF64(f))
        default:
            throw ULLMEError.format("\(path): metadata \"\(key)\" has unknown value type \(type)")
        }
    }
}
