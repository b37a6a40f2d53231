import CULLME

/// Sets the threads of our matrix products and OpenBLAS's (used for attention) for the whole process.
public func setBLASThreads(_ n: Int) {
    guard n >= 1 else { return }
    ComputeThreads.count = n
    openblas_set_num_threads(Int32(n))
}
