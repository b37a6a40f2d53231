import CULLME

/// Sets OpenBLAS's thread count for the whole process (OpenBLAS has no per-call setting).
public func setBLASThreads(_ n: Int) {
    if n >= 1 { openblas_set_num_threads(Int32(n)) }
}
