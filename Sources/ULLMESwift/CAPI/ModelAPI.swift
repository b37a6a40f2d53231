import CULLME
import Glibc

/// What an `ullme_model *` points to: the immutable model plus the parameters it was loaded with, their
/// AUTO values resolved from the model's embedder profile (what embed calls and get_params use).
final class ModelHandle {
    let model: Model
    let params: ullme_model_params
    /// The handle's own copies of params.adapter_path and params.preset (what get_params returns).
    private let adapterPath: UnsafeMutablePointer<CChar>?
    private let preset: UnsafeMutablePointer<CChar>?
    /// model.precisionPath as a C string (what ullme_model_precision_path returns).
    let precisionPath: UnsafeMutablePointer<CChar>
    /// model.embedder.json (what ullme_model_embedder returns).
    let embedderJSON: UnsafeMutablePointer<CChar>
    init(model: Model, params: ullme_model_params, adapterPath: String?, preset: String?) {
        self.model = model
        self.adapterPath = adapterPath.map { strdup($0)! }
        self.preset = preset.map { strdup($0)! }
        precisionPath = strdup(model.precisionPath)!
        embedderJSON = strdup(model.embedder.json)!
        var p = params
        p.adapter_path = UnsafePointer(self.adapterPath)
        p.preset = UnsafePointer(self.preset)
        let e = model.embedder
        if p.pooling == ULLME_POOLING_AUTO { p.pooling = e.pooling.c }
        if p.attention == ULLME_ATTENTION_AUTO { p.attention = e.attention.c }
        if p.max_length == 0 { p.max_length = Int32(clamping: e.maxLength ?? 512) }
        self.params = p
    }
    deinit { free(adapterPath); free(preset); free(precisionPath); free(embedderJSON) }
}

func handle(_ p: OpaquePointer?) throws -> ModelHandle {
    guard let p else { throw argError("model is NULL") }
    return Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
}

/// ullme_model_params' released layouts: as first released (up to batch_size), then with adapter_path, with
/// weight_storage, with precision and reserved0; the current one adds preset.
let modelParamsLayouts = ParamsLayouts<ullme_model_params>(
    name: "ullme_model_params", olderEndingBefore: [\.adapter_path, \.weight_storage, \.precision, \.preset])
let modelParamsSize = modelParamsLayouts.currentSize
let olderModelParamsSizes = modelParamsLayouts.older.map(\.size)
let modelParamsSizeV1 = olderModelParamsSizes[0], modelParamsSizeV2 = olderModelParamsSizes[1]
let modelParamsSizeV3 = olderModelParamsSizes[2], modelParamsSizeV4 = olderModelParamsSizes[3]

/// Reads a caller's params struct without reading past its layout's fields.
func readModelParams(_ p: UnsafePointer<ullme_model_params>) throws -> ullme_model_params {
    try modelParamsLayouts.read(p, defaults: capi_model_default_params()) { $0.struct_size = $1 }
}
let embedParamsSize = embedParamsLayouts.currentSize

@_cdecl("ullme_model_default_params")
public func capi_model_default_params() -> ullme_model_params {
    ullme_model_params(struct_size: modelParamsSize, n_threads: 0, pooling: ULLME_POOLING_AUTO,
                       attention: ULLME_ATTENTION_AUTO, max_length: 0, batch_size: 32,
                       adapter_path: nil, weight_storage: 0, precision: 0, reserved0: 0, preset: nil)
}

/// Checks a params struct from the caller; returns a validated copy.
func validated(_ p: ullme_model_params) throws -> ullme_model_params {
    guard p.struct_size == modelParamsSize else {
        throw argError("ullme_model_params.struct_size is \(p.struct_size), expected \(modelParamsSize): start from ullme_model_default_params()")
    }
    guard p.n_threads >= 0 && p.n_threads <= maxComputeThreads else { throw argError("n_threads must be in [0, \(maxComputeThreads)] (got \(p.n_threads))") }
    if p.pooling != ULLME_POOLING_AUTO { _ = try Pooling(c: p.pooling) }
    if p.attention != ULLME_ATTENTION_AUTO { _ = try AttentionMode(c: p.attention) }
    _ = try WeightStorage.fromC(p.weight_storage)
    _ = try Precision.fromC(p.precision)
    guard p.reserved0 == 0 else { throw argError("ullme_model_params.reserved0 must be 0") }
    guard p.max_length >= 0 else { throw argError("max_length must be >= 1, or 0 for the model's own (got \(p.max_length))") }
    guard p.batch_size >= 1 else { throw argError("batch_size must be >= 1 (got \(p.batch_size))") }
    return p
}

@_cdecl("ullme_model_load")
public func capi_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<ullme_model_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    capiCall("ullme_model_load") {
        guard let out else { throw argError("out is NULL") }
        out.pointee = nil
        let p = try validated(params.map(readModelParams) ?? capi_model_default_params())
        if p.n_threads > 0 { setBLASThreads(Int(p.n_threads)) }
        var adapter = p.adapter_path.map { String(cString: $0) }
        if adapter?.isEmpty == true { throw argError("adapter_path is empty (use NULL for no adapter)") }
        // NULL path: the default model, i.e. the base GGUF with the shipped adapter (or params' adapter).
        let modelPath = try path.map { String(cString: $0) } ?? DefaultModel.requireBase()
        if path == nil, adapter == nil { adapter = try DefaultModel.requireAdapter() }
        let storage = try WeightStorage.fromC(p.weight_storage), precision = try Precision.fromC(p.precision)
        let preset = p.preset.map { String(cString: $0) }
        let model = try Model.load(path: modelPath, adapter: adapter, storage: storage, precision: precision, preset: preset)
        let h = ModelHandle(model: model, params: p, adapterPath: adapter, preset: preset)
        out.pointee = OpaquePointer(Unmanaged.passRetained(h).toOpaque())
    }
}

@_cdecl("ullme_model_free")
public func capi_model_free(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(model)).release()
}

@_cdecl("ullme_model_get_info")
public func capi_model_get_info(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<ullme_model_info>?) -> Int32 {
    capiCall("ullme_model_get_info") {
        let h = try handle(model)
        guard let out else { throw argError("out is NULL") }
        let m = h.model, c = m.config
        var info = ullme_model_info()
        withUnsafeMutableBytes(of: &info.architecture) { buf in
            let name = Array(c.architecture.utf8.prefix(buf.count - 1))
            buf.copyBytes(from: name)
            buf[name.count] = 0
        }
        info.hidden_size = Int32(c.hiddenSize); info.n_layers = Int32(c.nLayers)
        info.n_heads = Int32(c.nHeads); info.n_kv_heads = Int32(c.nKVHeads)
        info.intermediate_size = Int32(c.intermediateSize); info.vocab_size = Int32(c.vocabSize)
        info.max_positions = Int32(clamping: c.maxPositions)
        info.bos_token_id = m.tokenizer?.bosId ?? -1
        info.eos_token_id = m.tokenizer?.eosId ?? -1
        info.pad_token_id = m.padTokenId ?? -1
        info.n_parameters = Int64(m.parameterCount)
        out.pointee = info
    }
}

@_cdecl("ullme_model_get_params")
public func capi_model_get_params(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<ullme_model_params>?) -> Int32 {
    capiCall("ullme_model_get_params") {
        let h = try handle(model)
        guard let out else { throw argError("out is NULL") }
        let size = UnsafeRawPointer(out).load(as: UInt32.self)
        if olderModelParamsSizes.contains(size) {
            var p = h.params
            p.struct_size = size
            withUnsafeBytes(of: &p) { UnsafeMutableRawPointer(out).copyMemory(from: $0.baseAddress!, byteCount: Int(size)) }
        } else {
            out.pointee = h.params
        }
    }
}

@_cdecl("ullme_model_embedder")
public func capi_model_embedder(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capiCall("ullme_model_embedder") {
        let h = try handle(model)
        guard let out else { throw argError("out is NULL") }
        out.pointee = UnsafePointer(h.embedderJSON)
    }
}

@_cdecl("ullme_model_precision_path")
public func capi_model_precision_path(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capiCall("ullme_model_precision_path") {
        let h = try handle(model)
        guard let out else { throw argError("out is NULL") }
        out.pointee = UnsafePointer(h.precisionPath)
    }
}

@_cdecl("ullme_tokenize")
public func capi_tokenize(_ model: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ textLen: Int, _ addSpecial: Int32,
                          _ ids: UnsafeMutablePointer<Int32>?, _ cap: Int, _ nIds: UnsafeMutablePointer<Int>?) -> Int32 {
    capiCall("ullme_tokenize") {
        let h = try handle(model)
        guard let nIds else { throw argError("n_ids is NULL") }
        let tok = try h.model.requireTokenizer()
        let result = tok.encode(try bytes(text, textLen, what: "text"), addSpecial: addSpecial != 0)
        nIds.pointee = result.count
        guard result.count <= cap else { throw argError("ids buffer holds \(cap) ids, \(result.count) needed") }
        guard let ids else { if result.isEmpty { return }; throw argError("ids is NULL") }
        for (i, id) in result.enumerated() { ids[i] = id }
    }
}

@_cdecl("ullme_detokenize")
public func capi_detokenize(_ model: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ nIds: Int, _ skipSpecial: Int32,
                            _ text: UnsafeMutablePointer<CChar>?, _ cap: Int, _ nBytes: UnsafeMutablePointer<Int>?) -> Int32 {
    capiCall("ullme_detokenize") {
        let h = try handle(model)
        guard let nBytes else { throw argError("n_bytes is NULL") }
        guard nIds >= 0 else { throw argError("n_ids \(UInt(bitPattern: nIds)) is larger than any buffer") }
        guard nIds == 0 || ids != nil else { throw argError("ids is NULL") }
        let tok = try h.model.requireTokenizer()
        let list = nIds == 0 ? [] : Array(UnsafeBufferPointer(start: ids, count: nIds))
        for id in list where id < 0 || Int(id) >= tok.vocabSize {
            throw argError("token id \(id) outside the vocabulary [0, \(tok.vocabSize))")
        }
        let out = tok.decode(list, skipSpecial: skipSpecial != 0)
        nBytes.pointee = out.count
        guard out.count <= cap else { throw argError("text buffer holds \(cap) bytes, \(out.count) needed") }
        if out.isEmpty { return }
        guard let text else { throw argError("text is NULL") }
        out.withUnsafeBytes { UnsafeMutableRawPointer(text).copyMemory(from: $0.baseAddress!, byteCount: out.count) }
    }
}
