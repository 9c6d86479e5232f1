import Memory
import XCTest
import TestSupport
@testable import Virtio

/// A deterministic random driver: garbage and near-valid rings, chains, indirect tables and
/// block requests, from a fixed seed. Passing means no trap and no used-ring entry outside
/// the queue; a failure prints the iteration, which replays with the same seed.
final class FuzzTests: XCTestCase {
    func testRandomDriversNeverTrapOrEscapeTheQueue() throws {
        let memory = try GuestMemory(size: FuzzScenario.memorySize)
        let disk = InMemoryDisk(sectors: 64)
        let iterations = 20_000
        var rng = SplitMix64(seed: fuzzSeed(default: 0x5356_4D76_6972_7469)) // "SVMvirti"
        var failures = 0
        for i in 0..<iterations {
            let problems = FuzzScenario.run(&rng, memory: memory, disk: disk)
            if !problems.isEmpty {
                failures += 1
                XCTFail("iteration \(i): \(problems.prefix(3))")
                if failures > 5 { return }
            }
        }
    }

    func testByteSourceScenariosTerminate() throws {
        // The libFuzzer entry point's decoding: short and empty inputs must be fine too.
        let memory = try GuestMemory(size: FuzzScenario.memorySize)
        let disk = InMemoryDisk(sectors: 64)
        var seed = SplitMix64(seed: 7)
        for length in [0, 1, 7, 8, 64, 512, 4096] {
            var src = ByteSource((0..<length).map { _ in UInt8(truncatingIfNeeded: seed.next()) })
            XCTAssertEqual(FuzzScenario.run(&src, memory: memory, disk: disk), [])
        }
    }
}
