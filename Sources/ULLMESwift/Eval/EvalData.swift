import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A retrieval set in BEIR's layout: queries.jsonl {"_id","text"}, corpus.jsonl {"_id","title","text"},
/// qrels.tsv "query-id<TAB>corpus-id<TAB>score" (header line). See data/README.md.
public struct RetrievalDataset: Sendable {
    public struct Query: Sendable { public var id: String; public var text: String }
    public struct Document: Sendable { public var id: String; public var title: String; public var text: String }
    public var queries: [Query]
    public var corpus: [Document]
    public var qrels: Qrels

    public init(queries: [Query], corpus: [Document], qrels: Qrels) {
        self.queries = queries; self.corpus = corpus; self.qrels = qrels
    }

    /// Loads a directory; queries without a relevant document in the qrels are dropped.
    public static func load(directory dir: String) throws -> RetrievalDataset {
        let qrels = try Qrels.parse(readEvalFile(dir + "/qrels.tsv"), what: dir + "/qrels.tsv")
        var queries: [Query] = []
        for obj in try jsonLines(dir + "/queries.jsonl") {
            guard let id = obj["_id"]?.string ?? obj["_id"]?.int.map(String.init), let text = obj["text"]?.string else {
                throw ULLMEError.format("\(dir)/queries.jsonl: each line needs \"_id\" and \"text\"")
            }
            if qrels.relevantCount(id) > 0 { queries.append(Query(id: id, text: text)) }
        }
        var corpus: [Document] = []
        for obj in try jsonLines(dir + "/corpus.jsonl") {
            guard let id = obj["_id"]?.string ?? obj["_id"]?.int.map(String.init), let text = obj["text"]?.string else {
                throw ULLMEError.format("\(dir)/corpus.jsonl: each line needs \"_id\" and \"text\"")
            }
            corpus.append(Document(id: id, title: obj["title"]?.string ?? "", text: text))
        }
        guard !queries.isEmpty, !corpus.isEmpty else {
            throw ULLMEError.format("\(dir): no judged queries or no documents")
        }
        return RetrievalDataset(queries: queries, corpus: corpus, qrels: qrels)
    }

    /// The text a document is embedded as: "title text" (BEIR's convention), or the text alone.
    public static func documentText(_ d: Document) -> String {
        d.title.isEmpty ? d.text : d.title + " " + d.text
    }
}

/// An STS set: pairs.tsv "sentence1<TAB>sentence2<TAB>score" with a header line.
public struct STSDataset: Sendable {
    public var pairs: [(String, String, Double)]
    public init(pairs: [(String, String, Double)]) { self.pairs = pairs }

    public static func load(directory dir: String) throws -> STSDataset {
        let path = dir + "/pairs.tsv"
        var pairs: [(String, String, Double)] = []
        for (n, raw) in try readEvalFile(path).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).enumerated() {
            var line = String(decoding: raw, as: UTF8.self)
            if line.hasSuffix("\r") { line.removeLast() }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            if n == 0 && f.first == "sentence1" { continue }
            guard f.count == 3, let s = Double(f[2]) else {
                throw ULLMEError.format("\(path): line \(n + 1): expected sentence1<TAB>sentence2<TAB>score")
            }
            pairs.append((f[0], f[1], s))
        }
        guard !pairs.isEmpty else { throw ULLMEError.format("\(path): no pairs") }
        return STSDataset(pairs: pairs)
    }
}

/// The bytes of one file of an evaluation set; a missing directory or file is an `.io` error naming it and
/// the builders (not a Foundation error's description).
func readEvalFile(_ path: String) throws -> [UInt8] {
    let dir = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    var st = stat()
    if stat(dir, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR {
        throw ULLMEError.io("\(dir): no such directory; build the evaluation sets with the scripts in data/README.md")
    }
    do {
        let file = try MappedFile(path: path)
        return withExtendedLifetime(file) { Array(file.bytes) }   // copied before the file is unmapped
    }
    catch ULLMEError.io(let m) { throw ULLMEError.io("\(m); see data/README.md for the layout and the builders") }
}

func jsonLines(_ path: String) throws -> [JSONValue] {
    try readEvalFile(path).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).enumerated().compactMap { n, line in
        if line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { return nil }
        return try JSONValue.parse(line, what: "\(path) line \(n + 1)")
    }
}
