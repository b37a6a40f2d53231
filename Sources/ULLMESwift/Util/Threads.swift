import CULLME

/// The most compute threads a caller may ask for (ullme_model_params.n_threads, the YAML's `threads`, the
/// CLI's --threads): far above any core count, low enough that a typo cannot start a million threads.
public let maxComputeThreads = 1024

/// Sets the threads of our matrix products and OpenBLAS's (used for attention) for the whole process.
public func setBLASThreads(_ n: Int) {
    guard n >= 1 else { return }
    ComputeThreads.count = n   // (its first use also pins OpenBLAS to one thread)
}
