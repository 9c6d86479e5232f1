import XCTest
import TestSupport
@testable import InstructionFixup

let kernelRIP: UInt64 = 0xffff_ffff_8100_1234

/// Registers with a distinct value in each GPR, so any unintended change shows.
func makeRegisters(rip: UInt64 = kernelRIP, rflags: UInt64 = 0x2, _ set: [Int: UInt64] = [:]) -> FixupRegisters {
    var gpr = (0..<16).map { UInt64(0x1111_0000_0000_0000) | UInt64($0) << 8 | UInt64($0) }
    for (index, value) in set {
        gpr[index] = value
    }
    return FixupRegisters(gpr: gpr, rip: rip, rflags: rflags)
}

enum Reg {
    static let rax = 0, rcx = 1, rdx = 2, rbx = 3, rsp = 4, rbp = 5, rsi = 6, rdi = 7
    static let r8 = 8, r9 = 9, r10 = 10, r11 = 11, r12 = 12, r13 = 13, r14 = 14, r15 = 15
}

enum Flag {
    static let cf: UInt64 = 1 << 0
    static let pf: UInt64 = 1 << 2
    static let af: UInt64 = 1 << 4
    static let zf: UInt64 = 1 << 6
    static let sf: UInt64 = 1 << 7
    static let `if`: UInt64 = 1 << 9
    static let of: UInt64 = 1 << 11
    static let ac: UInt64 = 1 << 18
    static let arithmetic: UInt64 = cf | pf | af | zf | sf | of
}

/// Memory that records every read and answers from a dictionary (little-endian values).
final class RecordingMemory: GuestLinearMemory {
    var contents: [UInt64: UInt64]
    private(set) var reads: [(address: UInt64, size: Int)] = []

    init(_ contents: [UInt64: UInt64] = [:]) {
        self.contents = contents
    }

    func readLinear(_ address: UInt64, size: Int) -> UInt64? {
        reads.append((address, size))
        guard let value = contents[address] else { return nil }
        return size == 8 ? value : value & ((UInt64(1) << UInt64(size * 8)) - 1)
    }
}

func fixup(
    _ bytes: [UInt8], _ registers: FixupRegisters = makeRegisters(), mode: CPUMode = .long64,
    memory: (any GuestLinearMemory)? = nil, segmentBases: SegmentBases? = nil
) -> FixupOutcome {
    InstructionFixup.complete(bytes: bytes, registers: registers, mode: mode, memory: memory, segmentBases: segmentBases)
}

/// The registers of a `.resume` outcome, or a failure.
func resumed(_ outcome: FixupOutcome, file: StaticString = #filePath, line: UInt = #line) -> FixupRegisters? {
    guard case .resume(let registers) = outcome else {
        XCTFail("expected .resume, got \(outcome)", file: file, line: line)
        return nil
    }
    return registers
}

/// The message of an `.unsupported` outcome, or a failure.
func refusal(_ outcome: FixupOutcome, file: StaticString = #filePath, line: UInt = #line) -> String? {
    guard case .unsupported(let message) = outcome else {
        XCTFail("expected .unsupported, got \(outcome)", file: file, line: line)
        return nil
    }
    return message
}

