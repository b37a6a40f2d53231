import CULLME
import FoundationEssentials
import Glibc
import XCTest
@testable import ULLMESwift

/// The exported C functions validate every input and report errors as status + message.
final class CAPITests: XCTestCase {
    func lastError() -> String { String(cString: ullme_last_error()) }

    func testLoadErrors() throws {
        var m: OpaquePointer? = nil
        XCTAssertEqual(capi_model_load(nil, nil, nil), Int32(ULLME_E_ARG))
        // A NULL path is the default model; with its adapter (or base) missing that is an I/O error naming it.
        setenv("ULLME_DEFAULT_ADAPTER", "/nonexistent-adapter", 1)
        defer { unsetenv("ULLME_DEFAULT_ADAPTER") }
        XCTAssertEqual(capi_model_load(nil, nil, &m), Int32(ULLME_E_IO))
        XCTAssertTrue(lastError().contains("default model"), lastError())
        XCTAssertNil(m)
        XCTAssertEqual(capi_model_load("/nonexistent.gguf", nil, &m), Int32(ULLME_E_IO))
        XCTAssertTrue(lastError().contains("/nonexistent.gguf"), lastError())
        XCTAssertNil(m)
        XCTAssertEqual(capi_model_load("/etc/hostname", nil, &m), Int32(ULLME_E_FORMAT), lastError())
        var p = capi_model_default_params()
        p.max_length = -1   // 0 is "the model's own" (AUTO)
        XCTAssertEqual(capi_model_load(ParityFixtures.root + "/tiny-llama", &p, &m), Int32(ULLME_E_ARG))
        XCTAssertTrue(lastError().contains("max_length"), lastError())
        p = capi_model_default_params(); p.struct_size = 3
        XCTAssertEqual(capi_model_load(ParityFixtures.root + "/tiny-llama", &p, &m), Int32(ULLME_E_ARG))
        p = capi_model_default_params(); p.pooling = ullme_pooling(rawValue: 9)
        XCTAssertEqual(capi_model_load(ParityFixtures.root + "/tiny-llama", &p, &m), Int32(ULLME_E_ARG))
        XCTAssertEqual(capi_model_load(ParityFixtures.root + "/tiny-llama", nil, nil), Int32(ULLME_E_ARG))
        var pool = ULLME_POOLING_MEAN
        XCTAssertEqual(capi_pooling_from_name("max", &pool), Int32(ULLME_E_ARG))
        XCTAssertTrue(lastError().contains("unknown pooling"), lastError())
        XCTAssertEqual(capi_pooling_from_name("lasttoken", &pool), Int32(ULLME_OK))
        XCTAssertEqual(pool, ULLME_POOLING_LASTTOKEN)
        var attn = ULLME_ATTENTION_CAUSAL
        XCTAssertEqual(capi_attention_from_name("bidirectional", &attn), Int32(ULLME_OK))
        XCTAssertEqual(attn, ULLME_ATTENTION_BIDIRECTIONAL)
        XCTAssertEqual(String(cString: capi_status_name(Int32(ULLME_E_FORMAT))), "ULLME_E_FORMAT")
        XCTAssertEqual(String(cString: capi_status_name(99)), "ULLME_E_UNKNOWN")
    }

    func testCallsValidateBuffers() throws {
        var m: OpaquePointer? = nil
        XCTAssertEqual(capi_model_load(ParityFixtures.root + "/tiny-llama", nil, &m), Int32(ULLME_OK), lastError())
        defer { capi_model_free(m) }
        var info = ullme_model_info()
        XCTAssertEqual(capi_model_get_info(m, &info), Int32(ULLME_OK))
        XCTAssertEqual(info.hidden_size, 64)
        XCTAssertEqual(withUnsafeBytes(of: info.architecture) { String(decoding: $0.prefix(5), as: UTF8.self) }, "llama")
        XCTAssertEqual(capi_model_get_info(nil, &info), Int32(ULLME_E_ARG))
        var ids: [Int32] = [1, 2, 3]
        var out = [Float](repeating: 0, count: 3 * 64)
        XCTAssertEqual(capi_hidden_states(m, &ids, 3, ULLME_ATTENTION_CAUSAL, &out, out.count), Int32(ULLME_OK), lastError())
        XCTAssertEqual(capi_hidden_states(m, &ids, 3, ULLME_ATTENTION_CAUSAL, &out, out.count - 1), Int32(ULLME_E_ARG))
        XCTAssertEqual(capi_hidden_states(m, nil, 3, ULLME_ATTENTION_CAUSAL, &out, out.count), Int32(ULLME_E_ARG))
        XCTAssertEqual(capi_hidden_states(m, &ids, 0, ULLME_ATTENTION_CAUSAL, &out, out.count), Int32(ULLME_E_ARG))
        XCTAssertEqual(capi_hidden_states(m, &ids, 3, ullme_attention(rawValue: 7), &out, out.count), Int32(ULLME_E_ARG))
        var bad: [Int32] = [1, 999]
        XCTAssertEqual(capi_hidden_states(m, &bad, 2, ULLME_ATTENTION_CAUSAL, &out, out.count), Int32(ULLME_E_ARG))
        var logits = [Float](repeating: 0, count: 3 * 256)
        XCTAssertEqual(capi_logits(m, &ids, 3, &logits, logits.count), Int32(ULLME_OK))
        XCTAssertEqual(capi_logits(m, &ids, 3, &logits, 10), Int32(ULLME_E_ARG))

        // Embedding: buffer too small, NULL texts, empty batch.
        let text = strdup("hello")!
        defer { free(text) }
        var texts: [UnsafePointer<CChar>?] = [UnsafePointer(text)]
        var emb = [Float](repeating: 0, count: 64)
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, nil, &emb, 63, nil), Int32(ULLME_E_ARG))
        XCTAssertEqual(capi_embed(m, nil, nil, 1, nil, &emb, 64, nil), Int32(ULLME_E_ARG))
        XCTAssertEqual(capi_embed(m, nil, nil, 0, nil, nil, 0, nil), Int32(ULLME_OK))
        var stats = ullme_embed_stats()
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, nil, &emb, 64, &stats), Int32(ULLME_OK), lastError())
        XCTAssertEqual(stats.n_texts, 1)
        var ep = capi_embed_default_params(); ep.struct_size = 1
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, &ep, &emb, 64, nil), Int32(ULLME_E_ARG))
        // Cancellation through the progress callback.
        ep = capi_embed_default_params()
        ep.progress = { _, _, _ in 1 }
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, &ep, &emb, 64, nil), Int32(ULLME_E_CANCELLED))
        // Tokenize: size query with a NULL buffer, then too-small buffer.
        var n = 0
        let rc = capi_tokenize(m, "hello world", Int(bitPattern: UInt.max), 1, nil, 0, &n)
        XCTAssertEqual(rc, Int32(ULLME_E_ARG))
        XCTAssertGreaterThan(n, 0)
        var tokIds = [Int32](repeating: 0, count: n)
        XCTAssertEqual(capi_tokenize(m, "hello world", Int(bitPattern: UInt.max), 1, &tokIds, n, &n), Int32(ULLME_OK))
        var bytes = [CChar](repeating: 0, count: 64)
        var nb = 0
        XCTAssertEqual(capi_detokenize(m, tokIds, n, 1, &bytes, 64, &nb), Int32(ULLME_OK), lastError())
        XCTAssertEqual(String(decoding: bytes.prefix(nb).map { UInt8(bitPattern: $0) }, as: UTF8.self), "hello world")
        XCTAssertEqual(capi_detokenize(m, [5000], 1, 1, &bytes, 64, &nb), Int32(ULLME_E_ARG))
    }
}
