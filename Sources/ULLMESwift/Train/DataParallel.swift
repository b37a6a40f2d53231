import CULLME
import Glibc

/// Data-parallel GRL over MPI: `mpirun -np R ullme train config.yaml`.
///
/// Every rank builds the same global batch (batches are a function of seed/epoch/step) and takes a
/// contiguous slice of it, examples [r·B/R, (r+1)·B/R). In the GradCache step each rank encodes only
/// its slice; the projected reps are all-gathered so L_CL sees the whole global batch (its negatives
/// included) and every rank computes the same loss and rep gradient; each rank back-propagates its slice
/// of that gradient plus its examples' gen/KL terms (weighted by 1/B of the global batch, so their sum
/// over ranks is the single-process loss); the LoRA + head gradients and the loss terms are all-reduced
/// (sum). Every rank then takes the same AdamW step; rank 0 alone writes the log, checkpoints and the
/// adapter. Dropout masks are keyed by (seed, step, example), so an example gets the same mask on any
/// rank: the run equals a single-process run with the same global batch up to float summation order.
///
/// MPI is loaded at run time (Sources/CULLME/mpi_shim.c: dlopen of Open MPI's libmpi.so.40), so the
/// default build needs no MPI. A process is a rank when Open MPI's launcher says the world has more
/// than one process (OMPI_COMM_WORLD_SIZE > 1); ULLME_MPI=0 turns that off, ULLME_MPI=1 forces MPI.
public final class DataParallel: @unchecked Sendable {
    public let rank: Int
    public let size: Int

    init(rank: Int, size: Int) { self.rank = rank; self.size = size }

    /// The MPI world of this process, or nil when it runs alone. Initialised once per process.
    public static func current() throws -> DataParallel? { try world.get() }

    private static let world: Result<DataParallel?, Error> = Result {
        let env = { (k: String) in getenv(k).map { String(cString: $0) } }
        let mode = env("ULLME_MPI")
        if mode == "0" { return nil }
        let launched = Int(env("OMPI_COMM_WORLD_SIZE") ?? "") ?? 1
        guard mode == "1" || launched > 1 else { return nil }
        var err = [CChar](repeating: 0, count: 512)
        guard cullme_mpi_init(&err, err.count) == 0 else {
            throw ULLMEError.unsupported("data-parallel training: \(String(cString: err))")
        }
        let size = Int(cullme_mpi_size()), rank = Int(cullme_mpi_rank())
        return size > 1 || mode == "1" ? DataParallel(rank: rank, size: size) : nil  // 1 rank when forced: the MPI path, tested
    }

    /// This rank's examples of a global batch of B: a contiguous slice, sizes differing by at most one.
    public func slice(_ B: Int) -> Range<Int> { Self.slice(B, rank: rank, size: size) }
    static func slice(_ B: Int, rank: Int, size: Int) -> Range<Int> { (rank * B / size)..<((rank + 1) * B / size) }

    public func allreduceSum(_ x: inout [Float]) throws {
        let rc = x.withUnsafeMutableBufferPointer { cullme_mpi_allreduce_sum_f32($0.baseAddress, $0.count) }
        guard rc == 0 else { throw ULLMEError.io("MPI_Allreduce failed (error \(rc))") }
    }

    public func allreduceSum(_ x: inout [Double]) throws {
        let rc = x.withUnsafeMutableBufferPointer { cullme_mpi_allreduce_sum_f64($0.baseAddress, $0.count) }
        guard rc == 0 else { throw ULLMEError.io("MPI_Allreduce failed (error \(rc))") }
    }

    /// In place: block r (counts[r] floats, blocks back to back in rank order) comes from rank r.
    public func allgather(_ buf: inout [Float], counts: [Int]) throws {
        precondition(counts.count == size && counts.reduce(0, +) == buf.count)
        guard buf.count <= Int(Int32.max) else { throw ULLMEError.argument("all-gather of \(buf.count) floats exceeds MPI's int count") }
        let c = counts.map(Int32.init)
        var d = [Int32](repeating: 0, count: size)
        for r in 1..<size { d[r] = d[r - 1] + c[r - 1] }
        let rc = buf.withUnsafeMutableBufferPointer { b in cullme_mpi_allgatherv_f32(b.baseAddress, c, d) }
        guard rc == 0 else { throw ULLMEError.io("MPI_Allgatherv failed (error \(rc))") }
    }

    public func barrier() { _ = cullme_mpi_barrier() }

    /// Ends every rank (one failing rank must not leave the others waiting in a collective).
    public func abort(_ code: Int32 = 1) -> Never {
        cullme_mpi_abort(code)
        exit(code)
    }
}

extension TrainingModel.Gradients {
    /// Sums the gradients over all ranks (one all-reduce of every LoRA and head tensor, flattened).
    mutating func allreduceSum(_ world: DataParallel) throws {
        var flat: [Float] = []
        for (la, lb) in zip(lora.dA, lora.dB) { for (a, b) in zip(la, lb) { flat += a; flat += b } }
        flat += head.w1; flat += head.b1; flat += head.w2; flat += head.b2
        try world.allreduceSum(&flat)
        var i = 0
        func take(_ n: Int) -> [Float] { defer { i += n }; return Array(flat[i..<i + n]) }
        for l in lora.dA.indices { for t in lora.dA[l].indices {
            lora.dA[l][t] = take(lora.dA[l][t].count); lora.dB[l][t] = take(lora.dB[l][t].count)
        } }
        head.w1 = take(head.w1.count); head.b1 = take(head.b1.count)
        head.w2 = take(head.w2.count); head.b2 = take(head.b2.count)
    }
}
