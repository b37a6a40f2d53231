/// A .safetensors file, memory-mapped: an 8-byte little-endian header length N, N bytes of JSON
/// (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`),
/// then the data area; offsets are relative to the data area. Only F32, F16 and BF16 are supported.
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    /// Tensors ordered by their position in the data area.
    public let tensors: [TensorRecord]
    /// The header's string-valued `__metadata__` entries (other values are ignored).
    public let metadata: [String: String]
    public let file: MappedFile
    private let index: [String: Int]

    /// Headers larger than this are rejected (the reference implementation's limit).
    public static let maxHeaderBytes = 100 << 20

    public var tensorNames: [String] { tensors.map(\.name) }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        var r = ByteReader(file.bytes, what: path)
        let n = try r.readU64("header length")
        guard n <= UInt64(r.remaining) else {
            throw ULLMEError.format("\(path): header length \(n) exceeds the \(r.remaining) bytes after it")
        }
        guard n <= UInt64(SafetensorsFile.maxHeaderBytes) else {
            throw ULLMEError.format("\(path): header length \(n) exceeds the \(SafetensorsFile.maxHeaderBytes)-byte limit")
        }
        let header = try r.readBytes(Int(n), "header")
        let dataStart = r.offset
        let dataSize = file.count - dataStart
        guard case .object(let entries) = try JSONValue.parse(header, what: "\(path): header") else {
            throw ULLMEError.format("\(path): header is not a JSON object")
        }

        metadata = (entries["__metadata__"]?.object ?? [:]).compactMapValues(\.string)
        struct Entry { var name: String; var shape: [Int]; var type: TensorType; var begin: Int; var end: Int }
        var list: [Entry] = []
        list.reserveCapacity(entries.count)
        for (name, v) in entries where name != "__metadata__" {
            guard case .object(let o) = v else { throw ULLMEError.format("\(path): tensor \"\(name)\" entry is not an object") }
            guard let dt = o["dtype"]?.string else {
                throw ULLMEError.format("\(path): tensor \"\(name)\" has no string field \"dtype\"")
            }
            let type: TensorType
            switch dt {
            case "F32": type = .f32
            case "F16": type = .f16
            case "BF16": type = .bf16
            default: throw ULLMEError.unsupported("\(path): tensor \"\(name)\" has dtype \(dt) (only F32, F16, BF16 are supported)")
            }
            guard let dims = o["shape"]?.array else {
                throw ULLMEError.format("\(path): tensor \"\(name)\" has no array field \"shape\"")
            }
            guard dims.count <= 8 else { throw ULLMEError.format("\(path): tensor \"\(name)\" has \(dims.count) dimensions") }
            var shape: [Int] = []
            var count = 1
            for d in dims {
                guard let x = d.int, x >= 0 else {
                    throw ULLMEError.format("\(path): tensor \"\(name)\" shape \(dims) holds a value that is not a non-negative integer")
                }
                let (c, o) = count.multipliedReportingOverflow(by: x)
                guard !o else { throw ULLMEError.format("\(path): tensor \"\(name)\" element count overflows") }
                count = c
                shape.append(x)
            }
            guard let offs = o["data_offsets"]?.array, offs.count == 2, let b = offs[0].int, let e = offs[1].int else {
                throw ULLMEError.format("\(path): tensor \"\(name)\" needs \"data_offsets\": [begin, end] of integers")
            }
            guard b >= 0, b <= e, e <= dataSize else {
                throw ULLMEError.format("\(path): tensor \"\(name)\" data_offsets [\(b), \(e)] outside the \(dataSize)-byte data area")
            }
            let (nbytes, o2) = count.multipliedReportingOverflow(by: type.blockBytes)
            guard !o2, nbytes == e - b else {
                throw ULLMEError.format("\(path): tensor \"\(name)\" has \(e - b) bytes, but \(dt) shape \(shape) needs \(o2 ? "more than Int.max" : String(nbytes))")
            }
            list.append(Entry(name: name, shape: shape, type: type, begin: b, end: e))
        }
        list.sort { ($0.begin, $0.name) < ($1.begin, $1.name) }
        var idx: [String: Int] = [:]
        var recs: [TensorRecord] = []
        recs.reserveCapacity(list.count)
        for (i, t) in list.enumerated() {
            let bytes = UnsafeRawBufferPointer(rebasing: file.bytes[dataStart + t.begin ..< dataStart + t.end])
            recs.append(TensorRecord(name: t.name, shape: t.shape, type: t.type, bytes: bytes))
            idx[t.name] = i
        }
        tensors = recs
        index = idx
    }

    public func tensor(named name: String) -> TensorRecord? {
        guard let i = index[name] else { return nil }
        return tensors[i]
    }
}
