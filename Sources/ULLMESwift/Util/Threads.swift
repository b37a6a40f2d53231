import CULLME

/// Sets the threads of our matrix products and OpenBLAS's (used for attention) for the whole process.
public func setBLASThreads(_ n: Int) {
    guard n >= 1 else { return }
    ComputeThreads.count = n   // (its first use also pins OpenBLAS to one thread)
}
