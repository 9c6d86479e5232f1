// What each completed instruction does. Everything not matched here is refused.

enum RFLAGS {
    static let cf: UInt64 = 1 << 0
    static let pf: UInt64 = 1 << 2
    static let af: UInt64 = 1 << 4
    static let zf: UInt64 = 1 << 6
    static let sf: UInt64 = 1 << 7
    static let of: UInt64 = 1 << 11
    static let ac: UInt64 = 1 << 18
    /// The arithmetic flags popcnt/lzcnt/tzcnt define or leave undefined (cleared here).
    static let arithmetic: UInt64 = cf | pf | af | zf | sf | of
}

enum Semantics {
    static func execute(
        _ instruction: DecodedInstruction, length: Int, name: String?, registers: FixupRegisters,
        mode: CPUMode, memory: (any GuestLinearMemory)?, segmentBases: SegmentBases?
    ) throws(Refusal) -> FixupOutcome {
        if let name, Mnemonics.isXSAVEFamily(name) {
            throw Refusal("XSAVE-family instructions cannot be completed by svm; start the guest "
                + "with `noxsave` on its kernel command line (svm normally adds it on these hosts, "
                + "so this guest kernel ignored or overrode it)")
        }

        let p = instruction.prefixes
        var next = registers
        next.rip = nextRIP(registers.rip, length: length, mode: mode)

        switch (instruction.map, instruction.opcode) {
        case (.primary, 0xCC):  // int3: #BP is a trap, delivered with RIP after the instruction
            try refuseLock(p)
            return .resumeInjecting(next, vector: 3)

        case (.primary, 0x9B):  // fwait: no x87 state to wait for that svm could see
            try refuseLock(p)
            return .resume(next)

        case (.twoByte, 0x01) where instruction.modrm?.byte == 0xCA || instruction.modrm?.byte == 0xCB:
            // clac / stac. 66/F2/F3 in front of 0F 01 select other instructions in this group
            // on newer CPUs, so only the plain encoding is completed.
            try refuseLock(p)
            guard !p.operandSizeOverride && !p.rep && !p.repne else {
                throw Refusal("unexpected 66/F2/F3 prefix")
            }
            if instruction.modrm?.byte == 0xCA {
                next.rflags &= ~RFLAGS.ac
            } else {
                next.rflags |= RFLAGS.ac
            }
            return .resume(next)

        case (.twoByte, 0xB8), (.twoByte, 0xBC), (.twoByte, 0xBD):
            // popcnt / tzcnt / lzcnt need F3; without it they are jmpe / bsf / bsr.
            guard p.rep, !p.repne, let modrm = instruction.modrm else { throw Refusal(nil) }
            try refuseLock(p)
            let kind: BitCount = instruction.opcode == 0xB8 ? .popcnt : (instruction.opcode == 0xBC ? .tzcnt : .lzcnt)
            let size = instruction.operandSize
            let source: UInt64
            if let operand = modrm.memory {
                source = try readMemoryOperand(
                    operand, instruction: instruction, registers: registers, nextRIP: next.rip,
                    mode: mode, memory: memory, segmentBases: segmentBases)
            } else {
                source = registers.gpr[modrm.rm]
            }
            let (result, flags) = kind.evaluate(source & mask(bits: size), bits: size)
            next.rflags = (registers.rflags & ~RFLAGS.arithmetic) | flags
            next.gpr[modrm.reg] = write(result, bits: size, into: registers.gpr[modrm.reg])
            return .resume(next)

        default:
            throw Refusal(nil)
        }
    }

    private static func refuseLock(_ prefixes: Prefixes) throws(Refusal) {
        if prefixes.lock {
            throw Refusal("lock prefix (the CPU would raise #UD)")
        }
    }

    /// RIP after the instruction; the instruction pointer is 16 or 32 bits wide outside 64-bit mode.
    static func nextRIP(_ rip: UInt64, length: Int, mode: CPUMode) -> UInt64 {
        let next = rip &+ UInt64(length)
        switch mode {
        case .long64: return next
        case .protected32: return next & 0xFFFF_FFFF
        case .real16: return next & 0xFFFF
        }
    }

    /// A register write of `bits`: 32-bit writes zero-extend, 16-bit writes keep bits 16...63.
    static func write(_ value: UInt64, bits: Int, into old: UInt64) -> UInt64 {
        switch bits {
        case 16: return (old & ~0xFFFF) | (value & 0xFFFF)
        case 32: return value & 0xFFFF_FFFF
        default: return value
        }
    }

    private static func readMemoryOperand(
        _ operand: MemoryOperand, instruction: DecodedInstruction, registers: FixupRegisters,
        nextRIP: UInt64, mode: CPUMode, memory: (any GuestLinearMemory)?, segmentBases: SegmentBases?
    ) throws(Refusal) -> UInt64 {
        let effective = Addressing.effectiveAddress(
            operand, addressSize: instruction.addressSize, registers: registers, nextRIP: nextRIP)
        let segment = instruction.prefixes.segment ?? operand.defaultSegment
        let linear = try Addressing.linearAddress(
            effective: effective, segment: segment, mode: mode, segmentBases: segmentBases)
        guard let memory else {
            throw Refusal("memory operand at \(hex(linear)) and no guest memory access supplied")
        }
        let size = instruction.operandSize / 8
        guard let value = memory.readLinear(linear, size: size) else {
            // The CPU would raise #PF here; svm does not reproduce page faults.
            throw Refusal("memory operand at \(hex(linear)) (\(size) bytes) could not be read")
        }
        return value
    }
}

enum BitCount {
    case popcnt, lzcnt, tzcnt

    /// The result and the arithmetic flags for a `bits`-wide source (already masked).
    /// popcnt: ZF iff source == 0, the other five cleared. lzcnt/tzcnt: CF iff source == 0,
    /// ZF iff result == 0, the others (undefined) cleared.
    func evaluate(_ source: UInt64, bits: Int) -> (result: UInt64, flags: UInt64) {
        switch self {
        case .popcnt:
            return (UInt64(source.nonzeroBitCount), source == 0 ? RFLAGS.zf : 0)
        case .lzcnt, .tzcnt:
            let result: UInt64
            if source == 0 {
                result = UInt64(bits)
            } else if self == .lzcnt {
                result = UInt64(source.leadingZeroBitCount - (64 - bits))
            } else {
                result = UInt64(source.trailingZeroBitCount)
            }
            return (result, (source == 0 ? RFLAGS.cf : 0) | (result == 0 ? RFLAGS.zf : 0))
        }
    }
}
