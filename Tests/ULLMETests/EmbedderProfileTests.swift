import CULLME
import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// The model-metadata layer: sentence-transformers directories, presets, prompts and prompt-excluded pooling,
/// and their C API. Fixtures: scripts/fixtures/make_embedder_fixtures.py (Tests/fixtures/generated/embedders/, `make fixtures`).
final class EmbedderProfileTests: XCTestCase {
    static func dir(_ name: String) -> String { ParityFixtures.root + "/generated/embedders/" + name }

    func testSentenceTransformersMetadata() throws {
        let q = try Model.load(path: Self.dir("st-qwen3")).embedder
        XCTAssertEqual(q.name, "sentence-transformers")
        XCTAssertEqual(q.pooling, .lastToken); XCTAssertEqual(q.attention, .causal)
        XCTAssertTrue(q.normalize); XCTAssertFalse(q.excludePrompt); XCTAssertEqual(q.maxLength, 48)
        XCTAssertEqual(q.prompts.map(\.name), ["document", "query"])
        XCTAssertEqual(q.prompt(named: "query"), "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:")
        XCTAssertNil(q.defaultPromptName); XCTAssertEqual(q.similarity, "cosine")
        let m = try Model.load(path: Self.dir("st-mistral")).embedder
        XCTAssertEqual(m.pooling, .mean); XCTAssertTrue(m.excludePrompt); XCTAssertFalse(m.normalize)
        // legacy pooling keys (pooling_mode_weightedmean_tokens, word_embedding_dimension), a default prompt
        let l = try Model.load(path: Self.dir("st-llama")).embedder
        XCTAssertEqual(l.pooling, .weightedMean); XCTAssertEqual(l.defaultPromptName, "classification")
        XCTAssertThrowsError(try SentenceTransformersDirectory.poolingMode(.object(["pooling_mode": .array([.string("mean"), .string("max")])]), what: "x"))
        XCTAssertThrowsError(try SentenceTransformersDirectory.poolingMode(.object(["pooling_mode_max_tokens": .bool(true)]), what: "x"))
        XCTAssertEqual(try SentenceTransformersDirectory.poolingMode(.object([:]), what: "x"), .mean)
        XCTAssertEqual(try SentenceTransformersDirectory.poolingMode(.object(["pooling_mode": .string("cls")]), what: "x"), .cls)
        // A plain HF directory keeps today's defaults.
        XCTAssertEqual(try Model.load(path: Self.dir("genc-mistral")).embedder, .ullme)
    }

    /// sentence-transformers' prompt length: the prompt tokenised alone with the special tokens, a trailing
    /// special token (the post-processor's EOS) not counted.
    func testPromptLengthRule() throws {
        let qwen = try Model.load(path: Self.dir("st-qwen3")), tq = try XCTUnwrap(qwen.tokenizer)
        var o = EmbedOptions(); o.prompt = Array("Represent: ".utf8)
        let f = try qwen.formatted(Array("ships".utf8), options: o)
        let ids = try qwen.promptTokens(f.full, maxLength: 48, addSpecial: f.addSpecial).ids
        XCTAssertEqual(ids.last, tq.eosId == nil ? nil : tq.suffixIds.last)   // <|endoftext|> appended
        XCTAssertEqual(try qwen.promptTokenCount(f, ids: ids, rule: .promptTokens), tq.encode(f.prefix, addSpecial: false).count)
        let mistral = try Model.load(path: Self.dir("st-mistral")), tm = try XCTUnwrap(mistral.tokenizer)
        let g = try mistral.formatted(Array("ships".utf8), options: o)
        let gids = try mistral.promptTokens(g.full, maxLength: 48).ids
        XCTAssertEqual(gids.first, tm.bosId)
        XCTAssertEqual(try mistral.promptTokenCount(g, ids: gids, rule: .promptTokens), 1 + tm.encode(g.prefix, addSpecial: false).count)
        // text_tokens (LLM2Vec): everything but the text's own tokens
        XCTAssertEqual(try mistral.promptTokenCount(g, ids: gids, rule: .textTokens), gids.count - tm.encode(g.text, addSpecial: false).count)
    }

    /// A text that is all prompt embeds as zeros (no NaN, no error); prompt names are checked.
    func testAllPromptGivesZerosAndUnknownPromptNames() throws {
        let m = try Model.load(path: Self.dir("st-mistral"))
        var o = EmbedOptions(); o.promptName = "query"
        var out = [Float](repeating: .nan, count: 2 * m.config.hiddenSize)
        _ = try out.withUnsafeMutableBufferPointer { try m.embed([[], Array("how do lighthouses work?".utf8)], options: o, into: $0) }
        XCTAssertEqual(Array(out[0..<m.config.hiddenSize]), [Float](repeating: 0, count: m.config.hiddenSize))
        XCTAssertTrue(out.allSatisfy(\.isFinite)); XCTAssertGreaterThan(out[m.config.hiddenSize...].map(abs).max()!, 0)
        o.promptName = "nope"
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try m.embed([[1]], options: o, into: $0) }) { e in
            XCTAssertTrue("\(e)".contains("prompt name \"nope\" not found"), "\(e)")
        }
    }

    /// Pooling without the first `skip` positions: weightedmean keeps the positions' own weights, cls takes the
    /// first remaining token, lasttoken the last, nothing left gives zeros.
    func testPoolingSkip() {
        let L = 4, C = 2
        let h: [Float] = [1, 10, 2, 20, 3, 30, 4, 40]
        func pool(_ p: Pooling, _ skip: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: C)
            h.withUnsafeBufferPointer { p.pool($0.baseAddress!, L: L, C: C, skip: skip, into: &out) }
            return out
        }
        XCTAssertEqual(pool(.mean, 2), [3.5, 35])
        let w: [Float] = [25 / 7, 250 / 7]   // (3·3 + 4·4) / 7, positions keep weights 3 and 4
        XCTAssertEqual(pool(.weightedMean, 2), w)
        XCTAssertEqual(pool(.cls, 1), [2, 20]); XCTAssertEqual(pool(.lastToken, 3), [4, 40])
        for p in Pooling.allCases { XCTAssertEqual(pool(p, 4), [0, 0]) }
        XCTAssertEqual(pool(.mean, 0), [2.5, 25])
    }

    func testTemplates() throws {
        XCTAssertEqual(Model.formatPrompt(Array("t".utf8), instruction: Array("i".utf8), isQuery: false), Array("i\nCandidate:\nt".utf8))
        XCTAssertEqual(Model.formatPrompt(Array("t".utf8), instruction: [], isQuery: true), Array("t".utf8))
        let g = try XCTUnwrap(Model.format(Array("T".utf8), template: Array("<s>[INST]{instruction}\n{text}</s>".utf8), instruction: Array("I".utf8)))
        XCTAssertEqual(g.prefix, Array("<s>[INST]I\n".utf8)); XCTAssertEqual(g.suffix, Array("</s>".utf8))
        XCTAssertNil(Model.format([], template: Array("no text".utf8), instruction: []))
        XCTAssertEqual(EmbedderProfile.presets.map(\.name), ["ullme", "genc-llama3", "genc-mistral", "gritlm", "llm2vec", "e5-instruct", "qwen3-embedding"])
        for p in EmbedderProfile.presets {
            XCTAssertNotNil(Model.format([], template: Array(p.template.query.utf8), instruction: []), p.name)
            XCTAssertNotNil(Model.format([], template: Array(p.template.document.utf8), instruction: []), p.name)
        }
        XCTAssertThrowsError(try EmbedderProfile.preset(named: "x"))
    }

    /// Every family has its own names in the one family table, and each name maps back to it.
    func testFamilyTable() {
        for f in Family.allCases {
            for n in f.spec.hfModelTypes { XCTAssertEqual(Family.named(hf: n), f) }
            for n in f.spec.ggufArchitectures { XCTAssertEqual(Family.named(gguf: n), f) }
        }
        XCTAssertEqual(Set(Family.hfNames).count, Family.hfNames.count)
        XCTAssertEqual(Family.named(hf: "qwen3"), .qwen3); XCTAssertEqual(Family.named(gguf: "qwen3"), .qwen3)
    }

    /// The C API: AUTO defaults resolved at load, presets, the embedder JSON, prompt fields and the older
    /// struct sizes of ullme_model_params and ullme_embed_params.
    func testCAPI() throws {
        func err() -> String { String(cString: ullme_last_error()) }
        var m: OpaquePointer? = nil
        var p = capi_model_default_params()
        XCTAssertEqual(p.pooling, ULLME_POOLING_AUTO); XCTAssertEqual(p.attention, ULLME_ATTENTION_AUTO); XCTAssertEqual(p.max_length, 0)
        XCTAssertEqual(capi_model_load(Self.dir("st-qwen3"), &p, &m), Int32(ULLME_OK), err())
        defer { capi_model_free(m) }
        var got = capi_model_default_params()
        XCTAssertEqual(capi_model_get_params(m, &got), Int32(ULLME_OK))
        XCTAssertEqual(got.pooling, ULLME_POOLING_LASTTOKEN); XCTAssertEqual(got.attention, ULLME_ATTENTION_CAUSAL); XCTAssertEqual(got.max_length, 48)
        var json: UnsafePointer<CChar>? = nil
        XCTAssertEqual(capi_model_embedder(m, &json), Int32(ULLME_OK))
        let j = try JSONValue.parse(Array(String(cString: json!).utf8), what: "embedder")
        XCTAssertEqual(j["pooling"]?.string, "lasttoken"); XCTAssertEqual(j["prompts"]?["document"]?.string, "")

        // embed: a named prompt equals the same prompt passed as text; an older struct_size gets the defaults
        let C = 64
        var texts: [UnsafePointer<CChar>?] = [UnsafePointer(strdup("ships")!)]
        defer { free(UnsafeMutablePointer(mutating: texts[0])) }
        var a = [Float](repeating: 0, count: C), b = a, c = a
        var e = capi_embed_default_params()
        XCTAssertEqual(e.normalize, -1); XCTAssertEqual(e.exclude_prompt, -1)
        let name = strdup("query")!
        defer { free(name) }
        e.prompt_name = UnsafePointer(name)
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, &e, &a, C, nil), Int32(ULLME_OK), err())
        let prompt = strdup("Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:")!
        defer { free(prompt) }
        e = capi_embed_default_params(); e.prompt = UnsafePointer(prompt)
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, &e, &b, C, nil), Int32(ULLME_OK), err())
        XCTAssertEqual(a, b)
        e = capi_embed_default_params(); e.struct_size = embedParamsSizeV1
        e.prompt = UnsafePointer(prompt)   // beyond the older struct: not read
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, &e, &c, C, nil), Int32(ULLME_OK), err())
        XCTAssertNotEqual(a, c)
        e = capi_embed_default_params(); e.exclude_prompt = 2
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, &e, &c, C, nil), Int32(ULLME_E_ARG))
        e = capi_embed_default_params(); e.prompt_len = 3
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, &e, &c, C, nil), Int32(ULLME_E_ARG))
        let bad = strdup("nope")!
        defer { free(bad) }
        e = capi_embed_default_params(); e.prompt_name = UnsafePointer(bad)
        XCTAssertEqual(capi_embed(m, &texts, nil, 1, &e, &c, C, nil), Int32(ULLME_E_ARG))
        XCTAssertTrue(err().contains("nope"), err())

        // presets; an older ullme_model_params (before preset) is accepted
        var m2: OpaquePointer? = nil
        p = capi_model_default_params(); p.preset = UnsafePointer(bad)
        XCTAssertEqual(capi_model_load(Self.dir("genc-mistral"), &p, &m2), Int32(ULLME_E_ARG))
        XCTAssertTrue(err().contains("unknown preset"), err())
        let preset = strdup("genc-mistral")!
        defer { free(preset) }
        p = capi_model_default_params(); p.preset = UnsafePointer(preset)
        XCTAssertEqual(capi_model_load(Self.dir("genc-mistral"), &p, &m2), Int32(ULLME_OK), err())
        XCTAssertEqual(capi_model_get_params(m2, &got), Int32(ULLME_OK))
        XCTAssertEqual(String(cString: got.preset!), "genc-mistral")
        capi_model_free(m2)
        p = capi_model_default_params(); p.struct_size = modelParamsSizeV4; p.preset = UnsafePointer(bad)  // not read
        XCTAssertEqual(capi_model_load(Self.dir("genc-mistral"), &p, &m2), Int32(ULLME_OK), err())
        capi_model_free(m2)
        var auto = ULLME_POOLING_MEAN
        XCTAssertEqual(capi_pooling_from_name("auto", &auto), Int32(ULLME_OK)); XCTAssertEqual(auto, ULLME_POOLING_AUTO)
    }
}
