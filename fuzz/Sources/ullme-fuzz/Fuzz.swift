// libFuzzer entry point for libullme's parsers. One binary, several targets, selected by the
// environment variable ULLME_FUZZ_TARGET (fuzz/run.sh sets it):
//
//   gguf            GGUFFile(file: MappedFile(copying:)) + ModelConfig.fromGGUF, touching every tensor's bytes
//   safetensors     SafetensorsFile(file: MappedFile(copying:)), touching every tensor's bytes
//   config          JSONValue.parse + ModelConfig.fromHF (config.json)
//   tokenizer-json  JSONValue.parse + TokenizerLoader.fromTokenizerJSON, then encode/decode a fixed text
//   gguf-tokenizer  GGUFFile + TokenizerLoader.fromGGUF, then encode/decode a fixed text
//   encode-smollm2  SmolLM2's tokenizer (byte-level BPE, from the GGUF) on arbitrary bytes
//   encode-spm      llama SentencePiece vocab (ggml-vocab-llama-spm.gguf) on arbitrary bytes
//   model-gguf      a whole GGUF model: Model.load (config, tokenizer, every weight's shape and
//                   dequantisation) from a file in /dev/shm, then one short embedding
//   grl-jsonl       GRLDataset.parse (the GRL training data, JSONL) with malformed lines skipped (every
//                   line goes through the parser and every problem is described); then a batch sampler over the result and the text formats of its first
//                   batches (the tokenizer-independent half of a training step's input)
//   train-yaml      TrainConfig.parse (libyaml + the key reader + the cross-key checks) on the bytes
//                   as UTF-8: the settings a trainer would be built from
//
// Any error thrown is an accepted outcome; a trap, sanitizer report, timeout or OOM is a finding.
#if canImport(Glibc)
import Glibc
#endif
import ULLMESwift

enum Target: String {
    case gguf, safetensors, config, tokenizerJSON = "tokenizer-json", ggufTokenizer = "gguf-tokenizer"
    case encodeSmolLM2 = "encode-smollm2", encodeSPM = "encode-spm", modelGGUF = "model-gguf"
    case grlJSONL = "grl-jsonl", trainYAML = "train-yaml"
}

func env(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    let s = String(cString: p)
    return s.isEmpty ? nil : s
}

func die(_ message: String) -> Never {
    fputs("ullme-fuzz: \(message)\n", stderr)
    exit(2)
}

let home = env("HOME") ?? "/root"
let cache = env("ULLME_CACHE") ?? "\(home)/.cache/ullme"

nonisolated(unsafe) var target: Target = .gguf
nonisolated(unsafe) var fixedTokenizer: Tokenizer? = nil
/// model-gguf writes each input here (tmpfs) because models load from a path.
let modelPath = "/dev/shm/ullme-fuzz-model-\(getpid()).gguf"

/// A fixed text mixing ASCII, digits, spaces, multi-byte UTF-8 and a special-token lookalike.
let probe: [UInt8] = Array("Hello  world 12345 ▁x héllo 日本 <s></s><|im_start|>\n\t!".utf8)

func loadTokenizer(_ path: String) -> Tokenizer {
    do { return try TokenizerLoader.fromGGUF(GGUFFile(path: path).metadata) }
    catch { die("cannot load the tokenizer of \(path): \(error)") }
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    guard let name = env("ULLME_FUZZ_TARGET"), let t = Target(rawValue: name) else {
        die("set ULLME_FUZZ_TARGET to gguf, safetensors, config, tokenizer-json, gguf-tokenizer, encode-smollm2, encode-spm, model-gguf, grl-jsonl or train-yaml")
    }
    target = t
    switch t {
    case .encodeSmolLM2:
        fixedTokenizer = loadTokenizer(env("ULLME_FUZZ_SMOLLM2") ?? "\(cache)/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    case .encodeSPM:
        fixedTokenizer = loadTokenizer(env("ULLME_FUZZ_SPM") ?? "\(cache)/vocab/ggml-vocab-llama-spm.gguf")
    default: break
    }
    return 0
}

/// Reads the first and last byte of every tensor so that a range outside the (heap-copied, hence
/// ASan-guarded) file shows up as a heap-buffer-overflow.
@inline(never)
func touch(_ tensors: [TensorRecord]) -> UInt8 {
    var x: UInt8 = 0
    for t in tensors where t.bytes.count > 0 {
        x ^= t.bytes[0] ^ t.bytes[t.bytes.count - 1]
    }
    return x
}

nonisolated(unsafe) var sink: UInt64 = 0

func exercise(_ tok: Tokenizer, _ text: [UInt8]) {
    let ids = tok.encode(text, addSpecial: true)
    for id in ids where id < 0 || Int(id) >= tok.vocabSize {
        fatalError("encode produced id \(id) outside [0, \(tok.vocabSize))")
    }
    let back = tok.decode(ids, skipSpecial: false)
    _ = tok.decode(ids, skipSpecial: true)
    for id in ids.prefix(4) { _ = tok.token(id) }
    sink &+= UInt64(ids.count) &+ UInt64(back.count)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { UnsafeBufferPointer(start: $0, count: size) } ?? UnsafeBufferPointer(start: nil, count: 0)
    switch target {
    case .gguf:
        if let f = try? GGUFFile(file: MappedFile(copying: bytes, name: "fuzz.gguf")) {
            sink &+= UInt64(touch(f.tensors))
            _ = try? ModelConfig.fromGGUF(f.metadata, vocabSizeFallback: 32)
        }
    case .safetensors:
        if let f = try? SafetensorsFile(file: MappedFile(copying: bytes, name: "fuzz.safetensors")) {
            sink &+= UInt64(touch(f.tensors))
        }
    case .config:
        if let j = try? JSONValue.parse(bytes, what: "config.json") {
            _ = try? ModelConfig.fromHF(j)
        }
    case .tokenizerJSON:
        if let j = try? JSONValue.parse(bytes, what: "tokenizer.json"),
           let tok = try? TokenizerLoader.fromTokenizerJSON(j, config: nil) {
            exercise(tok, probe)
        }
    case .ggufTokenizer:
        if let f = try? GGUFFile(file: MappedFile(copying: bytes, name: "fuzz.gguf")),
           let tok = try? TokenizerLoader.fromGGUF(f.metadata) {
            exercise(tok, probe)
        }
    case .encodeSmolLM2, .encodeSPM:
        exercise(fixedTokenizer!, Array(bytes))
    case .grlJSONL:
        if let d = try? GRLDataset.parse(jsonl: bytes, file: "fuzz.jsonl", name: "fuzz", instruction: "I", malformed: .skip) {
            for ex in d.examples { sink &+= UInt64(ex.query.utf8.count &+ ex.positives.count &+ ex.negatives.count) }
            for (pos, neg, replace) in [(1, 1, false), (2, 3, true)] {
                guard let sampler = try? GRLBatchSampler(datasets: [d, d], batchSize: 3, posPerSample: pos, negPerSample: neg,
                                                         seed: 7, shortfall: replace ? .withReplacement : .batchMinimum) else { continue }
                for step in 0..<min(sampler.stepsPerEpoch, 3) {
                    for ex in sampler.batch(epoch: 1, step: step).examples {
                        for t in ex.contrastiveTexts + ex.generationTexts { sink &+= UInt64(t.utf8.count) }
                    }
                }
            }
        }
    case .trainYAML:
        if let text = String(validating: bytes, as: UTF8.self), let c = try? TrainConfig.parse(yaml: text, file: "fuzz.yaml") {
            sink &+= UInt64(c.warnings.count &+ c.data.count)
            sink &+= UInt64(c.batchSize &+ (c.loss.chunkSize ?? 0) &+ c.optimizer.maxEpochs)
        }
    case .modelGGUF:
        let fd = open(modelPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { die("cannot write \(modelPath)") }
        var done = 0
        while done < size {
            let n = write(fd, data! + done, size - done)
            guard n > 0 else { die("write to \(modelPath) failed") }
            done += n
        }
        close(fd)
        if let m = try? Model.load(path: modelPath) {
            var options = EmbedOptions()
            options.maxLength = 16
            let C = m.config.hiddenSize
            var out = [Float](repeating: 0, count: 2 * C)
            out.withUnsafeMutableBufferPointer { buf in
                _ = try? m.embed([Array("Hello world".utf8), []], options: options, into: buf)
            }
            sink &+= UInt64(out[0].bitPattern)
        }
    }
    return 0
}

// SwiftPM links executables with `--defsym main=<module>_main`, which hides libFuzzer's own main;
// so the entry point is ours and hands over to libFuzzer's driver (LLVMFuzzerRunDriver, LLVM >= 12).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("ullme_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v, { data, size in fuzzOne(data, size) })
}
