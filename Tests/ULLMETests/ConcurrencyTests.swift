import Dispatch
import XCTest
import CULLME
@testable import ULLMESwift

/// Many threads embedding through one model handle (the C API's documented contract). Bitwise equal
/// to the single-threaded result; run under ThreadSanitizer by scripts/sanitize.sh.
final class ConcurrencyTests: XCTestCase {
    func testEightThreadsEmbedThroughOneHandle() throws {
        let path = try fixturePath("tiny-llama")
        var model: OpaquePointer? = nil
        XCTAssertEqual(path.withCString { capi_model_load($0, nil, &model) }, Int32(ULLME_OK))
        defer { capi_model_free(model) }
        let texts = (0..<12).map { i in String(repeating: "word\(i) ", count: 1 + i * 3) + "é日本" }
        var info = ullme_model_info()
        XCTAssertEqual(capi_model_get_info(model, &info), Int32(ULLME_OK))
        let dim = Int(info.hidden_size)

        func embedAll() -> [Float]? {
            var out = [Float](repeating: 0, count: texts.count * dim)
            let cstrs = texts.map { strdup($0) }
            defer { cstrs.forEach { free($0) } }
            var ptrs: [UnsafePointer<CChar>?] = cstrs.map { UnsafePointer($0) }
            let s = capi_embed(model, &ptrs, nil, texts.count, nil, &out, out.count, nil)
            return s == Int32(ULLME_OK) ? out : nil
        }
        let reference = try XCTUnwrap(embedAll()).map(\.bitPattern)
        let results = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 8)
        results.initialize(repeating: false)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            var ok = true
            for _ in 0..<3 { ok = ok && embedAll()?.map(\.bitPattern) == reference }
            results[t] = ok
        }
        XCTAssertEqual(Array(results), Array(repeating: true, count: 8))
    }
}
