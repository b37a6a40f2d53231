#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Hugging Face model directory: config.json (required), tokenizer.json and tokenizer_config.json
/// (optional), and weights in model.safetensors or in shards listed by model.safetensors.index.json.
public final class HFModelDirectory: @unchecked Sendable {
    public let path: String
    public let config: JSONValue
    public let tokenizer: JSONValue?
    public let tokenizerConfig: JSONValue?
    /// The opened weight files (one, or one per shard in name order); they own the tensors' bytes.
    public let files: [SafetensorsFile]
    /// Every tensor name, sorted.
    public let tensorNames: [String]
    private let index: [String: TensorRecord]

    public init(path: String) throws {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw ULLMEError.io("\(path): cannot open model directory (\(MappedFile.errnoText(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw ULLMEError.io("\(path): not a directory") }

        func join(_ name: String) -> String { path.hasSuffix("/") ? path + name : path + "/" + name }
        func exists(_ name: String) -> Bool { access(join(name), F_OK) == 0 }
        func readJSON(_ name: String) throws -> JSONValue { try JSONValue.read(file: join(name)) }

        guard exists("config.json") else {
            throw ULLMEError.io("\(path): config.json is missing (not a Hugging Face model directory?)")
        }
        config = try readJSON("config.json")
        guard config.object != nil else { throw ULLMEError.format("\(join("config.json")): not a JSON object") }
        tokenizer = exists("tokenizer.json") ? try readJSON("tokenizer.json") : nil
        tokenizerConfig = exists("tokenizer_config.json") ? try readJSON("tokenizer_config.json") : nil

        var shardNames: [String]
        var weightMap: [String: String]? = nil
        let indexName = "model.safetensors.index.json"
        if exists(indexName) {
            let idx = try readJSON(indexName)
            guard let wm = idx["weight_map"]?.object else {
                throw ULLMEError.format("\(join(indexName)): no \"weight_map\" object")
            }
            var map: [String: String] = [:]
            for (tensor, v) in wm {
                guard let shard = v.string, !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                    throw ULLMEError.format("\(join(indexName)): weight_map[\"\(tensor)\"] is not a plain file name")
                }
                map[tensor] = shard
            }
            shardNames = Array(Set(map.values)).sorted()
            for s in shardNames where !exists(s) {
                throw ULLMEError.io("\(path): shard \(s) referenced by \(indexName) does not exist")
            }
            weightMap = map
        } else if exists("model.safetensors") {
            shardNames = ["model.safetensors"]
        } else if exists("pytorch_model.bin") {
            throw ULLMEError.unsupported("\(path): only safetensors weights are supported (found pytorch_model.bin)")
        } else {
            throw ULLMEError.io("\(path): no model.safetensors or \(indexName)")
        }

        var files: [SafetensorsFile] = []
        var all: [String: TensorRecord] = [:]
        var owner: [String: String] = [:]
        for s in shardNames {
            let f = try SafetensorsFile(path: join(s))
            files.append(f)
            for t in f.tensors {
                if let first = owner[t.name] {
                    throw ULLMEError.format("\(path): tensor \"\(t.name)\" is present in both \(first) and \(s)")
                }
                owner[t.name] = s
                all[t.name] = t
            }
        }
        if let map = weightMap {
            for (tensor, shard) in map where owner[tensor] != shard {
                throw ULLMEError.format("\(path): \(indexName) places \"\(tensor)\" in \(shard), but \(owner[tensor].map { "it is in \($0)" } ?? "no shard holds it")")
            }
        }
        self.files = files
        index = all
        tensorNames = all.keys.sorted()
    }

    public func tensor(named name: String) -> TensorRecord? { index[name] }
}
