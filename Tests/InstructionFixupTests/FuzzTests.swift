import XCTest
import TestSupport
@testable import InstructionFixup

/// Memory where every address is readable, except one in sixteen, with a value derived from
/// the address.
private struct HashedMemory: GuestLinearMemory {
    func readLinear(_ address: UInt64, size: Int) -> UInt64? {
        var generator = SplitMix64(seed: address)
        let value = generator.next()
        guard value & 0xF != 0 else { return nil }
        return size == 8 ? value : value & ((UInt64(1) << UInt64(size * 8)) - 1)
    }
}

final class FuzzTests: XCTestCase {
    /// Bytes that steer random input toward the decoder's interesting paths.
    private let palette: [UInt8] = [
        0x66, 0x67, 0xF2, 0xF3, 0xF0, 0x2E, 0x3E, 0x26, 0x64, 0x65, 0x36, 0x40, 0x48, 0x4F, 0x41, 0x44,
        0x0F, 0x0F, 0x0F, 0x38, 0x3A, 0xB8, 0xBC, 0xBD, 0x01, 0xCA, 0xCB, 0xCC, 0x9B, 0xAE, 0xC7, 0xF8,
        0x04, 0x05, 0x24, 0x25, 0x44, 0x45, 0x84, 0x85, 0xC0, 0xC3, 0x00, 0xFF, 0x80, 0x7F,
    ]

    func testRandomBytesNeverTrapAndAdvanceRIPByALegalLength() {
        var random = SplitMix64(seed: fuzzSeed(default: 0x5EED_F1C5_0000_0001))
        let modes: [CPUMode] = [.long64, .long64, .protected32, .real16]
        var counts = (resumed: 0, injected: 0, refused: 0)
        for _ in 0..<100_000 {
            let length = Int(random.next() % 17)  // 0...16: also one byte more than KVM hands back
            let bytes = (0..<length).map { _ -> UInt8 in
                random.next() & 1 == 0 ? palette[Int(random.next() % UInt64(palette.count))] : UInt8(truncatingIfNeeded: random.next())
            }
            let mode = modes[Int(random.next() % UInt64(modes.count))]
            let gpr = (0..<16).map { _ in random.next() }
            let rip: UInt64 = mode == .real16 ? 0x1000 : (mode == .protected32 ? 0x10_0000 : 0xFFFF_FFFF_8100_0000)
            let registers = FixupRegisters(gpr: gpr, rip: rip, rflags: random.next() & 0x3F_FFFF | 0x2)
            let memory: (any GuestLinearMemory)? = random.next() % 8 == 0 ? nil : HashedMemory()
            let bases: SegmentBases? = random.next() % 2 == 0 ? nil : SegmentBases(fs: random.next(), gs: random.next())

            let outcome = InstructionFixup.complete(bytes: bytes, registers: registers, mode: mode, memory: memory, segmentBases: bases)
            let after: FixupRegisters
            switch outcome {
            case .resume(let r):
                counts.resumed += 1
                after = r
            case .resumeInjecting(let r, let vector):
                counts.injected += 1
                XCTAssertEqual(vector, 3)
                after = r
            case .unsupported(let message):
                counts.refused += 1
                XCTAssertTrue(message.hasPrefix("guest instruction at rip 0x"), message)
                continue
            }
            let advance = after.rip &- rip
            XCTAssertTrue((1...15).contains(advance), "\(bytes) advanced RIP by \(advance)")
            XCTAssertLessThanOrEqual(advance, UInt64(bytes.count), "\(bytes) advanced past the fetched bytes")
            XCTAssertEqual(after.gpr.count, 16)
            // Bytes after the instruction never matter.
            let trimmed = Array(bytes.prefix(Int(advance)))
            XCTAssertEqual(InstructionFixup.complete(bytes: trimmed + [0x0F, 0x0B], registers: registers, mode: mode,
                                                     memory: memory, segmentBases: bases), outcome, "\(bytes)")
        }
        // The palette should reach all three outcomes a fair number of times.
        XCTAssertGreaterThan(counts.resumed, 100)
        XCTAssertGreaterThan(counts.injected, 100)
        XCTAssertGreaterThan(counts.refused, 10_000)
    }
}
