import CULLME
import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// LoRA adapter files (PEFT format): the safetensors writer, export → import round trips, adapters made by
/// PEFT itself (scripts/fixtures/make_adapter_fixtures.py), and the C API's adapter_path. testWriteAdaptersForPEFT
/// also writes Tests/fixtures/generated/adapter-export/, which bindings/python/tests/test_adapter.py loads
/// with PeftModel (run this suite first: `make test` does).
final class AdapterTests: XCTestCase {
    static let models = ["tiny-llama", "tiny-phi3"]

    func modelDir(_ name: String) throws -> String { try fixturePath(name) }

    func readJSON(_ path: String) throws -> JSONValue {
        let f = try MappedFile(path: path)
        return try withExtendedLifetime(f) { try JSONValue.parse(f.bytes, what: path) }
    }

    func floats(_ v: JSONValue?) -> [Float] { (v?.array ?? []).map { Float($0.double ?? .nan) } }

    /// Mean-pooled final hidden states (bidirectional) of each sequence, [N][C].
    func meanPooled(_ model: Model, _ seqs: [[Int32]]) throws -> [[Float]] {
        let out = try model.forward(seqs, attention: .bidirectional)
        let C = model.config.hiddenSize
        return (0..<seqs.count).map { i in
            var p = [Float](repeating: 0, count: C)
            out.hidden.withUnsafeBufferPointer { h in
                p.withUnsafeMutableBufferPointer { Pooling.mean.pool(h.baseAddress! + out.offsets[i] * C, L: seqs[i].count, C: C, into: $0.baseAddress!) }
            }
            return p
        }
    }

    func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// A LoRA model with non-zero A and B (B is zero at init, which would hide layout errors).
    func seededLoRA(_ config: ModelConfig, seed: UInt64, rank: Int = 4, alpha: Float = 8, targets: Set<String>? = nil) -> LoRAModel {
        let lora = LoRAModel(config: config, rank: rank, alpha: alpha, dropout: 0.1, seed: seed, targetNames: targets)
        let rng = KeyedRandom(rawKey: seed &+ 99)
        var c: UInt64 = 0
        for l in lora.adapters.indices { for t in lora.adapters[l].indices {
            lora.adapters[l][t].b = lora.adapters[l][t].b.map { _ in defer { c += 1 }; return (rng.uniform(c) * 2 - 1) * 0.3 }
        } }
        return lora
    }

    func assertSame(_ x: LoRAModel, _ y: LoRAModel, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(x.targets, y.targets, file: file, line: line)
        XCTAssertEqual(x.adapters.count, y.adapters.count, file: file, line: line)
        for (rx, ry) in zip(x.adapters, y.adapters) { for (a, b) in zip(rx, ry) {
            XCTAssertEqual(a.rank, b.rank, file: file, line: line); XCTAssertEqual(a.alpha, b.alpha, file: file, line: line)
            XCTAssertEqual(a.dropout, b.dropout, file: file, line: line)
            XCTAssertEqual(a.a, b.a, file: file, line: line); XCTAssertEqual(a.b, b.b, file: file, line: line)
        } }
    }

    // MARK: safetensors writer

    func testSafetensorsWriterLayoutAndRoundTrip() throws {
        let dir = try makeTempDir("ullme-st")
        let path = dir + "/t.safetensors"
        let tensors: [SafetensorsWriter.Tensor] = [
            .init(name: "zeta", shape: [2, 3], data: [1, -2, 3.5, .infinity, -0.0, 1e-30]),
            .init(name: "alpha.\"q\"", shape: [1], data: [42]),
            .init(name: "empty", shape: [0, 4], data: []),
        ]
        try writeFile(path, "old contents")
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt", "b": "x\ny"], to: path)
        let raw = try MappedFile(path: path)
        let (n, header) = withExtendedLifetime(raw) { () -> (Int, String) in
            let n = Int(raw.bytes.load(as: UInt64.self))
            return (n, String(decoding: raw.bytes[8..<(8 + n)], as: UTF8.self))
        }
        XCTAssertEqual((8 + n) % 8, 0, "data area must start 8-byte aligned")
        XCTAssertTrue(header.hasPrefix("{\"__metadata__\":{\"b\":\"x\\ny\",\"format\":\"pt\"},\"alpha.\\\"q\\\"\":"), header)
        XCTAssertEqual(header.last(where: { $0 != " " }), "}")
        XCTAssertLessThan(header.range(of: "\"empty\"")!.lowerBound, header.range(of: "\"zeta\"")!.lowerBound)
        guard case .object(let meta)? = try JSONValue.parse(Array(header.utf8), what: "h")["__metadata__"] else { return XCTFail() }
        XCTAssertEqual(meta["b"], .string("x\ny"))
        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.tensorNames, ["alpha.\"q\"", "empty", "zeta"])   // data order = sorted names
        for t in tensors {
            let r = try XCTUnwrap(f.tensor(named: t.name))
            XCTAssertEqual(r.shape, t.shape)
            var v = [Float](repeating: 0, count: r.count)
            try v.withUnsafeMutableBufferPointer { try dequantize(r, into: $0) }
            XCTAssertEqual(v.map(\.bitPattern), t.data.map(\.bitPattern))
        }
        // Atomic: no temporary file left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["t.safetensors"])
        XCTAssertThrowsError(try SafetensorsWriter.write([.init(name: "x", shape: [2], data: [1])], to: dir + "/bad.safetensors"))
        XCTAssertThrowsError(try SafetensorsWriter.write([.init(name: "x", shape: [1], data: [1])], to: dir + "/missing/dir/x.safetensors"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["t.safetensors"])
    }

    // MARK: export → import

    func testExportImportRoundTrip() throws {
        for name in Self.models {
            let model = try Model.load(path: try modelDir(name))
            let c = model.config
            for targets in [nil, Set([c.loraTargets[0].name, c.loraTargets.last!.name])] as [Set<String>?] {
                let lora = seededLoRA(c, seed: 5, targets: targets)
                let head = ProjectionHead(dim: c.hiddenSize, seed: 3)
                let dir = try makeTempDir("ullme-adapter")
                try AdapterIO.export(lora, head: head, config: c, to: dir + "/out", baseModelNameOrPath: "org/\(name)")
                let back = try AdapterIO.load(from: dir + "/out", config: c)
                assertSame(lora, back.lora)
                XCTAssertEqual(back.baseModelNameOrPath, "org/\(name)")
                let h = try XCTUnwrap(back.head)
                XCTAssertEqual([h.w1, h.b1, h.w2, h.b2], [head.w1, head.b1, head.w2, head.b2])
                let cfg = try readJSON(dir + "/out/adapter_config.json")
                XCTAssertEqual(cfg["peft_type"], .string("LORA"))
                XCTAssertEqual(cfg["task_type"], .string("FEATURE_EXTRACTION"))
                XCTAssertEqual(cfg["r"]?.int, 4)
                XCTAssertEqual(cfg["lora_alpha"]?.int, 8)
                XCTAssertEqual(cfg["lora_dropout"]?.double, 0.1)
                XCTAssertEqual(Set((cfg["target_modules"]?.array ?? []).compactMap(\.string)), Set(lora.targets.map(\.name)))
                let st = try SafetensorsFile(path: dir + "/out/adapter_model.safetensors")
                XCTAssertEqual(st.tensors.count, 2 * c.nLayers * lora.targets.count)
                XCTAssertTrue(st.tensorNames.allSatisfy { $0.hasPrefix("base_model.model.layers.") }, "\(st.tensorNames)")
                // Re-export without a head removes the stale head file.
                try AdapterIO.export(back.lora, config: c, to: dir + "/out")
                XCTAssertNil(try AdapterIO.load(from: dir + "/out", config: c).head)
            }
        }
    }

    /// Same embeddings from a LoRAModel in memory and from its exported files; eval mode (no dropout).
    func testAttachedAdapterMatchesTrainingEncode() throws {
        let base = try Model.load(path: try modelDir("tiny-llama"))
        let lora = seededLoRA(base.config, seed: 9)
        let seqs: [[Int32]] = [[1, 5, 9, 33], [7, 7, 100, 3, 4, 250]]
        let dir = try makeTempDir("ullme-adapter")
        try AdapterIO.export(lora, config: base.config, to: dir)
        let fromFile = try Model.load(path: try modelDir("tiny-llama"), adapter: dir)
        let attached = try base.withAdapter(lora)
        XCTAssertTrue(lora.training, "withAdapter must not change the caller's LoRAModel")
        lora.training = false
        let direct = try base.decoder.forward(seqs, attention: .bidirectional, wantLogits: false,
                                              lora: LoRAContext(model: lora, examples: [0, 1], pass: 0))
        let a = try fromFile.forward(seqs, attention: .bidirectional), b = try attached.forward(seqs, attention: .bidirectional)
        XCTAssertEqual(a.hidden, direct.hidden)
        XCTAssertEqual(b.hidden, direct.hidden)
        XCTAssertGreaterThan(maxAbsDiff(a.hidden, try base.forward(seqs, attention: .bidirectional).hidden), 0.01)
        XCTAssertEqual(try attached.withAdapter(nil).forward(seqs, attention: .bidirectional).hidden,
                       try base.forward(seqs, attention: .bidirectional).hidden)
    }

    // MARK: adapters made by PEFT

    func testPEFTFixturesMatchReference() throws {
        for name in Self.models {
            let dir = try fixturePath("peft-adapters/\(name)")
            let exp = try readJSON(dir + "/expected.json")
            let seqs = (exp["ids"]?.array ?? []).map { ($0.array ?? []).map { Int32($0.int!) } }
            XCTAssertEqual(seqs.count, 3)
            let model = try Model.load(path: try modelDir(name), adapter: dir)
            let base = try Model.load(path: try modelDir(name))
            let got = try meanPooled(model, seqs), plain = try meanPooled(base, seqs)
            XCTAssertEqual(exp["mean_pooled"]?.array?.count, seqs.count)
            for (i, row) in (exp["mean_pooled"]?.array ?? []).enumerated() {
                let d = maxAbsDiff(got[i], floats(row))
                XCTAssertLessThanOrEqual(d, 1e-4, "\(name) sequence \(i): max |diff| \(d)")
                XCTAssertLessThanOrEqual(maxAbsDiff(plain[i], floats(exp["mean_pooled_base"]?.array?[i])), 1e-4)
                XCTAssertGreaterThan(maxAbsDiff(plain[i], got[i]), 0.01, "the adapter must change the embedding")
            }
            let targets = (exp["targets"]?.array ?? []).compactMap(\.string)
            XCTAssertEqual(Set(try XCTUnwrap(model.adapter).targets.map(\.name)), Set(targets))
            if let projected = exp["projected"]?.array {
                let head = try XCTUnwrap(model.projectionHead)
                let C = model.config.hiddenSize
                let (out, _) = head.forward(got.flatMap { $0 }, N: got.count)
                let norm = l2NormalizeForward(out, N: got.count, D: C)
                for (i, row) in projected.enumerated() {
                    XCTAssertLessThanOrEqual(maxAbsDiff(Array(norm[(i * C)..<((i + 1) * C)]), floats(row)), 1e-4, "\(name) projected \(i)")
                }
            } else {
                XCTAssertNil(model.projectionHead)
            }
        }
    }

    func testPEFTFixtureThroughCAPI() throws {
        let dir = try fixturePath("peft-adapters/tiny-llama")
        let exp = try readJSON(dir + "/expected.json")
        var ids = (exp["ids"]?.array?[1].array ?? []).map { Int32($0.int!) }
        var p = capi_model_default_params()
        XCTAssertNil(p.adapter_path)
        var m: OpaquePointer? = nil
        let status = dir.withCString { path -> Int32 in
            p.adapter_path = path
            return capi_model_load(try! modelDir("tiny-llama"), &p, &m)
        }
        XCTAssertEqual(status, Int32(ULLME_OK), String(cString: ullme_last_error()))
        defer { capi_model_free(m) }
        var got = ullme_model_params()
        got.struct_size = p.struct_size
        XCTAssertEqual(capi_model_get_params(m, &got), Int32(ULLME_OK))
        XCTAssertEqual(got.adapter_path.map { String(cString: $0) }, dir)
        let C = 64
        var out = [Float](repeating: 0, count: ids.count * C)
        XCTAssertEqual(capi_hidden_states(m, &ids, ids.count, ULLME_ATTENTION_BIDIRECTIONAL, &out, out.count), Int32(ULLME_OK))
        let mean = (0..<C).map { c in (0..<ids.count).reduce(Float(0)) { $0 + out[$1 * C + c] } / Float(ids.count) }
        XCTAssertLessThanOrEqual(maxAbsDiff(mean, floats(exp["mean_pooled"]?.array?[1])), 1e-4)

        // A caller built against the first ullme_model_params (no adapter_path) still loads, without adapter;
        // get_params then writes only that prefix.
        var old = capi_model_default_params()
        old.struct_size = modelParamsSizeV1
        old.adapter_path = UnsafePointer(bitPattern: 0x1)   // past the old struct: must not be read
        var m2: OpaquePointer? = nil
        XCTAssertEqual(capi_model_load(try modelDir("tiny-llama"), &old, &m2), Int32(ULLME_OK), String(cString: ullme_last_error()))
        defer { capi_model_free(m2) }
        var got2 = ullme_model_params()
        got2.struct_size = modelParamsSizeV1
        got2.adapter_path = UnsafePointer(bitPattern: 0x2)
        XCTAssertEqual(capi_model_get_params(m2, &got2), Int32(ULLME_OK))
        XCTAssertEqual(got2.adapter_path, UnsafePointer(bitPattern: 0x2), "bytes past the old struct_size must not be written")
        XCTAssertEqual(got2.max_length, 512)

        // Errors: a missing adapter directory and an empty path.
        for bad in ["/nonexistent-adapter", ""] {
            var m3: OpaquePointer? = nil
            var q = capi_model_default_params()
            let s = bad.withCString { q.adapter_path = $0; return capi_model_load(try! modelDir("tiny-llama"), &q, &m3) }
            XCTAssertEqual(s, Int32(bad.isEmpty ? ULLME_E_ARG : ULLME_E_IO), String(cString: ullme_last_error()))
            XCTAssertNil(m3)
        }
    }

    // MARK: errors on import

    func testImportRejectsWhatItCannotRun() throws {
        let model = try Model.load(path: try modelDir("tiny-llama"))
        let c = model.config
        let src = try fixturePath("peft-adapters/tiny-llama")
        func read(_ p: String) throws -> [UInt8] { let f = try MappedFile(path: p); return withExtendedLifetime(f) { Array(f.bytes) } }
        let cfgText = String(decoding: try read(src + "/adapter_config.json"), as: UTF8.self)
        let weights = try read(src + "/adapter_model.safetensors")

        func expectError(_ config: String, _ tensors: [SafetensorsWriter.Tensor]?, _ fragment: String,
                         line: UInt = #line) throws {
            let dir = try makeTempDir("ullme-bad-adapter")
            try writeFile(dir + "/adapter_config.json", config)
            if let tensors { try SafetensorsWriter.write(tensors, to: dir + "/adapter_model.safetensors") }
            else { try writeFile(dir + "/adapter_model.safetensors", weights) }
            XCTAssertThrowsError(try AdapterIO.load(from: dir, config: c), line: line) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(e)", line: line)
            }
        }
        XCTAssertNoThrow(try AdapterIO.load(from: src, config: c))
        try expectError(cfgText.replacingOccurrences(of: "\"fan_in_fan_out\": false", with: "\"fan_in_fan_out\": true"), nil, "fan_in_fan_out")
        try expectError(cfgText.replacingOccurrences(of: "\"use_dora\": false", with: "\"use_dora\": true"), nil, "DoRA")
        try expectError(cfgText.replacingOccurrences(of: "\"peft_type\": \"LORA\"", with: "\"peft_type\": \"IA3\""), nil, "IA3")
        try expectError(cfgText.replacingOccurrences(of: "\"r\": 4", with: "\"r\": 3"), nil, "(r = 3)")
        let a = [Float](repeating: 0.5, count: 4 * 64), b = [Float](repeating: 0.5, count: 64 * 4)
        try expectError(cfgText, [.init(name: "base_model.model.layers.0.self_attn.q_proj.lora_A.weight", shape: [4, 64], data: a),
                                  .init(name: "base_model.model.layers.0.self_attn.q_proj.lora_B.weight", shape: [64, 4], data: b),
                                  .init(name: "base_model.model.embed_tokens.lora_embedding_A", shape: [4, 64], data: a)],
                        "unexpected tensor \"base_model.model.embed_tokens.lora_embedding_A\"")
        try expectError(cfgText, [.init(name: "base_model.model.layers.2.self_attn.q_proj.lora_A.weight", shape: [4, 64], data: a)],
                        "layers.2")   // tiny-llama has 2 layers
        try expectError(cfgText, [.init(name: "base_model.model.layers.0.self_attn.q_proj.lora_A.weight", shape: [4, 64], data: a)],
                        "has lora_A but not lora_B")
        try expectError(cfgText, [.init(name: "base_model.model.layers.0.mlp.q_proj.lora_A.weight", shape: [4, 64], data: a)],
                        "unexpected tensor")

        // CausalLM-style keys (base_model.model.model.layers...) load too; one layer only → zeros elsewhere.
        let dir = try makeTempDir("ullme-causal-adapter")
        try writeFile(dir + "/adapter_config.json", cfgText.replacingOccurrences(of: "\"use_rslora\": false", with: "\"use_rslora\": true"))
        try SafetensorsWriter.write([.init(name: "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight", shape: [4, 64], data: a),
                                     .init(name: "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight", shape: [64, 4], data: b)],
                                    to: dir + "/adapter_model.safetensors")
        let l = try AdapterIO.load(from: dir, config: c).lora
        XCTAssertEqual(l.targets.map(\.name), ["q_proj"])
        XCTAssertEqual(l.adapters[1][0].a, a)
        XCTAssertEqual(l.adapters[0][0].a, [Float](repeating: 0, count: a.count))
        XCTAssertEqual(l.adapters[1][0].scale, 8 / Float(4).squareRoot(), accuracy: 1e-6)   // rsLoRA: alpha/√r
    }

    // MARK: files for the Python/PEFT side

    /// Exports seeded adapters for every fixture model to Tests/fixtures/generated/adapter-export/<model>/
    /// with our embeddings (ours.json); bindings/python/tests/test_adapter.py loads them with PeftModel.
    func testWriteAdaptersForPEFT() throws {
        let root = packageRoot + "/Tests/fixtures/generated/adapter-export"
        let seqs: [[Int32]] = [[1, 17, 200, 45, 3, 9, 88], [5, 6], [99, 98, 97, 96, 95, 94, 93, 92, 91, 90, 89]]
        for (k, name) in Self.models.enumerated() {
            let base = try Model.load(path: try modelDir(name))
            let lora = seededLoRA(base.config, seed: UInt64(40 + k), rank: 4 + k, alpha: 16)
            let dir = root + "/" + name
            try AdapterIO.export(lora, head: ProjectionHead(dim: base.config.hiddenSize, seed: 1), config: base.config,
                                 to: dir, baseModelNameOrPath: "Tests/fixtures/\(name)")
            let emb = try meanPooled(try base.withAdapter(lora), seqs)
            let json = "{\"model\":" + jsonString(name) + ",\"ids\":[" + seqs.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",")
                + "],\"mean_pooled\":[" + emb.map { "[" + $0.map(\.description).joined(separator: ",") + "]" }.joined(separator: ",") + "]}\n"
            try writeFileAtomically(dir + "/ours.json", Array(json.utf8))
            // What we wrote reads back as what we had.
            assertSame(lora, try AdapterIO.load(from: dir, config: base.config).lora)
        }
    }
}
