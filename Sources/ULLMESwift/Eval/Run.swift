/// A retrieval run: for each query, scored documents (the order given does not matter: metrics rank
/// by score as trec_eval does).
public struct ScoredDoc: Sendable, Equatable {
    public var id: String
    public var score: Double
    public init(_ id: String, _ score: Double) { self.id = id; self.score = score }
}

public typealias Run = [String: [ScoredDoc]]

/// trec_eval's ranking: score descending, ties broken by document id descending (byte order, strcmp).
public func trecOrder(_ docs: [ScoredDoc]) -> [ScoredDoc] {
    docs.sorted { a, b in
        if a.score != b.score { return a.score > b.score }
        return b.id.utf8.lexicographicallyPrecedes(a.id.utf8)
    }
}

/// Parses a TREC run file: "qid Q0 docid rank score tag" per line (rank and tag are ignored).
public func parseTrecRun(_ bytes: [UInt8], what: String) throws -> Run {
    var run: Run = [:]
    for (n, raw) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).enumerated() {
        let f = String(decoding: raw, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        if f.isEmpty { continue }
        guard f.count >= 5, let s = Double(f[4]) else {
            throw ULLMEError.format("\(what): line \(n + 1): expected \"qid Q0 docid rank score [tag]\"")
        }
        run[String(f[0]), default: []].append(ScoredDoc(String(f[2]), s))
    }
    return run
}
