import XCTest
@testable import InstructionFixup

final class SimpleInstructionTests: XCTestCase {
    func testInt3InjectsBreakpointWithRIPAfterIt() {
        let before = makeRegisters(rflags: 0x246)
        var expected = before
        expected.rip = kernelRIP + 1
        XCTAssertEqual(fixup([0xCC], before), .resumeInjecting(expected, vector: 3))
    }

    func testInt3IgnoresTrailingBytes() {
        var expected = makeRegisters()
        expected.rip = kernelRIP + 1
        XCTAssertEqual(fixup([0xCC, 0x0F, 0x0B, 0x48, 0x89, 0xE5]), .resumeInjecting(expected, vector: 3))
    }

    func testInt3InOtherModesWrapsTheInstructionPointer() {
        var expected = makeRegisters(rip: 0)
        XCTAssertEqual(fixup([0xCC], makeRegisters(rip: 0xFFFF), mode: .real16), .resumeInjecting(expected, vector: 3))
        XCTAssertEqual(fixup([0xCC], makeRegisters(rip: 0xFFFF_FFFF), mode: .protected32), .resumeInjecting(expected, vector: 3))
        expected.rip = 0x1_0000
        XCTAssertEqual(fixup([0xCC], makeRegisters(rip: 0xFFFF), mode: .protected32), .resumeInjecting(expected, vector: 3))
    }

    func testFwaitOnlyAdvancesRIP() {
        let before = makeRegisters(rflags: 0x202 | Flag.ac | Flag.cf)
        var expected = before
        expected.rip = kernelRIP + 1
        XCTAssertEqual(fixup([0x9B], before), .resume(expected))
        XCTAssertEqual(fixup([0x9B, 0xDB, 0xE3], before), .resume(expected), "fwait; fninit: only the fwait")
    }

    func testClacClearsOnlyAC() {
        for start: UInt64 in [0x2, 0x246 | Flag.ac, 0x2 | Flag.arithmetic, 0x2 | Flag.arithmetic | Flag.ac] {
            let before = makeRegisters(rflags: start)
            var expected = before
            expected.rip = kernelRIP + 3
            expected.rflags = start & ~Flag.ac
            XCTAssertEqual(fixup([0x0F, 0x01, 0xCA, 0x90], before), .resume(expected), "from rflags \(hex(start))")
        }
    }

    func testStacSetsOnlyAC() {
        for start: UInt64 in [0x2, 0x246 | Flag.ac, 0x2 | Flag.arithmetic, 0x2 | Flag.arithmetic | Flag.ac] {
            let before = makeRegisters(rflags: start)
            var expected = before
            expected.rip = kernelRIP + 3
            expected.rflags = start | Flag.ac
            XCTAssertEqual(fixup([0x0F, 0x01, 0xCB], before), .resume(expected), "from rflags \(hex(start))")
        }
    }

    func testClacWithMandatoryPrefixOrLockIsRefused() {
        for bytes: [UInt8] in [[0x66, 0x0F, 0x01, 0xCA], [0xF3, 0x0F, 0x01, 0xCA], [0xF2, 0x0F, 0x01, 0xCB], [0xF0, 0x0F, 0x01, 0xCA]] {
            XCTAssertNotNil(refusal(fixup(bytes)))
        }
    }

    func testLockedInt3IsRefused() {
        XCTAssertNotNil(refusal(fixup([0xF0, 0xCC])))
    }

    func testUnknownInstructionNamesBytesAndRIP() {
        let message = refusal(fixup([0x0F, 0x0B, 0x90, 0x90]))
        XCTAssertEqual(message, "guest instruction at rip 0xffffffff81001234 could not be emulated: 0f 0b (ud2)")
    }

    func testRdpidIsRefusedWithItsExactBytes() {
        let message = refusal(fixup([0xF3, 0x0F, 0xC7, 0xF8, 0x48, 0x89, 0xC7]))
        XCTAssertEqual(message, "guest instruction at rip 0xffffffff81001234 could not be emulated: f3 0f c7 f8 (rdpid)")
    }

    func testUnrecognizedOpcodeShowsAllFetchedBytes() throws {
        let message = try XCTUnwrap(refusal(fixup([0x48, 0x8B, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00])))
        XCTAssertTrue(message.hasPrefix("guest instruction at rip 0xffffffff81001234 could not be emulated: 48 8b 04 25 00 10 00 00"), message)
        XCTAssertTrue(message.contains("unrecognized"), message)
    }

    func testXSAVEFamilySuggestsNoxsave() throws {
        let cases: [([UInt8], String)] = [
            ([0x0F, 0xAE, 0x2F], "xrstor"),
            ([0x48, 0x0F, 0xAE, 0x2F], "xrstor64"),
            ([0x0F, 0xAE, 0x27], "xsave"),
            ([0x0F, 0xAE, 0x37], "xsaveopt"),
            ([0x0F, 0xC7, 0x2F], "xsaves"),
            ([0x0F, 0xC7, 0x1F], "xrstors"),
            ([0x0F, 0xC7, 0x27], "xsavec"),
            ([0x0F, 0x01, 0xD0], "xgetbv"),
            ([0x0F, 0x01, 0xD1], "xsetbv"),
        ]
        for (bytes, name) in cases {
            let message = try XCTUnwrap(refusal(fixup(bytes + [0x90, 0x90])))
            XCTAssertTrue(message.contains("noxsave"), message)
            XCTAssertTrue(message.contains("(\(name))"), message)
            XCTAssertTrue(message.contains(bytes.map { ($0 < 0x10 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ") + " ("), message)
            XCTAssertTrue(message.contains("0xffffffff81001234"), message)
        }
    }

    func testEmptyBytesAreRefused() throws {
        let message = try XCTUnwrap(refusal(fixup([])))
        XCTAssertTrue(message.contains("0xffffffff81001234"), message)
    }

    func testWrongRegisterCountIsRefusedNotTrapped() {
        let registers = FixupRegisters(gpr: [0, 1, 2], rip: 0x1000, rflags: 2)
        XCTAssertNotNil(refusal(fixup([0xCC], registers)))
    }

    func testFifteenPrefixesAreTooLong() {
        XCTAssertNotNil(refusal(fixup(Array(repeating: 0x66, count: 15) + [0x9B])))
        XCTAssertNotNil(refusal(fixup(Array(repeating: 0x2E, count: 40))))
        // 14 prefixes and the opcode: exactly 15 bytes, allowed.
        var expected = makeRegisters()
        expected.rip = kernelRIP + 15
        XCTAssertEqual(fixup(Array(repeating: 0x3E, count: 14) + [0x9B]), .resume(expected))
    }

    func testInstructionLongerThanFifteenBytesIsRefused() {
        let popcnt: [UInt8] = [0xF3, 0x48, 0x0F, 0xB8, 0xC3]
        var expected = makeRegisters([Reg.rbx: 1])
        expected.gpr[Reg.rax] = 1
        expected.rip = kernelRIP + 15
        expected.rflags = 0x2
        XCTAssertEqual(fixup(Array(repeating: 0x2E, count: 10) + popcnt, makeRegisters([Reg.rbx: 1])), .resume(expected))
        XCTAssertNotNil(refusal(fixup(Array(repeating: 0x2E, count: 11) + popcnt, makeRegisters([Reg.rbx: 1]))))
    }

    func testEveryTruncationIsRefused() {
        let instructions: [[UInt8]] = [
            [0xCC], [0x9B], [0x0F, 0x01, 0xCA], [0x0F, 0x01, 0xCB],
            [0xF3, 0x48, 0x0F, 0xB8, 0xC3],
            [0x66, 0xF3, 0x0F, 0xB8, 0xC1],
            [0xF3, 0x48, 0x0F, 0xB8, 0x45, 0xF8],
            [0xF3, 0x48, 0x0F, 0xB8, 0x84, 0x24, 0x00, 0x01, 0x00, 0x00],
            [0xF3, 0x48, 0x0F, 0xB8, 0x05, 0x10, 0x00, 0x00, 0x00],
            [0x64, 0x67, 0xF3, 0x4B, 0x0F, 0xBD, 0x94, 0xCA, 0x78, 0x56, 0x34, 0x12],
            [0x0F, 0xAE, 0x2F], [0xF3, 0x0F, 0xC7, 0xF8],
        ]
        let memory = RecordingMemory()
        for instruction in instructions {
            for length in 0..<instruction.count {
                let outcome = fixup(Array(instruction.prefix(length)), memory: memory, segmentBases: SegmentBases())
                guard case .unsupported = outcome else {
                    XCTFail("\(instruction.prefix(length)) gave \(outcome)")
                    continue
                }
            }
        }
        XCTAssertTrue(memory.reads.isEmpty, "a truncated instruction must not read memory")
    }
}
