import XCTest
import TestSupport
@testable import Boot
import Memory

/// Truncated and corrupted kernels must produce a BootError, never a trap.
final class RobustnessTests: XCTestCase {
    func testEveryTruncatedBzImageIsRefused() throws {
        let mem = try GuestMemory(size: 64 << 20)
        let f = BzImageFixture()
        let full = f.bytes()
        // Up to and including the setup sectors nothing is loadable; beyond that, a shorter
        // protected-mode kernel is indistinguishable from a small one.
        for n in 0...f.setupBytes {
            let cut = Array(full[0..<n])
            let e = assertBootError { () throws(BootError) in try loadLinux(params(cut), into: mem) }
            switch e {
            case .kernelTruncated, .unknownKernelFormat: break
            default: XCTFail("prefix \(n): unexpected \(String(describing: e))")
            }
        }
        XCTAssertNoThrow(try loadLinux(params(Array(full[0..<f.setupBytes + 1])), into: mem))
    }

    func testEveryTruncatedElfIsRefused() throws {
        let mem = try GuestMemory(size: 64 << 20)
        for variant in [ElfFixture(), { var f = ElfFixture(); f.noteInSectionOnly = true; return f }()] {
            let full = variant.bytes()
            XCTAssertNoThrow(try loadLinux(params(full), into: mem))
            for n in 0..<full.count {
                let cut = Array(full[0..<n])
                let e = assertBootError { () throws(BootError) in try loadLinux(params(cut), into: mem) }
                switch e {
                case .kernelTruncated, .unknownKernelFormat, .invalidELF, .noPVHEntry: break
                default: XCTFail("prefix \(n): unexpected \(String(describing: e))")
                }
            }
        }
    }

    /// Overwrites each header byte with several values; every result must either load or
    /// throw a BootError. Covers the setup header and the ELF/program/section headers.
    func testCorruptedHeaderBytesNeverTrap() throws {
        let mem = try GuestMemory(size: 64 << 20)
        let inputs: [([UInt8], Range<Int>)] = [
            (BzImageFixture().bytes(), 0x1F1..<0x270),
            (ElfFixture().bytes(), 0..<(64 + 2 * 56)),
            ({ var f = ElfFixture(); f.noteInSectionOnly = true; return f }().bytes(), 0..<64),
            ({ var f = ElfFixture(); f.noteInSectionOnly = true; return f }().bytes(), 0x1140..<0x1180),
            (ElfFixture().bytes(), 0x1200..<0x1218),
        ]
        for (original, range) in inputs {
            for offset in range {
                for value: UInt8 in [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF] {
                    var k = original
                    k[offset] = value
                    do {
                        _ = try loadLinux(params(k, initrd: [1, 2, 3]), into: mem)
                    } catch {
                        XCTAssertFalse(error.description.isEmpty)
                    }
                }
            }
        }
    }

    /// Random multi-byte corruption with a fixed seed, so failures reproduce.
    func testRandomCorruptionNeverTraps() throws {
        let mem = try GuestMemory(size: 64 << 20)
        var rng = SplitMix64(seed: fuzzSeed(default: 0x5EED))
        let originals = [BzImageFixture().bytes(), ElfFixture().bytes()]
        for i in 0..<4000 {
            var k = originals[i % 2]
            let headerEnd = i % 2 == 0 ? 0x270 : 0x100
            for _ in 0..<(1 + Int(rng.next() % 6)) {
                // Mostly hit the headers, sometimes anywhere (e.g. the note at the end).
                let limit = rng.next() % 4 == 0 ? k.count : headerEnd
                k[Int(rng.next() % UInt64(limit))] = UInt8(truncatingIfNeeded: rng.next())
            }
            do { _ = try loadLinux(params(k), into: mem) } catch { XCTAssertFalse(error.description.isEmpty) }
        }
    }
}

