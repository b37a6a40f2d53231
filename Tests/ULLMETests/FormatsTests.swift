import FoundationEssentials
import XCTest
@testable import ULLMESwift

// MARK: - helpers

enum ErrKind: String { case io, format, unsupported, argument }

func kind(of e: Error) -> ErrKind? {
    guard let u = e as? ULLMEError else { return nil }
    switch u {
    case .io: return .io
    case .format: return .format
    case .unsupported: return .unsupported
    case .argument: return .argument
    default: return nil
    }
}

/// Asserts that `body` throws a ULLMEError of `expected` kind whose message contains every `mentions`.
func assertThrows(_ expected: ErrKind, mentions: [String] = [], _ what: String = "",
                  file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("\(what): expected .\(expected.rawValue), nothing was thrown", file: file, line: line)
    } catch {
        XCTAssertEqual(kind(of: error), expected, "\(what): wrong error \(error)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue("\(error)".contains(m), "\(what): message \"\(error)\" does not mention \"\(m)\"", file: file, line: line)
        }
    }
}

/// Builds GGUF bytes field by field.
struct GGUFBuilder {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes += Array("GGUF".utf8); u32(version); u64(tensors); u64(kvs)
    }
    mutating func tensor(_ name: String, ne: [UInt64], type: UInt32, offset: UInt64) {
        str(name); u32(UInt32(ne.count)); for x in ne { u64(x) }; u32(type); u64(offset)
    }
    mutating func pad(to a: Int) { while bytes.count % a != 0 { bytes.append(0) } }
    mutating func zeros(_ n: Int) { bytes += [UInt8](repeating: 0, count: n) }
}

func parseGGUF(_ b: [UInt8], _ name: String = "crafted.gguf") throws -> GGUFFile {
    try GGUFFile(file: MappedFile(copying: b, name: name))
}

/// A valid file with one Q4_0 tensor "w" of ne [32, 2] (2 blocks, 36 bytes) and one kv.
func validCrafted(version: UInt32 = 3) -> GGUFBuilder {
    var g = GGUFBuilder()
    g.header(version: version, tensors: 1, kvs: 1)
    g.str("general.architecture"); g.u32(8); g.str("llama")
    g.tensor("w", ne: [32, 2], type: 2, offset: 0)
    g.pad(to: 32); g.zeros(36)
    return g
}

/// First index where two float buffers differ bitwise, or nil.
func firstBitDifference(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int? {
    if a.count == b.count, a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 { return nil }
    let n = min(a.count, b.count) / 4
    for i in 0 ..< n where a.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) != b.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) {
        return i
    }
    return n
}

final class FormatsTests: XCTestCase {

    // MARK: MappedFile / ByteReader

    func testMappedFileErrors() throws {
        let dir = try makeTempDir()
        assertThrows(.io, mentions: ["nope.gguf"], "missing") { _ = try MappedFile(path: dir + "/nope.gguf") }
        assertThrows(.io, mentions: ["directory"], "directory") { _ = try MappedFile(path: dir) }
        try writeFile(dir + "/empty.bin", [UInt8]())
        let empty = try MappedFile(path: dir + "/empty.bin")
        XCTAssertEqual(empty.bytes.count, 0)
        assertThrows(.format, mentions: ["empty.bin", "magic"], "empty GGUF") { _ = try GGUFFile(path: dir + "/empty.bin") }
        assertThrows(.format, mentions: ["header length"], "empty safetensors") { _ = try SafetensorsFile(path: dir + "/empty.bin") }
        try writeFile(dir + "/abc.bin", [1, 2, 3, 4, 5])
        let m = try MappedFile(path: dir + "/abc.bin")
        XCTAssertEqual(Array(m.bytes), [1, 2, 3, 4, 5])
    }

    func testByteReader() throws {
        let data: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x80, 0x3F, 3, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x62, 0x63]
        try data.withUnsafeBytes { buf in
            var r = ByteReader(buf, what: "buf")
            XCTAssertEqual(try r.readU8(), 0x01)
            XCTAssertEqual(try r.readU16(), 0x0302)
            XCTAssertEqual(try r.readU32(), 0x0706_0504)
            XCTAssertEqual(try r.readI8(), 8)
            r.offset = 8
            XCTAssertEqual(try r.readF32(), 1.0)
            XCTAssertEqual(try r.readString(), "abc")
            XCTAssertEqual(r.remaining, 0)
            assertThrows(.format, mentions: ["buf", "truncated at offset 23"]) { _ = try r.readU8() }
            r.offset = 20
            assertThrows(.format, mentions: ["truncated at offset 20"]) { _ = try r.readU64() }
            r.offset = 12
            var r2 = r
            // a length that runs past the end
            r2.offset = 0
            assertThrows(.format, mentions: ["claims"]) { _ = try r2.readString() }
        }
    }

    // MARK: GGUF on real models

    func testSmolLM2Metadata() throws {
        let g = try GGUFFile(path: try modelPath("SmolLM2-135M-Instruct.Q4_1.gguf"))
        XCTAssertEqual(g.version, 3)
        XCTAssertEqual(g.metadata["general.architecture"]?.string, "llama")
        XCTAssertEqual(g.metadata["llama.block_count"]?.int, 30)
        XCTAssertEqual(g.metadata["llama.embedding_length"]?.int, 576)
        XCTAssertEqual(g.metadata["tokenizer.ggml.tokens"]?.array?.count, 49152)
        XCTAssertEqual(g.metadata["tokenizer.ggml.tokens"]?.array?.first?.string, "<|endoftext|>")
        XCTAssertEqual(g.alignment, 32)
        XCTAssertEqual(g.dataOffset % 32, 0)
        XCTAssertEqual(g.tensors.count, 272)
        XCTAssertEqual(g.tensor(named: "token_embd.weight")?.shape, [49152, 576])
        XCTAssertEqual(g.tensor(named: "token_embd.weight")?.type, .q8_0)
        XCTAssertEqual(g.tensor(named: "blk.0.attn_k.weight")?.shape, [192, 576])
        XCTAssertEqual(g.tensor(named: "blk.0.attn_k.weight")?.type, .q4_1)
        XCTAssertEqual(g.tensor(named: "blk.0.attn_norm.weight")?.shape, [576])
        XCTAssertEqual(g.tensor(named: "blk.0.attn_norm.weight")?.type, .f32)
        XCTAssertNil(g.tensor(named: "no.such.tensor"))
        XCTAssertEqual(Set(g.tensors.map(\.type)), [.f32, .q4_1, .q8_0])
        // file order and in-file byte ranges
        XCTAssertEqual(g.tensors.first?.name, "token_embd.weight")
        for t in g.tensors {
            XCTAssertEqual(t.bytes.count, t.type.byteCount(elements: t.count))
            let off = t.bytes.baseAddress! - g.file.bytes.baseAddress!
            XCTAssertGreaterThanOrEqual(off, g.dataOffset)
            XCTAssertLessThanOrEqual(off + t.bytes.count, g.file.count)
        }
        // the RMSNorm weights of a trained model are not all zero
        let norm = try g.tensor(named: "output_norm.weight")!.toFloat32()
        XCTAssertTrue(norm.contains { $0 != 0 })
    }

    func testGemma3Parses() throws {
        let g = try GGUFFile(path: try modelPath("gemma-3-270m-q4_k_m.gguf"))
        XCTAssertEqual(g.metadata["general.architecture"]?.string, "gemma3")
        XCTAssertEqual(g.tensors.count, 236)
        XCTAssertEqual(Set(g.tensors.map(\.type)), [.f32, .q5_0, .q8_0, .q4_K, .q6_K])
        XCTAssertEqual(g.tensor(named: "blk.0.attn_output.weight")?.shape, [640, 1024])
        XCTAssertEqual(g.tensor(named: "blk.0.attn_output.weight")?.type, .q4_K)
    }

    // MARK: GGUF on crafted inputs

    func testCraftedGGUFAllValueTypes() throws {
        var g = GGUFBuilder()
        g.header(version: 2, tensors: 2, kvs: 15)
        g.str("u8"); g.u32(0); g.u8(200)
        g.str("i8"); g.u32(1); g.u8(0xFF)
        g.str("u16"); g.u32(2); g.u16(60000)
        g.str("i16"); g.u32(3); g.u16(UInt16(bitPattern: -300))
        g.str("u32"); g.u32(4); g.u32(4_000_000_000)
        g.str("i32"); g.u32(5); g.u32(UInt32(bitPattern: -70000))
        g.str("f32"); g.u32(6); g.u32(Float(1.5).bitPattern)
        g.str("t"); g.u32(7); g.u8(1)
        g.str("f"); g.u32(7); g.u8(0)
        g.str("s"); g.u32(8); g.str("héllo")
        g.str("u64"); g.u32(10); g.u64(UInt64.max)
        g.str("i64"); g.u32(11); g.u64(UInt64(bitPattern: Int64.min))
        g.str("f64"); g.u32(12); g.u64(Double(-2.25).bitPattern)
        g.str("arr"); g.u32(9); g.u32(9); g.u64(2)       // array of arrays
        g.u32(8); g.u64(2); g.str("a"); g.str("")        //   ["a", ""]
        g.u32(5); g.u64(1); g.u32(7)                     //   [7]
        g.str("general.alignment"); g.u32(4); g.u32(64)
        g.tensor("a", ne: [3, 2], type: 0, offset: 0)     // F32 [2, 3], 24 bytes
        g.tensor("b", ne: [256], type: 12, offset: 64)    // Q4_K [256], 144 bytes
        g.pad(to: 64)
        let dataStart = g.bytes.count
        for v: Float in [1, 2, 3, 4, 5, 6] { g.u32(v.bitPattern) }
        g.zeros(40 + 144)
        let f = try parseGGUF(g.bytes)
        XCTAssertEqual(f.version, 2)
        let m = f.metadata
        XCTAssertEqual(m["u8"], .uint(200)); XCTAssertEqual(m["i8"], .int(-1))
        XCTAssertEqual(m["u16"], .uint(60000)); XCTAssertEqual(m["i16"], .int(-300))
        XCTAssertEqual(m["u32"], .uint(4_000_000_000)); XCTAssertEqual(m["i32"], .int(-70000))
        XCTAssertEqual(m["f32"], .float(1.5)); XCTAssertEqual(m["t"], .bool(true)); XCTAssertEqual(m["f"], .bool(false))
        XCTAssertEqual(m["s"], .string("héllo")); XCTAssertEqual(m["u64"], .uint(UInt64.max))
        XCTAssertNil(m["u64"]?.int)
        XCTAssertEqual(m["i64"], .int(Int64.min)); XCTAssertEqual(m["f64"], .float(-2.25))
        XCTAssertEqual(m["arr"], .array([.array([.string("a"), .string("")]), .array([.int(7)])]))
        XCTAssertEqual(f.metadataKeys.first, "u8")
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.dataOffset, dataStart)
        XCTAssertEqual(f.tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(f.tensor(named: "a")?.shape, [2, 3])
        XCTAssertEqual(try f.tensor(named: "a")!.toFloat32(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(f.tensor(named: "b")?.type, .q4_K)
        XCTAssertEqual(f.tensor(named: "b")?.bytes.count, 144)
        XCTAssertEqual(try f.tensor(named: "b")!.toFloat32(), [Float](repeating: 0, count: 256))
    }

    func testGGUFBadMagicAndVersion() throws {
        XCTAssertNoThrow(try parseGGUF(validCrafted().bytes))
        var g = validCrafted(); g.bytes[0] = UInt8(ascii: "X")
        assertThrows(.format, mentions: ["crafted.gguf", "magic"], "magic") { _ = try parseGGUF(g.bytes) }
        assertThrows(.unsupported, mentions: ["version 1"], "v1") { _ = try parseGGUF(validCrafted(version: 1).bytes) }
        assertThrows(.unsupported, mentions: ["version 4"], "v4") { _ = try parseGGUF(validCrafted(version: 4).bytes) }
        assertThrows(.format, mentions: ["version 0"], "v0") { _ = try parseGGUF(validCrafted(version: 0).bytes) }
        assertThrows(.unsupported, mentions: ["big-endian"], "BE") { _ = try parseGGUF(validCrafted(version: UInt32(3).byteSwapped).bytes) }
        XCTAssertNoThrow(try parseGGUF(validCrafted(version: 2).bytes))
    }

    func testGGUFAbsurdCounts() throws {
        for n: UInt64 in [UInt64.max, 1 << 40, 1 << 20] {
            var g = GGUFBuilder(); g.header(tensors: n, kvs: 0); g.zeros(64)
            assertThrows(.format, mentions: ["tensor_count"], "tensor count \(n)") { _ = try parseGGUF(g.bytes) }
            var h = GGUFBuilder(); h.header(tensors: 0, kvs: n); h.zeros(64)
            assertThrows(.format, mentions: ["metadata_kv_count"], "kv count \(n)") { _ = try parseGGUF(h.bytes) }
        }
        // key string length
        var s = GGUFBuilder(); s.header(tensors: 0, kvs: 1); s.u64(1 << 62); s.zeros(64)
        assertThrows(.format, mentions: ["metadata key #0", "claims"], "key length") { _ = try parseGGUF(s.bytes) }
        // string value length
        var v = GGUFBuilder(); v.header(tensors: 0, kvs: 1); v.str("k"); v.u32(8); v.u64(UInt64.max); v.zeros(16)
        assertThrows(.format, mentions: ["\"k\""], "value length") { _ = try parseGGUF(v.bytes) }
        // array lengths
        for (et, n): (UInt32, UInt64) in [(0, UInt64.max), (8, 1 << 40), (9, 1 << 30), (4, 100)] {
            var a = GGUFBuilder(); a.header(tensors: 0, kvs: 1); a.str("arr"); a.u32(9); a.u32(et); a.u64(n); a.zeros(64)
            assertThrows(.format, mentions: ["\"arr\"", "array length"], "array type \(et) length \(n)") { _ = try parseGGUF(a.bytes) }
        }
        // more metadata values than the cap, although the bytes are there
        var big = GGUFBuilder(); big.header(tensors: 0, kvs: 1); big.str("big"); big.u32(9); big.u32(0)
        big.u64(UInt64(GGUFFile.maxMetadataValues) + 1); big.zeros(GGUFFile.maxMetadataValues + 1)
        assertThrows(.format, mentions: ["\"big\"", "more than"], "value cap") { _ = try parseGGUF(big.bytes) }
        // tensor name length
        var t = GGUFBuilder(); t.header(tensors: 1, kvs: 0); t.u64(1 << 50); t.zeros(64)
        assertThrows(.format, mentions: ["name of tensor #0"], "tensor name length") { _ = try parseGGUF(t.bytes) }
        // tensor offset out of the file, and offset + size overflowing
        for off: UInt64 in [1 << 20, UInt64(Int64.max) - 31, UInt64.max - 31] {
            var o = GGUFBuilder(); o.header(tensors: 1, kvs: 0); o.tensor("w", ne: [32, 2], type: 2, offset: off); o.pad(to: 32); o.zeros(36)
            assertThrows(.format, mentions: ["\"w\""], "offset \(off)") { _ = try parseGGUF(o.bytes) }
        }
        // data one byte short
        var d = validCrafted(); d.bytes.removeLast()
        assertThrows(.format, mentions: ["\"w\"", "past the end"], "short data") { _ = try parseGGUF(d.bytes) }
    }

    func testGGUFBadTensorInfo() throws {
        func one(_ ne: [UInt64], type: UInt32, offset: UInt64 = 0, data: Int = 64) -> [UInt8] {
            var g = GGUFBuilder(); g.header(tensors: 1, kvs: 0); g.tensor("w", ne: ne, type: type, offset: offset)
            g.pad(to: 32); g.zeros(data); return g.bytes
        }
        XCTAssertNoThrow(try parseGGUF(one([32, 2], type: 2)))
        assertThrows(.unsupported, mentions: ["\"w\"", "Q2_K"], "Q2_K") { _ = try parseGGUF(one([256], type: 10)) }
        assertThrows(.unsupported, mentions: ["\"w\"", "IQ2_XXS"], "IQ2_XXS") { _ = try parseGGUF(one([256], type: 16)) }
        assertThrows(.unsupported, mentions: ["\"w\"", "I32"], "I32") { _ = try parseGGUF(one([4], type: 26)) }
        assertThrows(.format, mentions: ["\"w\"", "unknown ggml type id 99"], "type 99") { _ = try parseGGUF(one([4], type: 99)) }
        assertThrows(.format, mentions: ["\"w\"", "5 dimensions"], "n_dims") { _ = try parseGGUF(one([1, 1, 1, 1, 1], type: 0)) }
        assertThrows(.format, mentions: ["\"w\"", "overflow"], "overflow") { _ = try parseGGUF(one([1 << 40, 1 << 40], type: 0)) }
        assertThrows(.format, mentions: ["\"w\"", "negative"], "negative dim") { _ = try parseGGUF(one([UInt64.max], type: 0)) }
        assertThrows(.format, mentions: ["\"w\"", "overflow"], "bytes overflow") { _ = try parseGGUF(one([UInt64(Int64.max) / 4 + 1], type: 0)) }
        assertThrows(.format, mentions: ["\"w\"", "block size"], "row multiple") { _ = try parseGGUF(one([33, 2], type: 2)) }
        assertThrows(.format, mentions: ["\"w\"", "alignment"], "misaligned") { _ = try parseGGUF(one([4], type: 0, offset: 4)) }
        // zero-sized tensors are legal
        let z = try parseGGUF(one([0, 5], type: 0))
        XCTAssertEqual(z.tensors[0].shape, [5, 0]); XCTAssertEqual(try z.tensors[0].toFloat32(), [])
        // duplicate tensor name
        var g = GGUFBuilder(); g.header(tensors: 2, kvs: 0)
        g.tensor("w", ne: [4], type: 0, offset: 0); g.tensor("w", ne: [4], type: 0, offset: 32); g.pad(to: 32); g.zeros(64)
        assertThrows(.format, mentions: ["\"w\"", "twice"], "duplicate tensor") { _ = try parseGGUF(g.bytes) }
    }

    func testGGUFBadMetadata() throws {
        func kv(_ body: (inout GGUFBuilder) -> Void) -> [UInt8] {
            var g = GGUFBuilder(); g.header(tensors: 0, kvs: 1); body(&g); g.pad(to: 32); return g.bytes
        }
        for a: UInt32 in [0, 48, 3] {
            assertThrows(.format, mentions: ["general.alignment"], "alignment \(a)") {
                _ = try parseGGUF(kv { $0.str("general.alignment"); $0.u32(4); $0.u32(a) })
            }
        }
        assertThrows(.format, mentions: ["general.alignment"], "string alignment") {
            _ = try parseGGUF(kv { $0.str("general.alignment"); $0.u32(8); $0.str("32") })
        }
        assertThrows(.format, mentions: ["\"k\"", "unknown value type 13"], "value type") {
            _ = try parseGGUF(kv { $0.str("k"); $0.u32(13); $0.u64(0) })
        }
        assertThrows(.format, mentions: ["\"k\"", "element type 77"], "element type") {
            _ = try parseGGUF(kv { $0.str("k"); $0.u32(9); $0.u32(77); $0.u64(0) })
        }
        assertThrows(.format, mentions: ["\"k\"", "bool"], "bool 2") {
            _ = try parseGGUF(kv { $0.str("k"); $0.u32(7); $0.u8(2) })
        }
        assertThrows(.format, mentions: ["\"k\"", "deeper"], "nesting") {
            _ = try parseGGUF(kv { g in g.str("k"); g.u32(9); for _ in 0 ..< 20 { g.u32(9); g.u64(1) }; g.u32(0); g.u64(0) })
        }
        assertThrows(.format, mentions: ["UTF-8"], "invalid key") {
            _ = try parseGGUF(kv { $0.u64(2); $0.u8(0xC3); $0.u8(0x28); $0.u32(0); $0.u8(0) })
        }
        var g = GGUFBuilder(); g.header(tensors: 0, kvs: 2)
        g.str("k"); g.u32(0); g.u8(1); g.str("k"); g.u32(0); g.u8(2); g.pad(to: 32)
        assertThrows(.format, mentions: ["\"k\"", "twice"], "duplicate key") { _ = try parseGGUF(g.bytes) }
    }

    /// Cuts the real SmolLM2 file at many offsets up to and past the start of its tensor data:
    /// every prefix must be rejected with .format (and never crash).
    func testGGUFTruncatedRealHeader() throws {
        let full = try MappedFile(path: try modelPath("SmolLM2-135M-Instruct.Q4_1.gguf"))
        let dataOffset = try GGUFFile(file: full).dataOffset
        var cuts = Array(0 ..< 64)
        cuts += stride(from: 64, to: dataOffset, by: dataOffset / 97).map { $0 }
        cuts += [dataOffset - 1, dataOffset, dataOffset + 1, dataOffset + 4096]
        for n in cuts {
            let prefix = MappedFile(copying: UnsafeRawBufferPointer(rebasing: full.bytes[0 ..< n]), name: "cut\(n).gguf")
            assertThrows(.format, mentions: ["cut\(n).gguf"], "cut at \(n)") { _ = try GGUFFile(file: prefix) }
        }
    }

    /// Random byte corruptions of a small valid GGUF's header: parsing may succeed or throw a
    /// ULLMEError, but must never crash or throw anything else.
    func testGGUFCorruptedHeaderNeverCrashes() throws {
        let good = try MappedFile(path: try fixturePath("dequant/synthetic.gguf"))
        let headerEnd = try GGUFFile(file: good).dataOffset
        var rng = SystemRandomNumberGenerator()
        var failures = 0
        for i in 0 ..< 400 {
            var b = Array(good.bytes)
            for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
                b[Int.random(in: 0 ..< headerEnd, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng)
            }
            do {
                let f = try parseGGUF(b, "corrupt\(i).gguf")
                for t in f.tensors { _ = try t.toFloat32() }
            } catch {
                XCTAssertNotNil(error as? ULLMEError, "corruption \(i): non-ULLMEError \(error)")
                failures += 1
            }
        }
        XCTAssertGreaterThan(failures, 0)
    }

    // MARK: dequantisation

    /// Every tensor of the committed synthetic GGUF against gguf-py's dequantisation, bit for bit.
    /// Exactness holds because each kernel performs the same float32 operations in the same order as
    /// gguf-py/ggml (no FMA contraction in dequant.c).
    func testDequantSyntheticBitExact() throws {
        let src = try GGUFFile(path: try fixturePath("dequant/synthetic.gguf"))
        let exp = try GGUFFile(path: try fixturePath("dequant/expected.gguf"))
        XCTAssertEqual(Set(src.tensors.map(\.type)), Set(TensorType.allCases), "synthetic.gguf should cover every TensorType")
        XCTAssertEqual(src.tensors.count, exp.tensors.count)
        for t in src.tensors {
            let e = try XCTUnwrap(exp.tensor(named: t.name), t.name)
            XCTAssertEqual(e.type, .f32)
            XCTAssertEqual(t.shape, e.shape, t.name)
            let got = try t.toFloat32()
            got.withUnsafeBytes { g in
                if let i = firstBitDifference(g, e.bytes) {
                    XCTFail("\(t.name) (\(t.type)): element \(i) differs: \(i < got.count ? got[i] : .nan) vs expected")
                }
            }
        }
        // IEEE half specials, from the all-bit-patterns tensor
        let all = try src.tensor(named: "all.F16")!.toFloat32()
        XCTAssertEqual(all[0x0001], Float(sign: .plus, exponent: -24, significand: 1))  // smallest subnormal
        XCTAssertEqual(all[0x03FF], Float(1023) * Float(sign: .plus, exponent: -24, significand: 1))
        XCTAssertEqual(all[0x3C00], 1.0)
        XCTAssertEqual(all[0x7BFF], 65504.0)
        XCTAssertEqual(all[0x7C00], .infinity)
        XCTAssertEqual(all[0xFC00], -.infinity)
        XCTAssertTrue(all[0x7E00].isNaN)
        XCTAssertEqual(all[0x8000].bitPattern, (-Float(0)).bitPattern)
        let bf = try src.tensor(named: "all.BF16")!.toFloat32()
        XCTAssertEqual(bf[0x3F80], 1.0)
        XCTAssertEqual(bf[0xC040], -3.0)
    }

    /// For each tensor type in the two real models, its smallest tensor against gguf-py, bit for bit.
    func testDequantRealModelsBitExact() throws {
        for model in ["SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m"] {
            let g = try GGUFFile(path: try modelPath(model + ".gguf"))
            let exp = try GGUFFile(path: try fixturePath("generated/\(model).expected.gguf"))
            var covered = Set<TensorType>()
            for e in exp.tensors {
                let t = try XCTUnwrap(g.tensor(named: e.name), "\(model): \(e.name)")
                XCTAssertEqual(t.shape, e.shape, e.name)
                covered.insert(t.type)
                let got = try t.toFloat32()
                got.withUnsafeBytes { b in
                    if let i = firstBitDifference(b, e.bytes) { XCTFail("\(model) \(e.name) (\(t.type)): element \(i) differs") }
                }
            }
            XCTAssertEqual(covered, Set(g.tensors.map(\.type)), "\(model): expected file must cover every type; re-run scripts/fixtures/make_dequant_fixtures.py")
        }
    }

    func testDequantizeRows() throws {
        let src = try GGUFFile(path: try fixturePath("dequant/synthetic.gguf"))
        for t in src.tensors {
            let full = try t.toFloat32()
            let L = t.rowLength
            XCTAssertEqual(t.rowCount * L, t.count)
            for rows in [0 ..< 1, 1 ..< 3, (t.rowCount - 1) ..< t.rowCount, 2 ..< 2] {
                var part = [Float](repeating: .nan, count: rows.count * L)
                try part.withUnsafeMutableBufferPointer { try dequantizeRows(t, rows: rows, into: $0) }
                let want = Array(full[rows.lowerBound * L ..< rows.upperBound * L])
                XCTAssertEqual(part.map(\.bitPattern), want.map(\.bitPattern), "\(t.name) rows \(rows)")
            }
            var wrong = [Float](repeating: 0, count: L + 1)
            assertThrows(.argument, mentions: [t.name], "bad out count") {
                try wrong.withUnsafeMutableBufferPointer { try dequantizeRows(t, rows: 0 ..< 1, into: $0) }
            }
            var one = [Float](repeating: 0, count: L)
            assertThrows(.argument, mentions: [t.name], "rows out of range") {
                try one.withUnsafeMutableBufferPointer { try dequantizeRows(t, rows: t.rowCount ..< t.rowCount + 1, into: $0) }
            }
            var short = [Float](repeating: 0, count: t.count - 1)
            assertThrows(.argument, mentions: [t.name], "dequantize out count") {
                try short.withUnsafeMutableBufferPointer { try dequantize(t, into: $0) }
            }
        }
        // a record whose bytes disagree with its shape is rejected, not read past
        let t = src.tensors[0]
        let bad = TensorRecord(name: "bad", shape: [t.count * 2], type: t.type, bytes: t.bytes)
        assertThrows(.format, mentions: ["bad"], "short storage") { _ = try bad.toFloat32() }
    }

    // MARK: safetensors

    /// Safetensors bytes from a header JSON string and a data area.
    func st(_ header: String, _ data: [UInt8], headerLength: UInt64? = nil) -> [UInt8] {
        var g = GGUFBuilder()
        g.u64(headerLength ?? UInt64(header.utf8.count))
        g.bytes += Array(header.utf8) + data
        return g.bytes
    }

    func parseST(_ b: [UInt8]) throws -> SafetensorsFile { try SafetensorsFile(file: MappedFile(copying: b, name: "crafted.safetensors")) }

    func stData() -> (String, [UInt8]) {
        var d: [UInt8] = []
        for v: Float in [1, -2, 3.5, 0.25, 5, 6] { withUnsafeBytes(of: v.bitPattern.littleEndian) { d += $0 } }  // 24
        for h: UInt16 in [0x3C00, 0xC000, 0x0001, 0x7C00] { withUnsafeBytes(of: h.littleEndian) { d += $0 } }  // 8
        for h: UInt16 in [0x3F80, 0xC040] { withUnsafeBytes(of: h.littleEndian) { d += $0 } }  // 4
        let header = """
        {"__metadata__": {"format": "pt"},
         "b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
         "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
         "c": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [32, 36]},
         "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [36, 36]}}
        """
        return (header, d)
    }

    func testSafetensorsValid() throws {
        let (h, d) = stData()
        let f = try parseST(st(h, d))
        XCTAssertEqual(f.tensorNames, ["a", "b", "c", "e"])
        XCTAssertEqual(f.tensor(named: "a")?.shape, [2, 3])
        XCTAssertEqual(f.tensor(named: "a")?.type, .f32)
        XCTAssertEqual(try f.tensor(named: "a")!.toFloat32(), [1, -2, 3.5, 0.25, 5, 6])
        XCTAssertEqual(f.tensor(named: "b")?.type, .f16)
        XCTAssertEqual(try f.tensor(named: "b")!.toFloat32(), [1, -2, Float(sign: .plus, exponent: -24, significand: 1), .infinity])
        XCTAssertEqual(f.tensor(named: "c")?.type, .bf16)
        XCTAssertEqual(try f.tensor(named: "c")!.toFloat32(), [1, -3])
        XCTAssertEqual(try f.tensor(named: "e")!.toFloat32(), [])
        XCTAssertNil(f.tensor(named: "__metadata__"))
        // unaligned data area (odd header length) still reads correctly
        let g = try parseST(st(h + " ", d))
        XCTAssertEqual(try g.tensor(named: "b")!.toFloat32()[0], 1)
        // from a file on disk
        let dir = try makeTempDir()
        try writeFile(dir + "/m.safetensors", st(h, d))
        XCTAssertEqual(try SafetensorsFile(path: dir + "/m.safetensors").tensorNames.count, 4)
    }

    /// A file written by the reference `safetensors` package (scripts/fixtures/make_dequant_fixtures.py).
    func testSafetensorsReferenceFile() throws {
        let f = try SafetensorsFile(path: try fixturePath("safetensors/tiny.safetensors"))
        XCTAssertEqual(Set(f.tensorNames), ["f32", "f16", "scalar"])
        let want = (0 ..< 12).map { Float($0) / 4 }
        XCTAssertEqual(f.tensor(named: "f32")?.shape, [3, 4])
        XCTAssertEqual(f.tensor(named: "f32")?.type, .f32)
        XCTAssertEqual(try f.tensor(named: "f32")!.toFloat32(), want)
        XCTAssertEqual(f.tensor(named: "f16")?.type, .f16)
        XCTAssertEqual(try f.tensor(named: "f16")!.toFloat32(), want)
        XCTAssertEqual(f.tensor(named: "scalar")?.shape, [])
        XCTAssertEqual(try f.tensor(named: "scalar")!.toFloat32(), [7])
    }

    func testSafetensorsHostile() throws {
        let (h, d) = stData()
        assertThrows(.format, mentions: ["crafted.safetensors", "header length"], "short file") { _ = try parseST([1, 2, 3]) }
        assertThrows(.format, mentions: ["header length"], "length > file") { _ = try parseST(st(h, d, headerLength: UInt64(h.utf8.count + d.count + 1))) }
        assertThrows(.format, mentions: ["header length"], "huge length") { _ = try parseST(st(h, d, headerLength: 1 << 60)) }
        assertThrows(.format, mentions: ["header length"], "max length") { _ = try parseST(st(h, d, headerLength: UInt64.max)) }
        assertThrows(.format, mentions: ["invalid JSON"], "bad JSON") { _ = try parseST(st("{\"a\": {", d)) }
        assertThrows(.format, mentions: ["not a JSON object"], "array header") { _ = try parseST(st("[1, 2]", d)) }
        func one(_ entry: String) -> [UInt8] { st("{\"w\": \(entry)}", d) }
        assertThrows(.format, mentions: ["\"w\"", "outside"], "end past data") { _ = try parseST(one(#"{"dtype":"F32","shape":[10],"data_offsets":[0,40]}"#)) }
        assertThrows(.format, mentions: ["\"w\"", "outside"], "begin > end") { _ = try parseST(one(#"{"dtype":"F32","shape":[0],"data_offsets":[8,4]}"#)) }
        assertThrows(.format, mentions: ["\"w\"", "outside"], "negative") { _ = try parseST(one(#"{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}"#)) }
        assertThrows(.format, mentions: ["\"w\"", "data_offsets"], "huge offsets") { _ = try parseST(one(#"{"dtype":"F32","shape":[1],"data_offsets":[0,1e300]}"#)) }
        assertThrows(.format, mentions: ["\"w\"", "data_offsets"], "fractional") { _ = try parseST(one(#"{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}"#)) }
        assertThrows(.format, mentions: ["\"w\"", "needs"], "nbytes mismatch") { _ = try parseST(one(#"{"dtype":"F32","shape":[2],"data_offsets":[0,4]}"#)) }
        assertThrows(.format, mentions: ["\"w\"", "overflow"], "shape overflow") { _ = try parseST(one(#"{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}"#)) }
        assertThrows(.format, mentions: ["\"w\"", "shape"], "negative dim") { _ = try parseST(one(#"{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}"#)) }
        assertThrows(.format, mentions: ["\"w\"", "dtype"], "missing dtype") { _ = try parseST(one(#"{"shape":[1],"data_offsets":[0,4]}"#)) }
        assertThrows(.format, mentions: ["\"w\""], "entry not object") { _ = try parseST(one("3")) }
        assertThrows(.unsupported, mentions: ["\"w\"", "I32"], "I32") { _ = try parseST(one(#"{"dtype":"I32","shape":[1],"data_offsets":[0,4]}"#)) }
        assertThrows(.unsupported, mentions: ["\"w\"", "Q9"], "unknown dtype") { _ = try parseST(one(#"{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}"#)) }
    }

    // MARK: Hugging Face directories

    func makeHFDir(config: String? = #"{"model_type": "llama", "hidden_size": 8}"#) throws -> String {
        let dir = try makeTempDir("ullme-hf")
        if let c = config { try writeFile(dir + "/config.json", c) }
        return dir
    }

    func shard(_ names: [String]) -> [UInt8] {
        var header = "{"
        var data: [UInt8] = []
        for (i, n) in names.enumerated() {
            header += (i > 0 ? "," : "") + "\"\(n)\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [\(4 * i), \(4 * i + 4)]}"
            withUnsafeBytes(of: Float(i + 1).bitPattern.littleEndian) { data += $0 }
        }
        return st(header + "}", data)
    }

    func testHFDirectorySingleFile() throws {
        let dir = try makeHFDir()
        try writeFile(dir + "/model.safetensors", shard(["x", "y"]))
        try writeFile(dir + "/tokenizer.json", #"{"model": {"type": "BPE"}}"#)
        let m = try HFModelDirectory(path: dir)
        XCTAssertEqual(m.config["model_type"]?.string, "llama")
        XCTAssertEqual(m.config["hidden_size"]?.int, 8)
        XCTAssertEqual(m.tokenizer?["model"]?["type"]?.string, "BPE")
        XCTAssertNil(m.tokenizerConfig)
        XCTAssertEqual(m.tensorNames, ["x", "y"])
        XCTAssertEqual(try m.tensor(named: "y")!.toFloat32(), [2])
        XCTAssertNil(m.tensor(named: "z"))
    }

    func testHFDirectorySharded() throws {
        let dir = try makeHFDir()
        try writeFile(dir + "/tokenizer_config.json", #"{"add_bos_token": true}"#)
        try writeFile(dir + "/model-00001-of-00002.safetensors", shard(["a", "b"]))
        try writeFile(dir + "/model-00002-of-00002.safetensors", shard(["c"]))
        try writeFile(dir + "/model.safetensors.index.json", """
        {"metadata": {"total_size": 12}, "weight_map": {"a": "model-00001-of-00002.safetensors",
         "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}}
        """)
        let m = try HFModelDirectory(path: dir)
        XCTAssertEqual(m.tensorNames, ["a", "b", "c"])
        XCTAssertEqual(m.files.count, 2)
        XCTAssertEqual(m.tokenizerConfig?["add_bos_token"]?.bool, true)
        XCTAssertEqual(try m.tensor(named: "c")!.toFloat32(), [1])
        XCTAssertEqual(try m.tensor(named: "b")!.toFloat32(), [2])
    }

    func testHFDirectoryErrors() throws {
        let noConfig = try makeHFDir(config: nil)
        try writeFile(noConfig + "/model.safetensors", shard(["x"]))
        assertThrows(.io, mentions: ["config.json"], "missing config") { _ = try HFModelDirectory(path: noConfig) }
        assertThrows(.io, mentions: ["nowhere"], "missing dir") { _ = try HFModelDirectory(path: noConfig + "/nowhere") }

        let badConfig = try makeHFDir(config: "{not json")
        try writeFile(badConfig + "/model.safetensors", shard(["x"]))
        assertThrows(.format, mentions: ["config.json"], "bad config") { _ = try HFModelDirectory(path: badConfig) }

        let noWeights = try makeHFDir()
        assertThrows(.io, mentions: ["model.safetensors"], "no weights") { _ = try HFModelDirectory(path: noWeights) }

        let missingShard = try makeHFDir()
        try writeFile(missingShard + "/s1.safetensors", shard(["a"]))
        try writeFile(missingShard + "/model.safetensors.index.json", #"{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#)
        assertThrows(.io, mentions: ["s2.safetensors"], "missing shard") { _ = try HFModelDirectory(path: missingShard) }

        let dup = try makeHFDir()
        try writeFile(dup + "/s1.safetensors", shard(["a", "b"]))
        try writeFile(dup + "/s2.safetensors", shard(["b"]))
        try writeFile(dup + "/model.safetensors.index.json", #"{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#)
        assertThrows(.format, mentions: ["\"b\"", "both"], "duplicate tensor") { _ = try HFModelDirectory(path: dup) }

        let misplaced = try makeHFDir()
        try writeFile(misplaced + "/s1.safetensors", shard(["a"]))
        try writeFile(misplaced + "/s2.safetensors", shard(["b"]))
        try writeFile(misplaced + "/model.safetensors.index.json", #"{"weight_map": {"a": "s2.safetensors", "b": "s1.safetensors"}}"#)
        assertThrows(.format, mentions: ["places"], "weight_map disagrees") { _ = try HFModelDirectory(path: misplaced) }

        let escape = try makeHFDir()
        try writeFile(escape + "/model.safetensors.index.json", #"{"weight_map": {"a": "../etc/passwd"}}"#)
        assertThrows(.format, mentions: ["weight_map"], "path escape") { _ = try HFModelDirectory(path: escape) }

        let noMap = try makeHFDir()
        try writeFile(noMap + "/model.safetensors.index.json", #"{"metadata": {}}"#)
        assertThrows(.format, mentions: ["weight_map"], "no weight_map") { _ = try HFModelDirectory(path: noMap) }

        let badShard = try makeHFDir()
        try writeFile(badShard + "/model.safetensors", [1, 2, 3])
        assertThrows(.format, mentions: ["model.safetensors"], "bad shard") { _ = try HFModelDirectory(path: badShard) }
    }
}
