import CULLME
import Dispatch
import Synchronization
import XCTest
@testable import ULLMESwift

/// The engine's worker threads (cullme_pool_run): every task runs exactly once for any task and thread
/// count, a call from inside a task or from several threads at once runs (inline if the pool is busy)
/// and returns, and results do not depend on which thread ran a task.
final class WorkerPoolTests: XCTestCase {
    func testEveryTaskRunsOnce() {
        for threads in [1, 2, 3, 8] {
            for n in [0, 1, 2, 5, 100, 10_000] {
                var counts = [Int32](repeating: 0, count: n)
                counts.withUnsafeMutableBufferPointer { c in
                    cullme_pool_run(Int64(n), Int32(threads), { ctx, i in
                        ctx!.assumingMemoryBound(to: Int32.self)[Int(i)] += 1  // one writer per index
                    }, c.baseAddress)
                }
                XCTAssertEqual(counts, [Int32](repeating: 1, count: n), "n \(n) threads \(threads)")
            }
        }
    }

    func testNestedAndConcurrentCallers() {
        let saved = ComputeThreads.count
        ComputeThreads.count = 2
        defer { ComputeThreads.count = saved }
        let total = Atomic<Int>(0)
        // 8 threads at once, each running parallel loops whose tasks run parallel loops.
        DispatchQueue.concurrentPerform(iterations: 8) { caller in
            for round in 0..<50 {
                parallelFor(4) { outer in
                    parallelFor(3) { inner in total.add(caller * 1000 + round * 10 + outer + inner + 1, ordering: .relaxed) }
                }
            }
        }
        var expected = 0
        for caller in 0..<8 { for round in 0..<50 { for outer in 0..<4 { for inner in 0..<3 {
            expected += caller * 1000 + round * 10 + outer + inner + 1
        } } } }
        XCTAssertEqual(total.load(ordering: .relaxed), expected)
    }

    /// Many short regions back to back (the pattern of a short forward pass) with a varying task count.
    func testManyShortRegions() {
        let saved = ComputeThreads.count
        ComputeThreads.count = 2
        defer { ComputeThreads.count = saved }
        var sums = [Int](repeating: 0, count: 4)
        for r in 0..<20_000 {
            let n = 1 + r % 4
            sums.withUnsafeMutableBufferPointer { s in
                let base = UInt(bitPattern: s.baseAddress)
                parallelFor(n) { i in UnsafeMutablePointer<Int>(bitPattern: base)![i] += r }
            }
        }
        for i in 0..<4 { XCTAssertEqual(sums[i], (0..<20_000).filter { 1 + $0 % 4 > i }.reduce(0, +)) }
    }
}
