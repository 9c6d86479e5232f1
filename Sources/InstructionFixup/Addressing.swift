// From a decoded memory operand to the guest linear address to read.

/// Why an instruction could not be completed; becomes the tail of the `.unsupported` message.
struct Refusal: Error, Sendable {
    let reason: String?
    init(_ reason: String?) { self.reason = reason }
}

func hex(_ value: UInt64) -> String {
    "0x" + String(value, radix: 16)
}

func mask(bits: Int) -> UInt64 {
    bits >= 64 ? ~0 : (UInt64(1) << UInt64(bits)) - 1
}

enum Addressing {
    /// base + index * scale + displacement (+ next RIP when RIP-relative), wrapped to the
    /// address size. Upper register bits beyond the address size do not matter: the sum is
    /// taken modulo 2^addressSize.
    static func effectiveAddress(
        _ operand: MemoryOperand, addressSize: Int, registers: FixupRegisters, nextRIP: UInt64
    ) -> UInt64 {
        var address: UInt64 = operand.ripRelative ? nextRIP : 0
        if let base = operand.base {
            address &+= registers.gpr[base]
        }
        if let index = operand.index {
            address &+= registers.gpr[index] &<< UInt64(operand.scaleShift)
        }
        address &+= UInt64(bitPattern: operand.displacement)
        return address & mask(bits: addressSize)
    }

    /// Adds the segment base. In 64-bit mode only FS and GS have bases; elsewhere every
    /// segment may, and the caller must supply them. Segment limits and access rights are not
    /// checked (a fault the CPU would raise there is not reproduced).
    static func linearAddress(
        effective: UInt64, segment: Segment, mode: CPUMode, segmentBases: SegmentBases?
    ) throws(Refusal) -> UInt64 {
        if mode == .long64 && segment != .fs && segment != .gs {
            return effective
        }
        guard let bases = segmentBases else {
            // The FS/GS bases (per-CPU data, TLS) and, outside 64-bit mode, every segment base
            // live in KVM's sregs, which the caller did not pass: using 0 would read the wrong
            // memory silently.
            if mode == .long64 {
                throw Refusal("\(segment == .fs ? "FS" : "GS")-relative memory operand and no segment bases supplied")
            }
            throw Refusal("memory operand outside 64-bit mode and no segment bases supplied")
        }
        let base: UInt64
        switch segment {
        case .es: base = bases.es
        case .cs: base = bases.cs
        case .ss: base = bases.ss
        case .ds: base = bases.ds
        case .fs: base = bases.fs
        case .gs: base = bases.gs
        }
        let linear = base &+ effective
        // Outside 64-bit mode linear addresses are 32 bits wide.
        return mode == .long64 ? linear : linear & 0xFFFF_FFFF
    }
}
