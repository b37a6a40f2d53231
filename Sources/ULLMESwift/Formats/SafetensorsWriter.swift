import Glibc

/// Writes .safetensors files of F32 tensors, as the reference `safetensors` package lays them out:
/// an 8-byte little-endian header length N, N bytes of JSON padded with spaces so the data area starts
/// 8-byte aligned, then the tensors' little-endian bytes back to back. The header lists `__metadata__`
/// first (when given), then the tensors sorted by name, which is also their order in the data area.
/// The file is written atomically: a temporary file in the same directory, fsync, rename, fsync of the
/// directory. A reader never sees a half-written file and a crash leaves the old file (if any) intact.
public enum SafetensorsWriter {
    public struct Tensor: Sendable {
        public var name: String
        public var shape: [Int]
        public var data: [Float]
        public init(name: String, shape: [Int], data: [Float]) { self.name = name; self.shape = shape; self.data = data }
    }

    /// The complete file contents (header + data).
    public static func encode(_ tensors: [Tensor], metadata: [String: String]? = nil) throws -> [UInt8] {
        var seen = Set<String>()
        for t in tensors {
            guard !t.name.isEmpty, t.name != "__metadata__" else { throw ULLMEError.argument("invalid tensor name \"\(t.name)\"") }
            guard seen.insert(t.name).inserted else { throw ULLMEError.argument("duplicate tensor name \"\(t.name)\"") }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.data.count else {
                throw ULLMEError.argument("tensor \"\(t.name)\": shape \(t.shape) does not hold \(t.data.count) values")
            }
        }
        let sorted = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var header = "{"
        var first = true
        if let metadata {
            header += jsonString("__metadata__") + ":{"
            header += metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                .map { jsonString($0) + ":" + jsonString(metadata[$0]!) }.joined(separator: ",")
            header += "}"
            first = false
        }
        var offset = 0
        for t in sorted {
            let n = t.data.count * 4
            if !first { header += "," }
            first = false
            header += jsonString(t.name) + ":{\"dtype\":\"F32\",\"shape\":[" + t.shape.map(String.init).joined(separator: ",")
                + "],\"data_offsets\":[\(offset),\(offset + n)]}"
            offset += n
        }
        header += "}"
        var h = Array(header.utf8)
        while (8 + h.count) % 8 != 0 { h.append(0x20) }   // pad with spaces, as the reference writer
        var out: [UInt8] = []
        out.reserveCapacity(8 + h.count + offset)
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
        out += h
        for t in sorted {
            for v in t.data { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        }
        return out
    }

    /// Writes `tensors` to `path` atomically.
    public static func write(_ tensors: [Tensor], metadata: [String: String]? = nil, to path: String) throws {
        try writeFileAtomically(path, try encode(tensors, metadata: metadata))
    }
}

/// Writes bytes to `path` atomically: a temporary file beside it, fsync, rename over `path`, fsync of the
/// directory. On failure the temporary file is removed and `path` is untouched; the error (`.io`) names
/// `path`, the failing operation and errno (e.g. "No space left on device (errno 28, ENOSPC)").
func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let slash = path.lastIndex(of: "/")
    let dir = slash.map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !base.isEmpty else { throw ULLMEError.argument("\(path): not a file path") }
    func failure(_ what: String, _ e: Int32) -> ULLMEError {
        .io("\(path): \(what) failed: \(errnoDescription(e)); the previous file (if any) is unchanged")
    }
    var tmp = ""
    var template = Array((dir + "/." + base + ".tmp-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    if fd >= 0 { tmp = String(cString: template) }
    guard fd >= 0 else { throw failure("creating a temporary file in \(dir)", errno) }
    var ok = false
    defer { if !ok { unlink(tmp) } }
    var closed = false
    defer { if !closed { close(fd) } }
    var done = 0
    try bytes.withUnsafeBytes { buf in
        while done < buf.count {
            let n = Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("writing \(buf.count) bytes (temporary \(tmp), \(done) written)", errno)
            }
            if n == 0 { throw failure("writing (temporary \(tmp), no progress)", EIO) }
            done += n
        }
    }
    guard fchmod(fd, 0o644) == 0 else { throw failure("fchmod of \(tmp)", errno) }
    guard fsync(fd) == 0 else { throw failure("fsync of \(tmp)", errno) }
    closed = true
    guard close(fd) == 0 else { throw failure("close of \(tmp)", errno) }
    guard rename(tmp, path) == 0 else { throw failure("rename of \(tmp)", errno) }
    ok = true
    let dfd = open(dir, O_RDONLY | O_DIRECTORY)
    if dfd >= 0 { _ = fsync(dfd); close(dfd) }
}
