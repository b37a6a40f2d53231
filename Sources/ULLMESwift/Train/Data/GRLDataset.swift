import FoundationEssentials

// One GRL training data set: a JSONL file of examples plus the data set's instruction.
//
// Line format (docs/method.md §3, the reference's columns):
//   {"query": str, "positive": [str, ...], "negative": [str, ...]}
// with at least one positive and one negative (the reference asserts both), every text non-empty.
// Optional: "cluster" (an integer or a string): the reference's ClusteringDataSampler keeps an
// example's batch neighbours within its cluster where it can (see GRLBatchSampler). Other keys
// (e.g. the WordNet builder's "id") are ignored. Blank lines are ignored; every other line either
// becomes an example or is reported as "file:line: reason" — skipped and returned in `skipped`, or
// fatal, by `GRLMalformedLines`. Nothing is dropped silently.

/// What to do with a malformed JSONL line.
public enum GRLMalformedLines: Sendable, Equatable {
    /// Throw `ULLMEError.format("file:line: reason")` at the first malformed line.
    case fail
    /// Skip it; it is listed in `GRLDataset.skipped` (the trainer reports them).
    case skip
}

/// A malformed line: where and why.
public struct GRLLineIssue: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let reason: String
    public init(file: String, line: Int, reason: String) {
        self.file = file; self.line = line; self.reason = reason
    }
    public var description: String { "\(file):\(line): \(reason)" }
}

/// The optional "cluster" of an example. Integers sort before strings; integers numerically.
public enum GRLClusterKey: Sendable, Hashable, Comparable {
    case int(Int)
    case string(String)

    public static func < (a: GRLClusterKey, b: GRLClusterKey) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y
        case (.string(let x), .string(let y)): return x < y
        case (.int, .string): return true
        case (.string, .int): return false
        }
    }
}

/// One training example.
public struct GRLExample: Sendable, Equatable {
    public var query: String
    public var positives: [String]
    public var negatives: [String]
    public var cluster: GRLClusterKey?
    /// 1-based line in the source file (0 for examples built in memory).
    public var line: Int

    public init(query: String, positives: [String], negatives: [String], cluster: GRLClusterKey? = nil, line: Int = 0) {
        self.query = query; self.positives = positives; self.negatives = negatives
        self.cluster = cluster; self.line = line
    }
}

/// A data set: its name, its instruction (the `{instruction}` of the text formats), the alignment
/// instruction of its generation examples, and its examples.
public struct GRLDataset: Sendable {
    public var name: String
    public var instruction: String
    public var alignmentInstruction: String
    public var examples: [GRLExample]
    /// Malformed lines that were skipped (always empty with `.fail`).
    public var skipped: [GRLLineIssue]
    /// The file the examples came from ("" for an in-memory data set).
    public var source: String

    public var count: Int { examples.count }

    public init(name: String, instruction: String,
                alignmentInstruction: String = GRLTextFormat.passageToQueryInstruction,
                examples: [GRLExample], skipped: [GRLLineIssue] = [], source: String = "") {
        self.name = name; self.instruction = instruction; self.alignmentInstruction = alignmentInstruction
        self.examples = examples; self.skipped = skipped; self.source = source
    }

    /// Reads a JSONL file. Throws `.io` if it cannot be read, `.format("file:line: reason")` for the first
    /// malformed line under `.fail`, and `.format` if no example is left.
    public static func load(path: String, name: String? = nil, instruction: String,
                            alignmentInstruction: String = GRLTextFormat.passageToQueryInstruction,
                            malformed: GRLMalformedLines = .fail) throws -> GRLDataset {
        let file = try MappedFile(path: path)
        return try parse(jsonl: file.bytes, file: path, name: name ?? defaultName(path), instruction: instruction,
                         alignmentInstruction: alignmentInstruction, malformed: malformed)
    }

    /// Parses JSONL bytes; `file` names the source in messages.
    public static func parse(jsonl bytes: some BidirectionalCollection<UInt8>, file: String, name: String, instruction: String,
                             alignmentInstruction: String = GRLTextFormat.passageToQueryInstruction,
                             malformed: GRLMalformedLines = .fail) throws -> GRLDataset {
        let bytes = Array(bytes)
        let decoder = JSONDecoder()  // one per file: creating one per line is slow
        var examples: [GRLExample] = []
        var skipped: [GRLLineIssue] = []
        var lineNo = 0
        var start = bytes.startIndex
        while start != bytes.endIndex {
            lineNo += 1
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.endIndex
            var line = bytes[start..<end]
            start = end == bytes.endIndex ? end : bytes.index(after: end)
            if line.last == 0x0D { line = line.dropLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            switch parseLine(line, decoder: decoder) {
            case .success(var ex):
                ex.line = lineNo
                examples.append(ex)
            case .failure(let reason):
                let issue = GRLLineIssue(file: file, line: lineNo, reason: reason.message)
                if malformed == .fail { throw ULLMEError.format(issue.description) }
                skipped.append(issue)
            }
        }
        if examples.isEmpty {
            let why = skipped.isEmpty ? "no examples" : "no valid examples (\(skipped.count) malformed lines skipped)"
            throw ULLMEError.format("\(file): \(why)")
        }
        return GRLDataset(name: name, instruction: instruction, alignmentInstruction: alignmentInstruction,
                          examples: examples, skipped: skipped, source: file)
    }

    /// "data/grl/wordnet/train.jsonl" -> "wordnet/train".
    static func defaultName(_ path: String) -> String {
        var parts = path.split(separator: "/").map(String.init)
        if var last = parts.popLast() {
            if last.hasSuffix(".jsonl") { last.removeLast(6) }
            return (parts.last.map { $0 + "/" } ?? "") + last
        }
        return path
    }

    struct LineError: Error { let message: String }

    /// The fast path: a well-formed line decodes straight into this; anything else goes through the
    /// generic JSONValue path below, which names the problem.
    private struct Line: Decodable {
        enum Cluster: Decodable {
            case int(Int), string(String)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .string(try c.decode(String.self)) }
            }
        }
        let query: String
        let positive: [String]
        let negative: [String]
        let cluster: Cluster?
    }

    static func parseLine(_ line: some Collection<UInt8>, decoder lineDecoder: JSONDecoder = JSONDecoder()) -> Result<GRLExample, LineError> {
        guard String(validating: line, as: UTF8.self) != nil else { return .failure(LineError(message: "not valid UTF-8")) }
        if let l = try? lineDecoder.decode(Line.self, from: Data(line)), !l.query.isEmpty,
           !l.positive.isEmpty, !l.negative.isEmpty,
           !l.positive.contains(where: \.isEmpty), !l.negative.contains(where: \.isEmpty) {
            let cluster: GRLClusterKey? = l.cluster.map { switch $0 { case .int(let i): .int(i); case .string(let s): .string(s) } }
            return .success(GRLExample(query: l.query, positives: l.positive, negatives: l.negative, cluster: cluster))
        }
        guard let value = try? JSONValue.parse(line, what: "line") else {
            return .failure(LineError(message: "invalid JSON"))
        }
        guard value.object != nil else { return .failure(LineError(message: "not a JSON object")) }
        guard let q = value["query"] else { return .failure(LineError(message: "missing \"query\"")) }
        guard let query = q.string else { return .failure(LineError(message: "\"query\" must be a string")) }
        if query.isEmpty { return .failure(LineError(message: "\"query\" is empty")) }
        func texts(_ key: String) -> Result<[String], LineError> {
            guard let v = value[key] else { return .failure(LineError(message: "missing \"\(key)\"")) }
            guard let a = v.array else { return .failure(LineError(message: "\"\(key)\" must be a list of strings")) }
            if a.isEmpty { return .failure(LineError(message: "\"\(key)\" is empty (at least one is needed)")) }
            var out: [String] = []
            out.reserveCapacity(a.count)
            for (i, e) in a.enumerated() {
                guard let s = e.string else { return .failure(LineError(message: "\"\(key)\"[\(i)] must be a string")) }
                if s.isEmpty { return .failure(LineError(message: "\"\(key)\"[\(i)] is empty")) }
                out.append(s)
            }
            return .success(out)
        }
        let positives: [String], negatives: [String]
        switch texts("positive") { case .success(let p): positives = p; case .failure(let e): return .failure(e) }
        switch texts("negative") { case .success(let n): negatives = n; case .failure(let e): return .failure(e) }
        var cluster: GRLClusterKey? = nil
        if let c = value["cluster"], !c.isNull {
            if let i = c.int { cluster = .int(i) }
            else if let s = c.string { cluster = .string(s) }
            else { return .failure(LineError(message: "\"cluster\" must be an integer or a string")) }
        }
        return .success(GRLExample(query: query, positives: positives, negatives: negatives, cluster: cluster))
    }
}
