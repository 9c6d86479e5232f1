import XCTest
@testable import InstructionFixup

/// popcnt / lzcnt / tzcnt: results, flags, operand sizes, register and memory operands.
final class BitCountTests: XCTestCase {
    /// Flags to start from: every arithmetic flag set, plus IF, AC and the fixed bit 1, which
    /// must survive.
    let dirtyFlags: UInt64 = 0x2 | Flag.arithmetic | Flag.if | Flag.ac
    let kept: UInt64 = 0x2 | Flag.if | Flag.ac

    // MARK: popcnt, register source

    func testPopcnt64Register() {
        let popcntRaxRbx: [UInt8] = [0xF3, 0x48, 0x0F, 0xB8, 0xC3]
        let cases: [(UInt64, UInt64)] = [
            (0, 0), (~0, 64), (1, 1), (0x8000_0000_0000_0001, 2), (0x0F0F_0000_FFFF_0001, 25),
        ]
        for (source, count) in cases {
            let before = makeRegisters(rflags: dirtyFlags, [Reg.rbx: source])
            var expected = before
            expected.gpr[Reg.rax] = count
            expected.rip = kernelRIP + 5
            expected.rflags = kept | (source == 0 ? Flag.zf : 0)
            XCTAssertEqual(fixup(popcntRaxRbx, before), .resume(expected), "popcnt of \(hex(source))")
        }
    }

    func testPopcnt32ZeroExtends() {
        let before = makeRegisters(rflags: dirtyFlags, [Reg.rax: 0xDEAD_BEEF_DEAD_BEEF, Reg.rcx: 0xFFFF_FFFF_0000_0003])
        var expected = before
        expected.gpr[Reg.rax] = 2
        expected.rip = kernelRIP + 4
        expected.rflags = kept
        XCTAssertEqual(fixup([0xF3, 0x0F, 0xB8, 0xC1], before), .resume(expected))
    }

    func testPopcnt32OfZeroLowHalfSetsZF() {
        let before = makeRegisters([Reg.rcx: 0xFFFF_FFFF_0000_0000])
        let after = resumed(fixup([0xF3, 0x0F, 0xB8, 0xC1], before))
        XCTAssertEqual(after?.gpr[Reg.rax], 0)
        XCTAssertEqual(after?.rflags, 0x2 | Flag.zf)
    }

    func testPopcnt16KeepsUpperBits() {
        let before = makeRegisters(rflags: dirtyFlags, [Reg.rax: 0x1234_5678_9ABC_DEF0, Reg.rcx: 0xFFFF_FFFF_FFFF_0007])
        var expected = before
        expected.gpr[Reg.rax] = 0x1234_5678_9ABC_0003
        expected.rip = kernelRIP + 5
        expected.rflags = kept
        XCTAssertEqual(fixup([0x66, 0xF3, 0x0F, 0xB8, 0xC1], before), .resume(expected))
        // The mandatory prefix may also come first.
        XCTAssertEqual(fixup([0xF3, 0x66, 0x0F, 0xB8, 0xC1], before), .resume(expected))
    }

    func testRexWOverrides66() {
        let before = makeRegisters([Reg.rcx: ~0])
        XCTAssertEqual(resumed(fixup([0x66, 0xF3, 0x48, 0x0F, 0xB8, 0xC1], before))?.gpr[Reg.rax], 64)
    }

    func testPopcntWithExtendedRegisters() {
        // REX.WRB: popcnt r9, r10
        let before = makeRegisters([Reg.r9: 0x55, Reg.r10: 0xF0F0_F0F0_F0F0_F0F0])
        var expected = before
        expected.gpr[Reg.r9] = 32
        expected.rip = kernelRIP + 5
        XCTAssertEqual(fixup([0xF3, 0x4D, 0x0F, 0xB8, 0xCA], before), .resume(expected))
        // REX.B only: popcnt eax, r10d
        let after = resumed(fixup([0xF3, 0x41, 0x0F, 0xB8, 0xC2], before))
        XCTAssertEqual(after?.gpr[Reg.rax], 16)
        XCTAssertEqual(after?.gpr[Reg.r10], before.gpr[Reg.r10])
        // REX.R only: popcnt r9d, edx
        let after2 = resumed(fixup([0xF3, 0x44, 0x0F, 0xB8, 0xCA], makeRegisters([Reg.rdx: 0x7])))
        XCTAssertEqual(after2?.gpr[Reg.r9], 3)
    }

    func testRexBeforeALegacyPrefixIsIgnored() {
        // 48 F3 0F B8 C3: the REX is cancelled by the F3 after it: popcnt eax, ebx.
        let after = resumed(fixup([0x48, 0xF3, 0x0F, 0xB8, 0xC3], makeRegisters([Reg.rbx: ~0])))
        XCTAssertEqual(after?.gpr[Reg.rax], 32)
        XCTAssertEqual(after?.rip, kernelRIP + 5)
    }

    func testTrailingBytesDoNotChangeTheLength() {
        let instruction: [UInt8] = [0xF3, 0x48, 0x0F, 0xB8, 0x84, 0x24, 0x00, 0x01, 0x00, 0x00]
        let registers = makeRegisters([Reg.rsp: 0xFFFF_C900_0000_0F00])
        let memory = RecordingMemory([0xFFFF_C900_0000_1000: 0xFF])
        let plain = fixup(instruction, registers, memory: memory)
        for garbage: [[UInt8]] in [[[0x90]], [[0x0F, 0xB8, 0x05, 0xFF, 0xFF]], [[0xCC, 0xCC, 0xCC, 0xCC, 0xCC]]] {
            XCTAssertEqual(fixup(instruction + garbage[0], registers, memory: memory), plain)
        }
        XCTAssertEqual(resumed(plain)?.rip, kernelRIP + 10)
    }

    func testWithoutF3TheseAreOtherInstructions() throws {
        for (bytes, name) in [([UInt8]([0x0F, 0xB8, 0xC3]), "jmpe"), ([0x0F, 0xBC, 0xC3], "bsf"), ([0x0F, 0xBD, 0xC3], "bsr")] {
            let message = try XCTUnwrap(refusal(fixup(bytes)))
            XCTAssertTrue(message.contains("(\(name))"), message)
        }
        XCTAssertNotNil(refusal(fixup([0xF2, 0xF3, 0x0F, 0xB8, 0xC3])), "F2 and F3 together")
        XCTAssertNotNil(refusal(fixup([0xF0, 0xF3, 0x0F, 0xB8, 0x03], memory: RecordingMemory())), "lock")
    }

    // MARK: lzcnt / tzcnt

    func testLzcnt() {
        // (instruction, source, result, CF, ZF)
        let lzcnt64: [UInt8] = [0xF3, 0x48, 0x0F, 0xBD, 0xC3]
        let lzcnt32: [UInt8] = [0xF3, 0x0F, 0xBD, 0xC3]
        let lzcnt16: [UInt8] = [0x66, 0xF3, 0x0F, 0xBD, 0xC3]
        let cases: [([UInt8], UInt64, UInt64, Bool, Bool)] = [
            (lzcnt64, 1, 63, false, false),
            (lzcnt64, 0, 64, true, false),
            (lzcnt64, 0x8000_0000_0000_0000, 0, false, true),
            (lzcnt64, 0x0000_1000_0000_0000, 19, false, false),
            (lzcnt32, 0xFFFF_FFFF_0000_0001, 31, false, false),
            (lzcnt32, 0x1_0000_0000, 32, true, false),
            (lzcnt32, 0x8000_0000, 0, false, true),
            (lzcnt16, 0xFFFF_FFFF_FFFF_00FF, 8, false, false),
            (lzcnt16, 0xFFFF_FFFF_FFFF_0000, 16, true, false),
        ]
        check(cases, opcodeName: "lzcnt")
    }

    func testTzcnt() {
        let tzcnt64: [UInt8] = [0xF3, 0x48, 0x0F, 0xBC, 0xC3]
        let tzcnt32: [UInt8] = [0xF3, 0x0F, 0xBC, 0xC3]
        let tzcnt16: [UInt8] = [0x66, 0xF3, 0x0F, 0xBC, 0xC3]
        let cases: [([UInt8], UInt64, UInt64, Bool, Bool)] = [
            (tzcnt64, 8, 3, false, false),
            (tzcnt64, 0, 64, true, false),
            (tzcnt64, 1, 0, false, true),
            (tzcnt64, 0x8000_0000_0000_0000, 63, false, false),
            (tzcnt32, 0xFFFF_FFFF_0000_0000, 32, true, false),
            (tzcnt32, 0x8000_0000, 31, false, false),
            (tzcnt16, 0xFFFF_FFFF_FFFF_0000, 16, true, false),
            (tzcnt16, 0x0000_0000_0001_0100, 8, false, false),
        ]
        check(cases, opcodeName: "tzcnt")
    }

    private func check(_ cases: [([UInt8], UInt64, UInt64, Bool, Bool)], opcodeName: String) {
        for (bytes, source, result, cf, zf) in cases {
            let before = makeRegisters(rflags: dirtyFlags, [Reg.rax: 0xAAAA_BBBB_CCCC_DDDD, Reg.rbx: source])
            var expected = before
            expected.rip = kernelRIP + UInt64(bytes.count)
            expected.gpr[Reg.rax] = bytes.first == 0x66 ? (0xAAAA_BBBB_CCCC_0000 | result) : result
            expected.rflags = kept | (cf ? Flag.cf : 0) | (zf ? Flag.zf : 0)
            XCTAssertEqual(fixup(bytes, before), .resume(expected), "\(opcodeName) \(bytes) of \(hex(source))")
        }
    }

    // MARK: memory operands (64-bit mode)

    /// Runs `bytes` with memory holding `value` at `address`; checks the one read (address,
    /// size), the result in `destination` and the RIP advance.
    private func checkMemory(
        _ bytes: [UInt8], registers: FixupRegisters, address: UInt64, size: Int, value: UInt64,
        destination: Int = Reg.rax, result: UInt64, length: Int,
        mode: CPUMode = .long64, segmentBases: SegmentBases? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let memory = RecordingMemory([address: value])
        let outcome = fixup(bytes, registers, mode: mode, memory: memory, segmentBases: segmentBases)
        XCTAssertEqual(memory.reads.map { $0.address }, [address], "address read", file: file, line: line)
        XCTAssertEqual(memory.reads.map { $0.size }, [size], "size read", file: file, line: line)
        let after = resumed(outcome, file: file, line: line)
        XCTAssertEqual(after?.gpr[destination], result, "result", file: file, line: line)
        XCTAssertEqual(after.map { $0.rip &- registers.rip }, UInt64(length), "length", file: file, line: line)
    }

    func testPopcntFromRax() {
        // popcnt rax, [rax]
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x00], registers: makeRegisters([Reg.rax: 0xFFFF_8880_0000_1000]),
                    address: 0xFFFF_8880_0000_1000, size: 8, value: 0xFF00_0000_0000_00FF, result: 16, length: 5)
        // popcnt eax, [rax]: 4 bytes
        checkMemory([0xF3, 0x0F, 0xB8, 0x00], registers: makeRegisters([Reg.rax: 0x2000]),
                    address: 0x2000, size: 4, value: 0xFFFF_FFFF, result: 32, length: 4)
        // popcnt ax, [rax]: 2 bytes, upper bits of rax kept
        checkMemory([0x66, 0xF3, 0x0F, 0xB8, 0x00], registers: makeRegisters([Reg.rax: 0x2000]),
                    address: 0x2000, size: 2, value: 0x0101, result: 0x0002, length: 5)
    }

    func testPopcntFromRbpPlusDisp8() {
        // popcnt rax, [rbp-8]
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x45, 0xF8], registers: makeRegisters([Reg.rbp: 0xFFFF_C900_0001_0000]),
                    address: 0xFFFF_C900_0000_FFF8, size: 8, value: 0x7, result: 3, length: 6)
        // [rbp+0x7f]
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x45, 0x7F], registers: makeRegisters([Reg.rbp: 0x1000]),
                    address: 0x107F, size: 8, value: 0x3, result: 2, length: 6)
    }

    func testPopcntFromRspPlusDisp32ViaSIB() {
        // popcnt rax, [rsp+0x100]
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x84, 0x24, 0x00, 0x01, 0x00, 0x00],
                    registers: makeRegisters([Reg.rsp: 0xFFFF_C900_0000_3F00]),
                    address: 0xFFFF_C900_0000_4000, size: 8, value: 0xF, result: 4, length: 10)
        // popcnt rax, [rsp] (SIB, no displacement)
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x04, 0x24], registers: makeRegisters([Reg.rsp: 0x8000]),
                    address: 0x8000, size: 8, value: 1, result: 1, length: 6)
    }

    func testPopcntRIPRelativeIsRelativeToTheNextInstruction() {
        // popcnt rax, [rip+0x10]: 9 bytes, so the address is rip + 9 + 0x10
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x05, 0x10, 0x00, 0x00, 0x00, 0x90, 0x90], registers: makeRegisters(),
                    address: kernelRIP + 9 + 0x10, size: 8, value: 0xFF, result: 8, length: 9)
        // negative displacement, with an extra prefix changing the length: 2E F3 48 0F B8 05 F0 FF FF FF
        checkMemory([0x2E, 0xF3, 0x48, 0x0F, 0xB8, 0x05, 0xF0, 0xFF, 0xFF, 0xFF], registers: makeRegisters(),
                    address: kernelRIP + 10 - 0x10, size: 8, value: 0x3, result: 2, length: 10)
        // REX.B does not turn rm=101 into [r13]: still RIP-relative
        checkMemory([0xF3, 0x49, 0x0F, 0xB8, 0x05, 0x00, 0x00, 0x00, 0x00], registers: makeRegisters(),
                    address: kernelRIP + 9, size: 8, value: 0x1, result: 1, length: 9)
        // with 67: EIP-relative, wrapped to 32 bits
        checkMemory([0x67, 0xF3, 0x48, 0x0F, 0xB8, 0x05, 0x00, 0x10, 0x00, 0x00], registers: makeRegisters(rip: 0x1_0000_0000),
                    address: 0x1000 + 10, size: 8, value: 0x1, result: 1, length: 10)
    }

    func testPopcntFromBaseIndexScaleDisplacement() {
        // popcnt rdx, [rax+rcx*8+0x20]
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x54, 0xC8, 0x20], registers: makeRegisters([Reg.rax: 0x10_0000, Reg.rcx: 3]),
                    address: 0x10_0000 + 24 + 0x20, size: 8, value: 0x1F, destination: Reg.rdx, result: 5, length: 7)
        // popcnt rdx, [rax+rcx*8+0x12345678] (disp32)
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x94, 0xC8, 0x78, 0x56, 0x34, 0x12],
                    registers: makeRegisters([Reg.rax: 0x10_0000, Reg.rcx: 3]),
                    address: 0x10_0000 + 24 + 0x1234_5678, size: 8, value: 0x1, destination: Reg.rdx, result: 1, length: 10)
        // popcnt rax, [r10+r9*8] (REX.X and REX.B)
        checkMemory([0xF3, 0x4B, 0x0F, 0xB8, 0x04, 0xCA], registers: makeRegisters([Reg.r10: 0x5000, Reg.r9: 2]),
                    address: 0x5010, size: 8, value: 0x3, result: 2, length: 6)
        // popcnt rax, [r12+rsi*2]: base r12 needs a SIB just like rsp
        checkMemory([0xF3, 0x49, 0x0F, 0xB8, 0x04, 0x74], registers: makeRegisters([Reg.r12: 0x5000, Reg.rsi: 0x10]),
                    address: 0x5020, size: 8, value: 0x3, result: 2, length: 6)
        // popcnt rax, [r13]: mod=01 with disp8 0 (r13 as base cannot use mod=00)
        checkMemory([0xF3, 0x49, 0x0F, 0xB8, 0x45, 0x00], registers: makeRegisters([Reg.r13: 0x6000]),
                    address: 0x6000, size: 8, value: 0x3, result: 2, length: 6)
        // index 100 means no index (the scale, 8 here, is then ignored); REX.X makes it r12*8
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x04, 0xE0], registers: makeRegisters([Reg.rax: 0x7000]),
                    address: 0x7000, size: 8, value: 0x3, result: 2, length: 6)
        checkMemory([0xF3, 0x4A, 0x0F, 0xB8, 0x04, 0xE0], registers: makeRegisters([Reg.rax: 0x7000, Reg.r12: 0x100]),
                    address: 0x7800, size: 8, value: 0x3, result: 2, length: 6)
    }

    func testSIBWithoutBaseIsAbsoluteDisp32() {
        // popcnt rax, [0x1000] (SIB base 101, mod 00), also with REX.B
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00], registers: makeRegisters(),
                    address: 0x1000, size: 8, value: 0x1, result: 1, length: 10)
        checkMemory([0xF3, 0x49, 0x0F, 0xB8, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00], registers: makeRegisters(),
                    address: 0x1000, size: 8, value: 0x1, result: 1, length: 10)
        // negative disp32 sign-extends: [0xffffffff80000000]
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x04, 0x25, 0x00, 0x00, 0x00, 0x80], registers: makeRegisters(),
                    address: 0xFFFF_FFFF_8000_0000, size: 8, value: 0x1, result: 1, length: 10)
        // [rcx*4+0x40], no base
        checkMemory([0xF3, 0x48, 0x0F, 0xB8, 0x04, 0x8D, 0x40, 0x00, 0x00, 0x00], registers: makeRegisters([Reg.rcx: 0x100]),
                    address: 0x440, size: 8, value: 0x1, result: 1, length: 10)
    }

    func testAddressSizeOverrideWrapsTo32Bits() {
        // 67: popcnt rax, [eax]
        checkMemory([0x67, 0xF3, 0x48, 0x0F, 0xB8, 0x00], registers: makeRegisters([Reg.rax: 0xFFFF_FFFF_0000_1000]),
                    address: 0x1000, size: 8, value: 0x1, result: 1, length: 6)
        // 67: [eax-1] with eax 0 wraps to 0xffffffff
        checkMemory([0x67, 0xF3, 0x48, 0x0F, 0xB8, 0x40, 0xFF], registers: makeRegisters([Reg.rax: 0x1_0000_0000]),
                    address: 0xFFFF_FFFF, size: 8, value: 0x1, result: 1, length: 7)
    }

    func testLzcntTzcntFromMemory() {
        // lzcnt ecx, [rdi+4]
        checkMemory([0xF3, 0x0F, 0xBD, 0x4F, 0x04], registers: makeRegisters([Reg.rdi: 0x3000]),
                    address: 0x3004, size: 4, value: 0x0001_0000, destination: Reg.rcx, result: 15, length: 5)
        // tzcnt r8, [rsi]
        checkMemory([0xF3, 0x4C, 0x0F, 0xBC, 0x06], registers: makeRegisters([Reg.rsi: 0x3000]),
                    address: 0x3000, size: 8, value: 0x100, destination: Reg.r8, result: 8, length: 5)
    }

    // MARK: segments and failures

    func testFSAndGSNeedSegmentBases() throws {
        let registers = makeRegisters([Reg.rax: 0x18])
        let memory = RecordingMemory([0xFFFF_8880_7FC0_0018: 0xF])
        for prefix: UInt8 in [0x64, 0x65] {
            let message = try XCTUnwrap(refusal(fixup([prefix, 0xF3, 0x48, 0x0F, 0xB8, 0x00], registers, memory: memory)))
            XCTAssertTrue(message.contains("segment bases"), message)
            XCTAssertTrue(message.contains("0xffffffff81001234"), message)
        }
        XCTAssertTrue(memory.reads.isEmpty)
        // With bases: GS base + effective address.
        checkMemory([0x65, 0xF3, 0x48, 0x0F, 0xB8, 0x00], registers: registers,
                    address: 0xFFFF_8880_7FC0_0018, size: 8, value: 0xF, result: 4, length: 6,
                    segmentBases: SegmentBases(fs: 0x1234, gs: 0xFFFF_8880_7FC0_0000))
        // Other segment bases are ignored in 64-bit mode.
        checkMemory([0x2E, 0xF3, 0x48, 0x0F, 0xB8, 0x00], registers: registers,
                    address: 0x18, size: 8, value: 0xF, result: 4, length: 6,
                    segmentBases: SegmentBases(es: 0x1000, cs: 0x1000, ss: 0x1000, ds: 0x1000))
    }

    func testMissingOrFailingMemoryIsRefused() throws {
        let bytes: [UInt8] = [0xF3, 0x48, 0x0F, 0xB8, 0x00]
        let registers = makeRegisters([Reg.rax: 0xDEAD_0000])
        let noReader = try XCTUnwrap(refusal(fixup(bytes, registers, memory: nil)))
        XCTAssertTrue(noReader.contains("0xdead0000"), noReader)
        XCTAssertTrue(noReader.contains("f3 48 0f b8 00 (popcnt)"), noReader)
        let unmapped = RecordingMemory()
        let failed = try XCTUnwrap(refusal(fixup(bytes, registers, memory: unmapped)))
        XCTAssertTrue(failed.contains("0xdead0000"), failed)
        XCTAssertEqual(unmapped.reads.count, 1)
    }

    // MARK: other modes

    func testProtectedModeRegisterForms() {
        // No REX outside 64-bit mode: popcnt eax, ebx
        let after = resumed(fixup([0xF3, 0x0F, 0xB8, 0xC3], makeRegisters(rip: 0x10_0000, [Reg.rbx: 0xFF]), mode: .protected32))
        XCTAssertEqual(after?.gpr[Reg.rax], 8)
        XCTAssertEqual(after?.rip, 0x10_0004)
        // 40 is inc eax there, not a REX: unrecognized
        XCTAssertNotNil(refusal(fixup([0xF3, 0x48, 0x0F, 0xB8, 0xC3], mode: .protected32)))
    }

    func testProtectedModeMemoryUsesSegmentBases() {
        let registers = makeRegisters(rip: 0x10_0000, [Reg.rbx: 0x2000, Reg.rbp: 0x3000])
        // Without segment bases, refused.
        XCTAssertNotNil(refusal(fixup([0xF3, 0x0F, 0xB8, 0x03], registers, mode: .protected32, memory: RecordingMemory())))
        let bases = SegmentBases(es: 0x100, cs: 0x200, ss: 0x300, ds: 0x400, fs: 0x500, gs: 0x600)
        // popcnt eax, [ebx]: DS
        checkMemory([0xF3, 0x0F, 0xB8, 0x03], registers: registers, address: 0x2400, size: 4, value: 0x3,
                    result: 2, length: 4, mode: .protected32, segmentBases: bases)
        // popcnt eax, [ebp+8]: SS by default
        checkMemory([0xF3, 0x0F, 0xB8, 0x45, 0x08], registers: registers, address: 0x3308, size: 4, value: 0x3,
                    result: 2, length: 5, mode: .protected32, segmentBases: bases)
        // popcnt eax, fs:[ebx]
        checkMemory([0x64, 0xF3, 0x0F, 0xB8, 0x03], registers: registers, address: 0x2500, size: 4, value: 0x3,
                    result: 2, length: 5, mode: .protected32, segmentBases: bases)
        // popcnt eax, [0x1000]: mod 00 rm 101 is absolute disp32 outside 64-bit mode
        checkMemory([0xF3, 0x0F, 0xB8, 0x05, 0x00, 0x10, 0x00, 0x00], registers: registers, address: 0x1400, size: 4,
                    value: 0x3, result: 2, length: 8, mode: .protected32, segmentBases: bases)
    }

    func testRealModeUses16BitForms() {
        let registers = makeRegisters(rip: 0x7C00, [Reg.rax: 0xAAAA_5555, Reg.rbx: 0x0F, Reg.rbp: 0x100, Reg.rsi: 0x20])
        // popcnt ax, bx: 16-bit by default
        let after = resumed(fixup([0xF3, 0x0F, 0xB8, 0xC3], registers, mode: .real16))
        XCTAssertEqual(after?.gpr[Reg.rax], 0xAAAA_0004)
        XCTAssertEqual(after?.rip, 0x7C04)
        let bases = SegmentBases(ss: 0x2_0000, ds: 0x1_0000)
        // popcnt ax, [bp+4]: SS
        checkMemory([0xF3, 0x0F, 0xB8, 0x46, 0x04], registers: registers, address: 0x2_0104, size: 2, value: 0x3,
                    result: 0xAAAA_0002, length: 5, mode: .real16, segmentBases: bases)
        // popcnt ax, [bx+si]: DS
        checkMemory([0xF3, 0x0F, 0xB8, 0x00], registers: registers, address: 0x1_002F, size: 2, value: 0x3,
                    result: 0xAAAA_0002, length: 4, mode: .real16, segmentBases: bases)
        // popcnt ax, [0x1234]: mod 00 rm 110 is disp16
        checkMemory([0xF3, 0x0F, 0xB8, 0x06, 0x34, 0x12], registers: registers, address: 0x1_1234, size: 2, value: 0x3,
                    result: 0xAAAA_0002, length: 6, mode: .real16, segmentBases: bases)
        // 66: popcnt eax, [bx+si]: 32-bit operand, zero-extended
        checkMemory([0x66, 0xF3, 0x0F, 0xB8, 0x00], registers: registers, address: 0x1_002F, size: 4, value: 0xFFFF_FFFF,
                    result: 32, length: 5, mode: .real16, segmentBases: bases)
        // 67: 32-bit addressing, popcnt ax, [ebx+esi*2]
        checkMemory([0x67, 0xF3, 0x0F, 0xB8, 0x04, 0x73], registers: registers, address: 0x1_004F, size: 2, value: 0x1,
                    result: 0xAAAA_0001, length: 6, mode: .real16, segmentBases: bases)
    }
}
