/// Relevance judgements: query id -> document id -> graded relevance (BEIR / trec_eval qrels).
/// A document is relevant when its grade is >= 1 (trec_eval's default relevance level).
public struct Qrels: Sendable, Equatable {
    public var judgements: [String: [String: Int]]
    public init(_ judgements: [String: [String: Int]] = [:]) { self.judgements = judgements }

    /// Number of relevant documents (grade >= 1) of a query.
    public func relevantCount(_ query: String) -> Int {
        judgements[query]?.values.filter { $0 >= 1 }.count ?? 0
    }

    /// Parses BEIR's qrels.tsv ("query-id<TAB>corpus-id<TAB>score", an optional header line) or a
    /// TREC qrels file ("qid 0 docid rel", whitespace-separated). A score such as "1.0" is accepted.
    public static func parse(_ bytes: [UInt8], what: String) throws -> Qrels {
        var out: [String: [String: Int]] = [:]
        for (n, raw) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).enumerated() {
            var line = String(decoding: raw, as: UTF8.self)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty { continue }
            let tabbed = line.contains("\t")
            let f = tabbed ? line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                           : line.split(whereSeparator: { $0 == " " }).map(String.init)
            if n == 0 && tabbed && f.first == "query-id" { continue }
            let (q, d, s): (String, String, String)
            if f.count == 3 { (q, d, s) = (f[0], f[1], f[2]) }
            else if f.count == 4 { (q, d, s) = (f[0], f[2], f[3]) }
            else { throw ULLMEError.format("\(what): line \(n + 1): expected 3 (BEIR) or 4 (TREC) fields, got \(f.count)") }
            guard let v = Double(s.filter { $0 != " " && $0 != "\r" }), v.isFinite, v == v.rounded() else {
                throw ULLMEError.format("\(what): line \(n + 1): relevance \"\(s)\" is not an integer")
            }
            out[q, default: [:]][d] = Int(v)
        }
        return Qrels(out)
    }
}
