// Inputs and outputs of the instruction fix-up. Pure values: no KVM types, so the decision
// logic can be tested without a VM. The Machine layer gathers these with KVM ioctls and
// applies the outcome.

/// The vCPU state the fix-up may read and change.
public struct FixupRegisters: Equatable, Sendable {
    /// General purpose registers in the x86 encoding order
    /// (0 = rax, 1 = rcx, 2 = rdx, 3 = rbx, 4 = rsp, 5 = rbp, 6 = rsi, 7 = rdi, 8...15 = r8..r15).
    /// Must hold exactly 16 values; `InstructionFixup.complete` refuses anything else.
    public var gpr: [UInt64]
    public var rip: UInt64
    public var rflags: UInt64

    public init(gpr: [UInt64], rip: UInt64, rflags: UInt64) {
        self.gpr = gpr
        self.rip = rip
        self.rflags = rflags
    }
}

/// The default operand and address size of the code being run, which decoding depends on.
///
/// - `long64`: IA-32e mode (EFER.LMA) with a 64-bit code segment (CS.L = 1).
/// - `protected32`: CS.D/B = 1 (32-bit protected mode, or compatibility mode under IA-32e).
/// - `real16`: everything with 16-bit defaults: real mode (CR0.PE = 0), virtual-8086 mode,
///   and 16-bit protected-mode code segments (CS.D/B = 0).
public enum CPUMode: Sendable {
    case long64, protected32, real16
}

/// Reads operands that an instruction names in guest memory.
public protocol GuestLinearMemory {
    /// Reads `size` bytes (1, 2, 4, 8) at a guest linear (virtual) address, as a little-endian
    /// value zero-extended to 64 bits; nil if unmapped.
    func readLinear(_ address: UInt64, size: Int) -> UInt64?
}

/// Segment base addresses (from KVM_GET_SREGS), needed to turn an effective address into a
/// linear one outside the flat case. Optional input: see `InstructionFixup.complete`.
public struct SegmentBases: Equatable, Sendable {
    public var es: UInt64
    public var cs: UInt64
    public var ss: UInt64
    public var ds: UInt64
    public var fs: UInt64
    public var gs: UInt64

    public init(es: UInt64 = 0, cs: UInt64 = 0, ss: UInt64 = 0, ds: UInt64 = 0, fs: UInt64 = 0, gs: UInt64 = 0) {
        self.es = es
        self.cs = cs
        self.ss = ss
        self.ds = ds
        self.fs = fs
        self.gs = gs
    }
}

/// What the VMM should do about the instruction.
public enum FixupOutcome: Equatable, Sendable {
    /// Write these registers back and resume.
    case resume(FixupRegisters)
    /// Write these registers back (RIP already past the instruction), then inject exception
    /// `vector` (e.g. 3 for int3 → #BP, a trap: RIP after it) and resume.
    case resumeInjecting(FixupRegisters, vector: UInt8)
    /// Cannot complete: stop the VM with this message, which names the bytes and RIP, e.g.
    /// "guest instruction at rip 0xffffffff81001234 could not be emulated: f3 0f c7 f8 (rdpid)"
    case unsupported(String)
}
