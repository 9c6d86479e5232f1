// Completes, on the VMM side, an instruction that the host's KVM instruction emulator failed
// on (KVM_EXIT_INTERNAL_ERROR, suberror 1), or says why it cannot.

public struct InstructionFixup {
    /// Decides what to do about the instruction at `registers.rip`.
    ///
    /// - Parameters:
    ///   - bytes: the instruction bytes as fetched (KVM hands back up to 15; bytes after the
    ///     instruction are ignored, only the decoded length counts).
    ///   - registers: the vCPU's general purpose registers, RIP and RFLAGS.
    ///   - mode: the default operand/address size of the code segment, see `CPUMode`.
    ///   - memory: reads memory operands; nil refuses every instruction that has one.
    ///   - segmentBases: segment bases from KVM_GET_SREGS. Without them, memory operands are
    ///     completed only in 64-bit mode and only without an FS/GS override (64-bit mode
    ///     ignores the other bases); with them, everywhere.
    /// - Returns: the outcome; never traps, whatever the bytes.
    public static func complete(
        bytes: [UInt8], registers: FixupRegisters, mode: CPUMode,
        memory: (any GuestLinearMemory)?, segmentBases: SegmentBases? = nil
    ) -> FixupOutcome {
        let fetched = Array(bytes.prefix(maximumInstructionLength))
        guard registers.gpr.count == 16 else {
            return .unsupported(message(rip: registers.rip, bytes: fetched, name: nil,
                reason: "internal error: \(registers.gpr.count) general purpose registers given, expected 16"))
        }

        let instruction: DecodedInstruction
        do {
            instruction = try Decoder.decode(fetched, mode: mode)
        } catch {
            let reason: String
            switch error {
            case .empty: reason = "no instruction bytes"
            case .truncated: reason = "truncated: the instruction runs past the fetched bytes"
            case .tooLong: reason = "longer than 15 bytes (the CPU would raise #GP)"
            }
            return .unsupported(message(rip: registers.rip, bytes: fetched, name: nil, reason: reason))
        }

        let name = Mnemonics.name(of: instruction, mode: mode)
        guard let length = instruction.length else {
            // Length not decoded: show everything fetched, and say so.
            let shown = "all fetched bytes shown, the instruction may be shorter"
            return .unsupported(message(rip: registers.rip, bytes: fetched, name: name,
                reason: name == nil ? "unrecognized opcode; " + shown : shown))
        }
        let instructionBytes = Array(fetched.prefix(length))
        do {
            return try Semantics.execute(
                instruction, length: length, name: name, registers: registers, mode: mode,
                memory: memory, segmentBases: segmentBases)
        } catch {
            return .unsupported(message(rip: registers.rip, bytes: instructionBytes, name: name, reason: error.reason))
        }
    }

    /// "guest instruction at rip 0x… could not be emulated: 0f 0b (ud2): reason"
    static func message(rip: UInt64, bytes: [UInt8], name: String?, reason: String?) -> String {
        var text = "guest instruction at rip \(hex(rip)) could not be emulated: "
        text += bytes.map { ($0 < 0x10 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
        if let name { text += " (\(name))" }
        if let reason { text += ": \(reason)" }
        return text
    }
}
