import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// GRL training data: JSONL loading, the batch sampler, text formats, the YAML config.
final class GRLDataTests: XCTestCase {

    // MARK: JSONL

    func testMalformedLinesReportedWithFileAndLine() throws {
        let text = """
        {"query": "q1", "positive": ["p1"], "negative": ["n1", "n2"]}
        not json
        {"query": "q3", "positive": [], "negative": ["n"]}

        {"query": "q5", "positive": ["p"], "negative": "n"}
        ["a list"]
        {"positive": ["p"], "negative": ["n"]}
        {"query": "q8", "positive": ["p", 3], "negative": ["n"]}
        {"query": "q9", "positive": ["p9"], "negative": ["n9"], "cluster": 4, "id": "x"}\r
        {"query": "", "positive": ["p"], "negative": ["n"]}
        """
        let bytes = Array(text.utf8) + [0x0A, 0xFF, 0xFE, 0x0A]  // line 11: invalid UTF-8
        let ds = try GRLDataset.parse(jsonl: bytes, file: "t.jsonl", name: "t", instruction: "I", malformed: .skip)
        XCTAssertEqual(ds.examples.map(\.query), ["q1", "q9"])
        XCTAssertEqual(ds.examples.map(\.line), [1, 9])
        XCTAssertEqual(ds.examples[1].cluster, .int(4))
        XCTAssertEqual(ds.skipped.map(\.description), [
            "t.jsonl:2: invalid JSON",
            "t.jsonl:3: \"positive\" is empty (at least one is needed)",
            "t.jsonl:5: \"negative\" must be a list of strings",
            "t.jsonl:6: not a JSON object",
            "t.jsonl:7: missing \"query\"",
            "t.jsonl:8: \"positive\"[1] must be a string",
            "t.jsonl:10: \"query\" is empty",
            "t.jsonl:11: not valid UTF-8",
        ])
        XCTAssertThrowsError(try GRLDataset.parse(jsonl: bytes, file: "t.jsonl", name: "t", instruction: "I", malformed: .fail)) {
            XCTAssertEqual($0 as? ULLMEError, .format("t.jsonl:2: invalid JSON"))
        }
        // From a file: the path is in the message; a file with no valid line is an error.
        let dir = try makeTempDir("grl")
        try writeFile(dir + "/a.jsonl", "{\"query\": \"q\", \"positive\": [\"p\"]}\n")
        XCTAssertThrowsError(try GRLDataset.load(path: dir + "/a.jsonl", instruction: "I")) {
            XCTAssertEqual($0 as? ULLMEError, .format("\(dir)/a.jsonl:1: missing \"negative\""))
        }
        XCTAssertThrowsError(try GRLDataset.load(path: dir + "/a.jsonl", instruction: "I", malformed: .skip)) {
            XCTAssertEqual($0 as? ULLMEError, .format("\(dir)/a.jsonl: no valid examples (1 malformed lines skipped)"))
        }
        XCTAssertThrowsError(try GRLDataset.load(path: dir + "/missing.jsonl", instruction: "I"))
        XCTAssertEqual(GRLDataset.defaultName("data/grl/wordnet/train.jsonl"), "wordnet/train")
    }

    func testCommittedTinyWordNetSetLoads() throws {
        let ds = try GRLDataset.load(path: packageRoot + "/data/grl/wordnet-tiny/train.jsonl", instruction: "Define the word as used.")
        XCTAssertEqual(ds.count, 241)
        XCTAssertTrue(ds.skipped.isEmpty)
        XCTAssertTrue(ds.examples.allSatisfy { !$0.positives.isEmpty && !$0.negatives.isEmpty })
    }

    // MARK: sampler

    func makeData(_ sizes: [Int], pos: Int = 3, neg: Int = 5) -> [GRLDataset] {
        sizes.enumerated().map { d, n in
            GRLDataset(name: "d\(d)", instruction: "inst\(d)", examples: (0..<n).map { i in
                GRLExample(query: "q\(d).\(i)", positives: (0..<pos).map { "p\(d).\(i).\($0)" },
                           negatives: (0..<neg).map { "n\(d).\(i).\($0)" })
            })
        }
    }

    func testSamplerDeterministicAndEpochsDiffer() throws {
        let data = makeData([37, 20, 9])
        let a = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 7)
        let b = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 7)
        XCTAssertEqual(a.batches(epoch: 0), b.batches(epoch: 0))
        XCTAssertEqual(a.batches(epoch: 3), b.batches(epoch: 3))
        XCTAssertEqual(a.batch(epoch: 2, step: 5), a.batches(epoch: 2)[5])
        XCTAssertNotEqual(a.batchIndices(epoch: 0), a.batchIndices(epoch: 1))
        let c = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 8)
        XCTAssertNotEqual(a.batchIndices(epoch: 0), c.batchIndices(epoch: 0))
        // Same example, different epochs: its sampled positives/negatives change somewhere.
        func sampled(_ e: Int) -> [Int: [String]] {
            Dictionary(uniqueKeysWithValues: a.batches(epoch: e).flatMap(\.examples).map { ($0.index, $0.positives + $0.negatives) })
        }
        let s0 = sampled(0), s1 = sampled(1)
        XCTAssertTrue(s0.keys.contains { s1[$0] != nil && s0[$0] != s1[$0] })
        // Unshuffled: natural order.
        let u = try GRLBatchSampler(datasets: makeData([8]), batchSize: 4, seed: 1, shuffle: false)
        XCTAssertEqual(u.batchIndices(epoch: 5), [[0, 1, 2, 3], [4, 5, 6, 7]])
    }

    func testBatchesComeFromOneDatasetAndLeftoversMixLikeTheReference() throws {
        let data = makeData([37, 20, 9])
        // drop (drop_last=True): 9 + 5 + 2 = 16 full batches, every one from one data set.
        let drop = try GRLBatchSampler(datasets: data, batchSize: 4, seed: 3, leftovers: .drop)
        XCTAssertEqual(drop.stepsPerEpoch, 16)
        for e in 0..<3 {
            let bs = drop.batches(epoch: e)
            XCTAssertEqual(bs.count, 16)
            for b in bs {
                XCTAssertEqual(b.count, 4)
                let d = try XCTUnwrap(b.dataset)
                XCTAssertTrue(b.examples.allSatisfy { $0.dataset == d && $0.instruction == "inst\(d)" })
                XCTAssertTrue(b.indices.allSatisfy { $0 >= drop.offsets[d] && $0 < drop.offsets[d] + data[d].count })
            }
            let all = bs.flatMap(\.indices)
            XCTAssertEqual(Set(all).count, all.count, "an example twice in one epoch")
        }
        // mix (the reference's drop_last=False): the leftovers 1 + 0 + 1 = 2 < 4 give no extra batch here;
        // with B = 8: full 4 + 2 + 1 = 7, leftovers 5 + 4 + 1 = 10 -> one mixed batch, 2 dropped.
        let mix = try GRLBatchSampler(datasets: data, batchSize: 8, seed: 3)
        XCTAssertEqual(mix.stepsPerEpoch, 8)
        let bs = mix.batches(epoch: 0)
        XCTAssertEqual(bs.count, 8)
        XCTAssertEqual(bs.filter { $0.dataset == nil }.count, 1)
        let all = bs.flatMap(\.indices)
        XCTAssertEqual(Set(all).count, 64)
        let mixed = bs.first { $0.dataset == nil }!
        XCTAssertTrue(mixed.examples.allSatisfy { $0.instruction == "inst\($0.dataset)" })
        // Batches larger than the data: a clear error.
        XCTAssertThrowsError(try GRLBatchSampler(datasets: makeData([3]), batchSize: 4, seed: 1))
    }

    func testClustersKeepBatchesTogether() throws {
        var ds = makeData([12])[0]
        for i in ds.examples.indices { ds.examples[i].cluster = .int(i % 3) }  // clusters of 4
        let s = try GRLBatchSampler(datasets: [ds], batchSize: 4, seed: 9)
        for b in s.batches(epoch: 1) {
            XCTAssertEqual(Set(b.indices.map { $0 % 3 }).count, 1, "a batch spans clusters: \(b.indices)")
        }
    }

    func testLabelsUniqueAndCounts() throws {
        let data = [GRLDataset(name: "a", instruction: "A", examples: [
            GRLExample(query: "x", positives: ["p1", "p2", "p3"], negatives: ["n1", "n2", "n3", "n4"]),
            GRLExample(query: "y", positives: ["p1"], negatives: ["n1", "n2"]),
            GRLExample(query: "z", positives: ["p1", "p2"], negatives: ["n1", "n2", "n3"]),
            GRLExample(query: "w", positives: ["p1", "p2"], negatives: ["n1", "n2", "n3"]),
        ]), GRLDataset(name: "b", instruction: "B", examples: makeData([8], pos: 4, neg: 6)[0].examples)]
        // Reference: P = batch minimum of min(count, pos_per_sample), no replacement.
        let ref = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 1)
        for e in 0..<4 {
            let bs = ref.batches(epoch: e)
            let labels = bs.flatMap(\.labels)
            XCTAssertEqual(Set(labels).count, 12)
            XCTAssertEqual(Set(labels), Set(0..<12))
            for b in bs {
                XCTAssertEqual(b.labels, b.indices)
                let expectP = b.dataset == 0 ? 1 : 2, expectN = b.dataset == 0 ? 2 : 3
                XCTAssertEqual(b.positivesPerExample, expectP)
                XCTAssertEqual(b.negativesPerExample, expectN)
                for x in b.examples {
                    XCTAssertEqual(x.positives.count, expectP)
                    XCTAssertEqual(x.negatives.count, expectN)
                    XCTAssertEqual(Set(x.positives).count, expectP, "no replacement")
                    XCTAssertEqual(Set(x.negatives).count, expectN, "no replacement")
                    let src = data[x.dataset].examples[x.index - ref.offsets[x.dataset]]
                    XCTAssertEqual(x.query, src.query)
                    XCTAssertTrue(Set(x.positives).isSubset(of: src.positives))
                    XCTAssertTrue(Set(x.negatives).isSubset(of: src.negatives))
                }
            }
        }
        // With replacement: always the requested counts.
        let rep = try GRLBatchSampler(datasets: data, batchSize: 4, posPerSample: 2, negPerSample: 3, seed: 1,
                                      shortfall: .withReplacement)
        for b in rep.batches(epoch: 0) {
            XCTAssertEqual(b.positivesPerExample, 2)
            XCTAssertEqual(b.negativesPerExample, 3)
            for x in b.examples {
                XCTAssertEqual(x.positives.count, 2)
                XCTAssertEqual(x.negatives.count, 3)
                if x.query == "y" { XCTAssertEqual(x.positives, ["p1", "p1"]) }
            }
        }
    }

    // MARK: formats

    func testTextFormats() throws {
        XCTAssertEqual(GRLTextFormat.query(instruction: "Find it.", text: "cat"), "Find it.\ncat")
        XCTAssertEqual(GRLTextFormat.query(instruction: "", text: "cat"), "\ncat")
        XCTAssertEqual(GRLTextFormat.candidate(instruction: "Find it.", text: "doc"), "Find it.\nCandidate:\ndoc")
        XCTAssertEqual(GRLTextFormat.generationExample(alignmentInstruction: GRLTextFormat.passageToQueryInstruction,
                                                       query: "q?", passage: "a passage"),
                       "Please write a query that can be used to retrieve above passage.. Query:\nq?\n\na passage\n")
        let x = GRLBatchExample(query: "q", positives: ["p"], negatives: ["n1", "n2"], instruction: "I",
                                alignmentInstruction: "A", dataset: 0, index: 3, label: 3)
        XCTAssertEqual(x.contrastiveTexts, ["I\nq", "I\np", "I\nn1", "I\nn2"])
        XCTAssertEqual(x.generationTexts, ["A. Query:\nq\n\np\n", "A. Query:\nq\n\nn1\n", "A. Query:\nq\n\nn2\n"])
    }
}
