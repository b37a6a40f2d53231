#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (or, for tests and in-memory loading, a private copy of
/// some bytes). `bytes` stays valid as long as this object lives; every `TensorRecord` taken from a
/// file object keeps pointing into it, so owners (GGUFFile, SafetensorsFile) hold on to it.
public final class MappedFile: @unchecked Sendable {
    /// The file's path (or the name given to an in-memory copy); used in error messages.
    public let path: String
    /// The file's contents. Empty (with a nil base address) for an empty file.
    public let bytes: UnsafeRawBufferPointer
    private enum Storage { case mapped(UnsafeMutableRawPointer, Int), heap(UnsafeMutableRawPointer), none }
    private let storage: Storage

    public var count: Int { bytes.count }

    /// Maps `path` read-only. Throws `.io` for a missing, unreadable or non-regular file.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            throw ULLMEError.io("\(path): cannot open (\(MappedFile.errnoText(e)))")
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = errno
            throw ULLMEError.io("\(path): cannot stat (\(MappedFile.errnoText(e)))")
        }
        let mode = st.st_mode & S_IFMT
        if mode == S_IFDIR { throw ULLMEError.io("\(path): is a directory, not a file") }
        if mode != S_IFREG { throw ULLMEError.io("\(path): not a regular file") }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            storage = .none
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            let e = errno
            throw ULLMEError.io("\(path): mmap of \(size) bytes failed (\(MappedFile.errnoText(e)))")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
        storage = .mapped(p, size)
    }

    /// A private in-memory copy of `data`, named `name` in error messages (parsing from memory).
    public init(copying data: some Collection<UInt8>, name: String) {
        path = name
        let n = data.count
        if n == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            storage = .none
            return
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        let dst = UnsafeMutableRawBufferPointer(start: p, count: n)
        dst.copyBytes(from: data)
        bytes = UnsafeRawBufferPointer(dst)
        storage = .heap(p)
    }

    deinit {
        switch storage {
        case .mapped(let p, let n): munmap(p, n)
        case .heap(let p): p.deallocate()
        case .none: break
        }
    }

    static func errnoText(_ e: Int32) -> String {
        if let s = strerror(e) { return String(cString: s) }
        return "errno \(e)"
    }
}

/// A bounds-checked little-endian cursor over untrusted bytes. Every read checks the remaining
/// length first and throws `.format("<what>: truncated at offset N ...")`, never traps.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public var offset: Int
    /// Names the source in error messages (usually a file path).
    public let what: String

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, what: String) {
        self.bytes = bytes
        self.offset = offset
        self.what = what
    }

    public var remaining: Int { offset >= bytes.count ? 0 : bytes.count - offset }

    /// Throws unless `n` more bytes are available; `field` names what was being read.
    public func need(_ n: Int, _ field: String) throws {
        guard n >= 0, offset >= 0, n <= remaining else {
            throw ULLMEError.format("\(what): truncated at offset \(offset) reading \(field) (need \(n) bytes, \(remaining) left)")
        }
    }

    @inline(__always)
    private mutating func load<T: FixedWidthInteger>(_: T.Type, _ field: String) throws -> T {
        try need(MemoryLayout<T>.size, field)
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return v
    }

    public mutating func readU8(_ field: String = "u8") throws -> UInt8 { try load(UInt8.self, field) }
    public mutating func readU16(_ field: String = "u16") throws -> UInt16 { try load(UInt16.self, field) }
    public mutating func readU32(_ field: String = "u32") throws -> UInt32 { try load(UInt32.self, field) }
    public mutating func readU64(_ field: String = "u64") throws -> UInt64 { try load(UInt64.self, field) }
    public mutating func readI8(_ field: String = "i8") throws -> Int8 { try load(Int8.self, field) }
    public mutating func readI16(_ field: String = "i16") throws -> Int16 { try load(Int16.self, field) }
    public mutating func readI32(_ field: String = "i32") throws -> Int32 { try load(Int32.self, field) }
    public mutating func readI64(_ field: String = "i64") throws -> Int64 { try load(Int64.self, field) }
    public mutating func readF32(_ field: String = "f32") throws -> Float { Float(bitPattern: try readU32(field)) }
    public mutating func readF64(_ field: String = "f64") throws -> Double { Double(bitPattern: try readU64(field)) }

    /// `n` raw bytes (a view into the underlying buffer).
    public mutating func readBytes(_ n: Int, _ field: String = "bytes") throws -> UnsafeRawBufferPointer {
        try need(n, field)
        let r = UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + n])
        offset += n
        return r
    }

    /// A string of `length` bytes. With `strict`, invalid UTF-8 is `.format`; otherwise it is
    /// repaired with U+FFFD.
    public mutating func readString(length: UInt64, _ field: String = "string", strict: Bool = true) throws -> String {
        guard length <= UInt64(remaining) else {
            throw ULLMEError.format("\(what): \(field) at offset \(offset) claims \(length) bytes but only \(remaining) remain")
        }
        let raw = try readBytes(Int(length), field)
        if strict {
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw ULLMEError.format("\(what): \(field) at offset \(offset - Int(length)) is not valid UTF-8")
            }
            return s
        }
        return String(decoding: raw, as: UTF8.self)
    }

    /// GGUF-style string: u64 length, then that many bytes.
    public mutating func readString(_ field: String = "string", strict: Bool = true) throws -> String {
        let n = try readU64("\(field) length")
        return try readString(length: n, field, strict: strict)
    }

    /// Moves the cursor to `target` (must be within 0...bytes.count).
    public mutating func seek(_ target: Int, _ field: String = "seek") throws {
        guard target >= 0, target <= bytes.count else {
            throw ULLMEError.format("\(what): \(field) offset \(target) outside the \(bytes.count)-byte file")
        }
        offset = target
    }
}
