import Glibc

/// Retrieval metrics with trec_eval's definitions (as pytrec_eval and BEIR compute them):
///  - documents are ranked by score descending, ties by document id descending (trec_eval);
///  - relevant = grade >= 1; `ndcg@10` uses gain = grade and discount log2(rank + 1) (trec_eval's
///    ndcg_cut, ideal ranking from all judged grades of the query);
///  - `mrr@10` = 1 / rank of the first relevant document in the top 10 (0 if none);
///  - `recall@k` = relevant documents in the top k / all relevant documents of the query;
///  - `map` = mean over all relevant documents of the precision at their rank (0 for those not
///    retrieved), over the whole run (trec_eval's map; with a top-k run it is MAP@k).
/// Queries are averaged over the queries that have both a run and judgements; a judged query with no
/// relevant document scores 0 everywhere (trec_eval / pytrec_eval, so BEIR's averages).
public struct RetrievalMetrics: Sendable, Equatable {
    public static let names = ["ndcg@10", "mrr@10", "recall@1", "recall@10", "recall@100", "map"]

    /// Metrics of one query (keys: `names`); all 0 when the query has no relevant document.
    public static func query(_ docs: [ScoredDoc], judgements: [String: Int]) -> [String: Double] {
        let numRel = judgements.values.filter { $0 >= 1 }.count
        guard numRel > 0 else { return Dictionary(uniqueKeysWithValues: names.map { ($0, 0.0) }) }
        let ranked = trecOrder(docs)
        var dcg = 0.0, rr = 0.0, sumPrec = 0.0
        var relSoFar = 0
        var relAt: [Int: Int] = [:]  // cutoff -> relevant retrieved within it
        for (i, d) in ranked.enumerated() {
            let g = judgements[d.id] ?? 0
            if g >= 1 {
                relSoFar += 1
                sumPrec += Double(relSoFar) / Double(i + 1)
                if i < 10 {
                    dcg += Double(g) / log2(Double(i + 2))
                    if rr == 0 { rr = 1.0 / Double(i + 1) }
                }
            }
            if i + 1 == 1 || i + 1 == 10 || i + 1 == 100 { relAt[i + 1] = relSoFar }
        }
        func recall(_ k: Int) -> Double { Double(relAt[k] ?? relSoFar) / Double(numRel) }
        let ideal = judgements.values.filter { $0 >= 1 }.sorted(by: >)
        var idcg = 0.0
        for (i, g) in ideal.prefix(10).enumerated() { idcg += Double(g) / log2(Double(i + 2)) }
        return ["ndcg@10": idcg > 0 ? dcg / idcg : 0, "mrr@10": rr, "recall@1": recall(1),
                "recall@10": recall(10), "recall@100": recall(100), "map": sumPrec / Double(numRel)]
    }

    /// Per-query metrics of a run (queries with judgements and a run; a judged query missing from the
    /// run is skipped, as trec_eval does without -c).
    public static func perQuery(run: Run, qrels: Qrels) -> [String: [String: Double]] {
        var out: [String: [String: Double]] = [:]
        for (q, docs) in run {
            guard let j = qrels.judgements[q] else { continue }
            out[q] = query(docs, judgements: j)
        }
        return out
    }

    /// Means over the per-query metrics (an empty run gives zeros).
    public static func mean(_ perQuery: [String: [String: Double]]) -> [String: Double] {
        var out: [String: Double] = [:]
        for name in names {
            // Summed in query-id order so the result does not depend on dictionary order.
            let total = perQuery.keys.sorted().reduce(0.0) { $0 + (perQuery[$1]?[name] ?? 0) }
            out[name] = perQuery.isEmpty ? 0 : total / Double(perQuery.count)
        }
        return out
    }

    public static func evaluate(run: Run, qrels: Qrels) -> [String: Double] {
        mean(perQuery(run: run, qrels: qrels))
    }
}
