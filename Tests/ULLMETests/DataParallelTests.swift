import XCTest
@testable import ULLMESwift

/// The data-parallel pieces that need no MPI (the MPI run itself: scripts/check_mpi_grl.py, make test-mpi).
final class DataParallelTests: XCTestCase {
    func testSlicesAreContiguousBalancedAndCoverTheBatch() {
        for B in 0...40 { for R in 1...9 {
            let s = (0..<R).map { DataParallel.slice(B, rank: $0, size: R) }
            XCTAssertEqual(s.first?.lowerBound, 0)
            XCTAssertEqual(s.last?.upperBound, B)
            for r in 1..<R { XCTAssertEqual(s[r].lowerBound, s[r - 1].upperBound, "B \(B) R \(R)") }
            let sizes = s.map(\.count)
            XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "B \(B) R \(R)")
        } }
    }

    func testNoMPIWithoutALauncher() throws {
        // Tests do not run under mpirun: a single process, and the trainer writes.
        if getenv("OMPI_COMM_WORLD_SIZE") == nil { XCTAssertNil(try DataParallel.current()) }
    }
}
