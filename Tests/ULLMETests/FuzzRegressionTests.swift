import FoundationEssentials
import XCTest
import CULLME
@testable import ULLMESwift

/// One test per bug found by fuzzing (fuzz/) or by the C API tests (Tests/c/), with the input that
/// triggered it (Tests/fixtures/fuzz-regressions/ when it came from the fuzzer), plus allocation-cap
/// tests: absurd sizes and counts must be rejected before anything that large is allocated.
final class FuzzRegressionTests: XCTestCase {
    private func clock() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// fuzz gguf-tokenizer: a NaN in tokenizer.ggml.scores had no merge rank (NaN != NaN in the rank
    /// dictionary) and trapped on a force-unwrap in GGUFTokenizerLoader.
    func testNaNSentencePieceScoreIsAFormatError() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixturePath("fuzz-regressions/gguf-tokenizer-nan-score.gguf"))))
        let f = try parseGGUF(bytes)
        assertThrows(.format, mentions: ["NaN"], "NaN score") { _ = try TokenizerLoader.fromGGUF(f.metadata) }
        // The same, built directly.
        var m = spmMetadata(["<unk>", "a", "b", "ab"])
        m["tokenizer.ggml.scores"] = .array([.float(0), .float(-1), .float(.nan), .float(-2)])
        assertThrows(.format, mentions: ["NaN"], "NaN score") { _ = try TokenizerLoader.fromGGUF(m) }
    }

    /// fuzz encode-spm (setup): llama.cpp's vocab-only GGUF files (no tensors) end right after the
    /// metadata, without padding to the alignment; they were rejected as truncated.
    func testGGUFWithoutTensorsNeedsNoDataPadding() throws {
        var g = GGUFBuilder()
        g.header(tensors: 0, kvs: 1); g.str("general.architecture"); g.u32(8); g.str("llama")
        XCTAssertNotEqual(g.bytes.count % 32, 0)
        let f = try parseGGUF(g.bytes)
        XCTAssertEqual(f.metadata["general.architecture"], .string("llama"))
        XCTAssertEqual(f.dataOffset, g.bytes.count)
        // With a tensor, the data section must still be there.
        var t = GGUFBuilder()
        t.header(tensors: 1, kvs: 0); t.tensor("w", ne: [0], type: 0, offset: 0); t.u8(0)
        assertThrows(.format, mentions: ["truncated"], "tensor without padding") { _ = try parseGGUF(t.bytes) }
        let spm = ullmeCache() + "/vocab/ggml-vocab-llama-spm.gguf"
        if FileManager.default.fileExists(atPath: spm) {
            let v = try GGUFFile(path: spm)
            XCTAssertEqual(try TokenizerLoader.fromGGUF(v.metadata).vocabSize, 32000)
        }
    }

    /// Review for the fuzzer's timeouts: the SentencePiece merge search splits every token at every
    /// position (O(length^2) strings); one 200k-scalar token in a hostile GGUF took minutes.
    func testLongSentencePieceTokenLoadsQuickly() throws {
        let long = String(repeating: "ab", count: 100_000)
        var m = spmMetadata(["<unk>", "a", "b", "ab", long])
        m["tokenizer.ggml.add_space_prefix"] = .bool(false)
        let t0 = clock()
        let tok = try TokenizerLoader.fromGGUF(m)
        XCTAssertLessThan(clock() - t0, 2.0)
        XCTAssertEqual(tok.encode(Array("ab".utf8), addSpecial: false), [3])
    }

    /// Review: tokenizer.json's token table is indexed by id, so one token with id 9,999,999 in a
    /// 40-byte file allocated ~400 MB (two 10M-entry arrays).
    func testTokenizerJSONIdsAreBoundedByTheVocabulary() throws {
        let j = try JSONValue.parse(Array(#"{"model":{"type":"BPE","vocab":{"a":9999999},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"}}"#.utf8), what: "t")
        assertThrows(.format, mentions: ["too large"], "huge id") { _ = try TokenizerLoader.fromTokenizerJSON(j, config: nil) }
        let ok = try JSONValue.parse(Array(#"{"model":{"type":"BPE","vocab":{"a":0,"b":40},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"}}"#.utf8), what: "t")
        XCTAssertEqual(try TokenizerLoader.fromTokenizerJSON(ok, config: nil).vocabSize, 41)
    }

    /// Tests/c/bad_input.c: a size_t length above Int.max (e.g. SIZE_MAX - 1) arrived negative and
    /// made an UnsafeBufferPointer with a negative count (memory corruption in the release build).
    func testCAPIHugeLengthsAreArgumentErrors() throws {
        let path = try fixturePath("tiny-llama")
        var model: OpaquePointer? = nil
        XCTAssertEqual(path.withCString { capi_model_load($0, nil, &model) }, Int32(ULLME_OK))
        defer { capi_model_free(model) }
        var ids = [Int32](repeating: 0, count: 16)
        var n = 0
        let huge = Int(bitPattern: UInt.max - 1)
        let s = "abc".withCString { capi_tokenize(model, $0, huge, 1, &ids, 16, &n) }
        XCTAssertEqual(s, Int32(ULLME_E_ARG))
        var buf = [CChar](repeating: 0, count: 16)
        XCTAssertEqual(capi_detokenize(model, ids, huge, 0, &buf, 16, &n), Int32(ULLME_E_ARG))
        var out = [Float](repeating: 0, count: 64)
        var lens = [huge]
        let e = "abc".withCString { p -> Int32 in
            var texts: [UnsafePointer<CChar>?] = [p]
            return capi_embed(model, &texts, &lens, 1, nil, &out, 64, nil)
        }
        XCTAssertEqual(e, Int32(ULLME_E_ARG))
    }

    /// fuzz model-gguf (after ~90 k executions): `{arch}.block_count` was only validated after
    /// DecoderWeights had reserved one entry per layer (malloc of 19 GB, an OOM kill in a host process);
    /// the per-layer sliding-window arrays of ModelConfig.fromGGUF/fromHF had the same problem, and a
    /// negative count trapped in `0..<nLayers`.
    func testLayerCountIsBoundedBeforeAllocation() throws {
        let path = try fixturePath("fuzz-regressions/model-gguf-huge-block-count.gguf")
        assertThrows(.format, mentions: ["num_hidden_layers"], "model") { _ = try Model.load(path: path) }
        for n: Int64 in [-1, 1 << 40, 0] {
            let meta: [String: GGUFValue] = [
                "general.architecture": .string("gemma3"), "gemma3.block_count": .int(n),
                "gemma3.embedding_length": .uint(64), "gemma3.attention.head_count": .uint(4),
                "gemma3.feed_forward_length": .uint(128),
            ]
            assertThrows(.format, mentions: ["num_hidden_layers"], "GGUF block_count \(n)") {
                _ = try ModelConfig.fromGGUF(meta, vocabSizeFallback: 256)
            }
            let hf = try JSONValue.parse(Array("""
                {"model_type":"gemma2","hidden_size":64,"num_attention_heads":4,"num_hidden_layers":\(n),
                 "intermediate_size":128,"vocab_size":256}
                """.utf8), what: "config.json")
            assertThrows(.format, mentions: ["num_hidden_layers"], "HF num_hidden_layers \(n)") { _ = try ModelConfig.fromHF(hf) }
        }
    }

    // MARK: allocation caps

    /// Every count in a GGUF is bounded by the bytes left: nested arrays claiming many elements.
    func testGGUFNestedArrayCountsAreBoundedByFileSize() throws {
        // array of 1M arrays (12 bytes each at least) in a 100-byte file
        var g = GGUFBuilder(); g.header(tensors: 0, kvs: 1); g.str("k"); g.u32(9); g.u32(9); g.u64(1 << 20); g.zeros(64)
        assertThrows(.format, mentions: ["array length"], "nested count") { _ = try parseGGUF(g.bytes) }
        // inner array too long
        var h = GGUFBuilder(); h.header(tensors: 0, kvs: 1); h.str("k"); h.u32(9); h.u32(9); h.u64(1)
        h.u32(12); h.u64(1 << 40); h.zeros(64)
        assertThrows(.format, mentions: ["array length"], "inner count") { _ = try parseGGUF(h.bytes) }
        // nesting deeper than the cap
        var d = GGUFBuilder(); d.header(tensors: 0, kvs: 1); d.str("k"); d.u32(9)
        for _ in 0 ..< 20 { d.u32(9); d.u64(1) }
        d.u32(0); d.u64(0); d.zeros(16)
        assertThrows(.format, mentions: ["deeper"], "depth") { _ = try parseGGUF(d.bytes) }
    }

    /// Tensor shapes whose byte size overflows or exceeds the file are rejected.
    func testGGUFTensorSizesAreBoundedByFileSize() throws {
        for ne: [UInt64] in [[1 << 32, 1 << 32], [UInt64(Int64.max)], [1 << 40, 1 << 22, 1, 1]] {
            var g = GGUFBuilder(); g.header(tensors: 1, kvs: 0); g.tensor("w", ne: ne, type: 0, offset: 0); g.pad(to: 32); g.zeros(64)
            assertThrows(.format, mentions: ["\"w\""], "shape \(ne)") { _ = try parseGGUF(g.bytes) }
        }
    }

    /// Safetensors: header length, shapes and offsets beyond the file.
    func testSafetensorsSizesAreBoundedByFileSize() throws {
        func file(_ header: String, data: Int = 16) -> [UInt8] {
            var b = [UInt8]()
            withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { b += $0 }
            return b + Array(header.utf8) + [UInt8](repeating: 0, count: data)
        }
        let cases = [
            #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#,
            #"{"w":{"dtype":"F32","shape":[1e15,1e15],"data_offsets":[0,16]}}"#,
            #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,9007199254740000]}}"#,
            #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}}"#,
            #"{"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}"#,
        ]
        for c in cases {
            assertThrows(.format, c) { _ = try SafetensorsFile(file: MappedFile(copying: file(c), name: "st")) }
        }
    }

    /// A GGUF tokenizer's arrays are as long as the file allows, never longer: a token_type array longer
    /// than the tokens, and ids outside the vocabulary, are errors or ignored, not indexes.
    func testGGUFTokenizerIdsOutsideTheVocabulary() throws {
        var m = spmMetadata(["<unk>", "a", "b", "ab"])
        m["tokenizer.ggml.bos_token_id"] = .uint(UInt64.max)
        m["tokenizer.ggml.eos_token_id"] = .int(-5)
        m["tokenizer.ggml.padding_token_id"] = .uint(4)
        let tok = try TokenizerLoader.fromGGUF(m)
        XCTAssertNil(tok.bosId); XCTAssertNil(tok.eosId); XCTAssertNil(tok.padId)
        m["tokenizer.ggml.token_type"] = .array([.int(1), .int(1), .int(1), .int(1), .int(1)])
        assertThrows(.format, mentions: ["token_type"], "types") { _ = try TokenizerLoader.fromGGUF(m) }
    }

    private func spmMetadata(_ tokens: [String]) -> [String: GGUFValue] {
        [
            "tokenizer.ggml.model": .string("llama"),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.scores": .array(tokens.indices.map { .float(-Double($0)) }),
            "tokenizer.ggml.token_type": .array(tokens.indices.map { .int($0 == 0 ? 2 : 1) }),
        ]
    }
}
