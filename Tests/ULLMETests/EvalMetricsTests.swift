import FoundationEssentials
import XCTest
@testable import ULLMESwift

/// Retrieval and STS metrics against pytrec_eval (trec_eval's code) and scipy, on the committed run
/// file + qrels made by scripts/fixtures/make_eval_metric_fixtures.py (ties, graded relevance, judged queries
/// with no relevant document, relevant documents never retrieved, an unjudged query).
final class EvalMetricsTests: XCTestCase {
    static let script = "python3 scripts/fixtures/make_eval_metric_fixtures.py (pip install pytrec-eval-terrier scipy)"

    func fixture(_ name: String) throws -> [UInt8] {
        let path = packageRoot + "/Tests/fixtures/eval/" + name
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MissingFile(description: "missing fixture \(path): run \(Self.script)")
        }
        return Array(data)
    }

    func testRetrievalMetricsMatchPytrecEval() throws {
        let run = try parseTrecRun(fixture("run.trec"), what: "run.trec")
        let qrels = try Qrels.parse(fixture("qrels.tsv"), what: "qrels.tsv")
        let expected = try JSONValue.parse(fixture("expected.json"), what: "expected.json")
        let perQuery = RetrievalMetrics.perQuery(run: run, qrels: qrels)
        let expectedQueries = expected["per_query"]?.object ?? [:]
        XCTAssertEqual(Set(perQuery.keys), Set(expectedQueries.keys))
        var checked = 0
        for (q, exp) in expectedQueries {
            for name in RetrievalMetrics.names {
                let want = try XCTUnwrap(exp[name]?.double, "\(q) \(name)")
                let got = try XCTUnwrap(perQuery[q]?[name], "\(q) \(name)")
                XCTAssertEqual(got, want, accuracy: 1e-6, "\(q) \(name)")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 30 * 6)
        let mean = RetrievalMetrics.mean(perQuery)
        for name in RetrievalMetrics.names {
            let want = try XCTUnwrap(expected["mean"]?[name]?.double)
            XCTAssertEqual(mean[name] ?? .nan, want, accuracy: 1e-6, name)
        }
    }

    func testCorrelationsMatchScipy() throws {
        let sts = try XCTUnwrap(try JSONValue.parse(fixture("expected.json"), what: "expected.json")["sts"])
        let gold = (sts["gold"]?.array ?? []).compactMap(\.double), pred = (sts["pred"]?.array ?? []).compactMap(\.double)
        XCTAssertEqual(gold.count, 200)
        XCTAssertEqual(spearman(pred, gold), try XCTUnwrap(sts["spearman"]?.double), accuracy: 1e-6)
        XCTAssertEqual(pearson(pred, gold), try XCTUnwrap(sts["pearson"]?.double), accuracy: 1e-6)
        XCTAssertEqual(averageRanks([3, 1, 3, 2]), [3.5, 1, 3.5, 2])
    }

    func testTrecOrderBreaksTiesByDocIdDescending() {
        let ranked = trecOrder([ScoredDoc("a", 0.5), ScoredDoc("c", 0.5), ScoredDoc("b", 0.5), ScoredDoc("z", 0.1), ScoredDoc("B", 0.9)])
        XCTAssertEqual(ranked.map(\.id), ["B", "c", "b", "a", "z"])
    }

    func testExactSearchEqualsBruteForce() {
        var rng = SplitMix(seed: 7)
        let dim = 16, nq = 37, nd = 301
        func rows(_ n: Int) -> [Float] {
            var v = (0..<(n * dim)).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
            for r in 0..<n {
                let norm = (0..<dim).reduce(Float(0)) { $0 + v[r * dim + $1] * v[r * dim + $1] }.squareRoot()
                for c in 0..<dim { v[r * dim + c] /= norm }
            }
            return v
        }
        let q = rows(nq)
        var d = rows(nd)
        for c in 0..<dim { d[5 * dim + c] = d[9 * dim + c] }  // an exact tie: 5 before 9
        for k in [1, 10, 100, 301, 500] {
            let top = ExactSearch.topK(queries: q, docs: d, dim: dim, k: k, chunk: 8)
            XCTAssertEqual(top.count, nq)
            for i in 0..<nq {
                var all: [(Int, Float)] = []
                for j in 0..<nd {
                    var s: Float = 0
                    for c in 0..<dim { s += q[i * dim + c] * d[j * dim + c] }
                    all.append((j, s))
                }
                all.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
                let got = top[i]
                XCTAssertEqual(got.count, min(k, nd))
                for (r, g) in got.enumerated() {
                    XCTAssertEqual(g.score, all[r].1, accuracy: 1e-5)
                }
                // same set up to float rounding: compare indices where scores are not near-ties
                XCTAssertEqual(got.first?.index, all.first?.0)
                if let i5 = got.firstIndex(where: { $0.index == 5 }), let i9 = got.firstIndex(where: { $0.index == 9 }) {
                    XCTAssertLessThan(i5, i9)
                }
            }
        }
    }
}

/// A small deterministic generator for tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
