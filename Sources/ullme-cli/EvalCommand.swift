// `ullme eval`: retrieval (BEIR layout) and STS evaluation of an embedding model. See data/README.md
// for the data layout and the builders.
import Glibc
import ULLMESwift

let defaultRetrievalInstruction = "Given a one-line summary of a Linux manual page, retrieve the page's description"
let defaultSTSInstruction = "Retrieve semantically similar text."

/// The options only `eval` has (main.swift's command table adds the model and progress options).
let evalOptions: [Option] = [
    Option(name: "--task", metavar: "NAME", help: """
        retrieval: DIR holds queries.jsonl, corpus.jsonl, qrels.tsv (BEIR layout), e.g. data/eval/manpages
        sts: DIR holds pairs.tsv (sentence1, sentence2, score), e.g. data/eval/lee
        """),
    Option(name: "--data", metavar: "DIR", help: "the evaluation set's directory"),
    Option(name: "--instruction", metavar: "TEXT", help: """
        retrieval: the query instruction, default
          "\(defaultRetrievalInstruction)"
        sts: the instruction of both texts, default "\(defaultSTSInstruction)"
        (--instruction "" embeds the texts alone)
        """),
    Option(name: "--corpus-instruction", metavar: "TEXT", help: """
        retrieval: instruction of the documents, embedded as candidates
        ("{T}\\nCandidate:\\n{title} {text}"); default none (the document text alone)
        """),
    Option(name: "--limit-queries", metavar: "N", help: "retrieval: evaluate the first N judged queries (all documents are kept)"),
    Option(name: "-k", metavar: "N", help: "retrieval: search depth per query (default 1000; MAP is computed over it)"),
    Option(name: "--output", metavar: "FILE", help: "also write the results as one JSON object (whatever the file's name)"),
]

let evalDetails = """
Metrics (trec_eval / BEIR definitions): nDCG@10 (gain = grade), MRR@10, Recall@1/10/100, MAP; exact
search by cosine of L2-normalised embeddings. STS: Spearman and Pearson of the cosine with the gold scores.
"""

struct EvalTimer {
    let start = ProgressBar.now()
    var seconds: Double { ProgressBar.now() - start }
}

func fmt(_ x: Double, _ digits: Int = 4) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let v = (x * p).rounded() / p
    var s = "\(v)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    }
    return s
}

func utcNow() -> String {
    var t = time(nil)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    var buf = [CChar](repeating: 0, count: 32)
    _ = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%SZ", &tmv)
    return String(cString: buf)
}

func runEval(_ args: Arguments) throws {
    guard let task = args.value("--task") else { throw CLIError(message: "eval needs --task retrieval|sts (ullme eval --help)") }
    guard let data = args.value("--data") else { throw CLIError(message: "eval needs --data DIR (ullme eval --help)") }
    guard task == "retrieval" || task == "sts" else { throw CLIError(message: "--task must be retrieval or sts (got \"\(task)\")") }
    var options = try embedOptions(args)
    let instruction = args.value("--instruction") ?? (task == "retrieval" ? defaultRetrievalInstruction : defaultSTSInstruction)
    options.instruction = Array(instruction.utf8)
    options.normalize = true
    let (modelPath, adapter) = try modelSource(args)
    var fields: [(String, String)] = [
        ("task", jsonString(task)), ("data", jsonString(data)),
        ("model", jsonString(modelPath)),
        ("adapter", adapter.map { jsonString($0) } ?? "null"), ("date", jsonString(utcNow())),
        ("pooling", jsonString(args.value("--pooling") ?? "mean")),
        ("attention", jsonString(args.value("--attention") ?? "bidirectional")),
        ("max_length", "\(options.maxLength ?? 512)"), ("instruction", jsonString(options.instruction)),
    ]
    var table: [(String, String)] = []
    let total = EvalTimer()
    // The data first: a wrong --data fails before the model loads.
    let retrievalSet = task == "retrieval" ? try RetrievalDataset.load(directory: data) : nil
    let stsSet = task == "sts" ? try STSDataset.load(directory: data) : nil
    let model = try loadModel(args)
    let C = options.dimensions(for: model)
    fields.append(("precision", jsonString(model.precision.rawValue)))
    fields.append(("precision_path", jsonString(model.precisionPath)))

    if task == "retrieval" {
        var ds = retrievalSet!
        let limit = try args.int("--limit-queries", 0)
        if limit > 0 && limit < ds.queries.count { ds.queries = Array(ds.queries.prefix(limit)) }
        let depth = try args.int("-k", 1000)
        guard depth >= 1 else { throw CLIError(message: "-k must be >= 1") }
        var docOptions = options
        docOptions.isQuery = false
        docOptions.instruction = Array((args.value("--corpus-instruction") ?? "").utf8)
        fputs("ullme eval: \(ds.queries.count) queries, \(ds.corpus.count) documents (\(data))\n", stderr)
        let t = EvalTimer()
        let docEmb = try embedWithProgress(model, ds.corpus.map { Array(RetrievalDataset.documentText($0).utf8) }, docOptions, args, label: "corpus ")
        let queryEmb = try embedWithProgress(model, ds.queries.map { Array($0.text.utf8) }, options, args, label: "queries")
        let embedSeconds = t.seconds
        // Equal scores at the cut-off are resolved as trec_eval ranks them: larger doc id first.
        let byIdDesc = ds.corpus.indices.sorted { ds.corpus[$1].id.utf8.lexicographicallyPrecedes(ds.corpus[$0].id.utf8) }
        var tieRank = [Int](repeating: 0, count: ds.corpus.count)
        for (r, i) in byIdDesc.enumerated() { tieRank[i] = r }
        let top = ExactSearch.topK(queries: queryEmb, docs: docEmb, dim: C, k: depth, tieRank: tieRank)
        var run: Run = [:]
        for (qi, q) in ds.queries.enumerated() {
            run[q.id] = top[qi].map { ScoredDoc(ds.corpus[$0.index].id, Double($0.score)) }
        }
        let metrics = RetrievalMetrics.evaluate(run: run, qrels: ds.qrels)
        fields += [("corpus_instruction", jsonString(docOptions.instruction)), ("queries", "\(ds.queries.count)"),
                   ("documents", "\(ds.corpus.count)"), ("depth", "\(min(depth, ds.corpus.count))"),
                   ("embed_seconds", fmt(embedSeconds, 2))]
        fields.append(("metrics", "{" + RetrievalMetrics.names.map { "\"\($0)\": \(metrics[$0] ?? 0)" }.joined(separator: ", ") + "}"))
        table = RetrievalMetrics.names.map { ($0, fmt(metrics[$0] ?? 0)) }
    } else {
        let ds = stsSet!
        // Embed each distinct text once (the Lee pairs reuse 50 documents).
        var index: [String: Int] = [:]
        var texts: [[UInt8]] = []
        for (a, b, _) in ds.pairs {
            for s in [a, b] where index[s] == nil { index[s] = texts.count; texts.append(Array(s.utf8)) }
        }
        fputs("ullme eval: \(ds.pairs.count) pairs, \(texts.count) distinct texts (\(data))\n", stderr)
        let t = EvalTimer()
        let emb = try embedWithProgress(model, texts, options, args, label: "texts  ")
        let embedSeconds = t.seconds
        var cos: [Double] = [], gold: [Double] = []
        for (a, b, s) in ds.pairs {
            let i = index[a]! * C, j = index[b]! * C
            var dot: Float = 0
            for c in 0..<C { dot += emb[i + c] * emb[j + c] }
            cos.append(Double(dot)); gold.append(s)
        }
        let rho = spearman(cos, gold), r = pearson(cos, gold)
        fields += [("pairs", "\(ds.pairs.count)"), ("texts", "\(texts.count)"), ("embed_seconds", fmt(embedSeconds, 2)),
                   ("metrics", "{\"spearman\": \(rho), \"pearson\": \(r)}")]
        table = [("spearman", fmt(rho)), ("pearson", fmt(r))]
    }
    fields.append(("total_seconds", fmt(total.seconds, 2)))

    let attention = args.value("--attention") ?? "bidirectional", pooling = args.value("--pooling") ?? "mean"
    print("\(task) on \(data) — \(modelPath.split(separator: "/").last.map(String.init) ?? modelPath), \(attention), \(pooling) pooling")
    let w = table.map(\.0.count).max() ?? 0
    print(String(repeating: "-", count: w + 11))
    for (k, v) in table { print(k + String(repeating: " ", count: w - k.count) + "  " + String(repeating: " ", count: max(0, 9 - v.count)) + v) }
    print(String(repeating: "-", count: w + 11))
    if let out = args.value("--output") {
        let json = "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
        guard let f = fopen(out, "w") else { throw CLIError(message: "\(out): \(String(cString: strerror(errno)))") }
        defer { fclose(f) }
        fputs(json, f)
        fputs("ullme eval: results written to \(out)\n", stderr)
    }
}
