// The instruction decoder (Sources/InstructionFixup): guest code bytes that a nested KVM
// could not emulate, decoded and completed by svm.
@testable import InstructionFixup

/// Every address readable except one in sixteen, with a value derived from the address.
struct FuzzLinearMemory: GuestLinearMemory {
    func readLinear(_ address: UInt64, size: Int) -> UInt64? {
        var z = address &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 31)) &* 0xBF58_476D_1CE4_E5B9
        guard z & 0xF != 0 else { return nil }
        return size == 8 ? z : z & ((UInt64(1) << UInt64(size * 8)) - 1)
    }
}

enum InstructionTarget {
    static let target = FuzzTarget(
        name: "instruction",
        covers: "InstructionFixup.complete (x86 decoder and semantics): RIP moves by the decoded length (1-15, within the fetched bytes); a refusal names the RIP",
        seeds: { [
            [0x00, 0x0F, 0xB8, 0xC3],               // popcnt eax, ebx
            [0x00, 0xF3, 0x48, 0x0F, 0xBC, 0x44, 0x24, 0x08],  // tzcnt rax, [rsp+8]
            [0x01, 0x66, 0x0F, 0xBD, 0x05, 0x10, 0x20, 0x30, 0x40],
            [0x02, 0xCC], [0x04, 0x65, 0x48, 0x8B, 0x04, 0x25, 0x28, 0, 0, 0],
        ] },
        run: { bytes in
            guard let control = bytes.first else { return }
            // control: mode (bits 0-1), memory (bit 2), segment bases (bit 3).
            let mode: CPUMode = [.long64, .protected32, .real16, .long64][Int(control & 3)]
            let code = Array(bytes.dropFirst().prefix(16))
            var gpr: [UInt64] = []
            var seed = UInt64(control) &+ 0x1234_5678
            for _ in 0..<16 {
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                gpr.append(seed)
            }
            let rip: UInt64 = mode == .real16 ? 0x1000 : (mode == .protected32 ? 0x10_0000 : 0xFFFF_FFFF_8100_0000)
            let registers = FixupRegisters(gpr: gpr, rip: rip, rflags: 0x202)
            let bases: SegmentBases? = control & 8 != 0 ? SegmentBases(fs: 0x7000_0000, gs: 0xFFFF_8880_0000_0000) : nil
            let outcome = InstructionFixup.complete(bytes: code, registers: registers, mode: mode,
                                                    memory: control & 4 != 0 ? nil : FuzzLinearMemory(), segmentBases: bases)
            let after: FixupRegisters
            switch outcome {
            case let .resume(r): after = r
            case let .resumeInjecting(r, vector):
                fuzzCheck(vector == 3, "injects vector \(vector)")
                after = r
            case let .unsupported(message):
                fuzzCheck(message.hasPrefix("guest instruction at rip 0x") && !message.contains("\n"), "refusal: \(message)")
                return
            }
            let advance = after.rip &- rip
            fuzzCheck((1...15).contains(advance) && advance <= UInt64(code.count), "\(code) moved RIP by \(advance)")
            fuzzCheck(after.gpr.count == 16, "\(after.gpr.count) registers back")
            // Bytes after the instruction never matter.
            let again = InstructionFixup.complete(bytes: Array(code.prefix(Int(advance))), registers: registers, mode: mode,
                                                  memory: control & 4 != 0 ? nil : FuzzLinearMemory(), segmentBases: bases)
            fuzzCheck(again == outcome, "\(code): the bytes after the instruction changed the outcome")
        })
}
