/// How a vCPU must be set up to enter a loaded kernel. The boot loaders write every
/// structure the entry needs (GDT, page tables, zero page or start info) into guest memory
/// and return this; the Machine layer turns it into KVM register state.
public struct BootEntry: Equatable, Sendable {
    public enum Mode: Equatable, Sendable {
        /// 64-bit long mode, paging on with identity-mapped page tables at `pml4`
        /// (Linux boot protocol 64-bit entry: RSI = zero page).
        case long64(pml4: UInt64)
        /// 32-bit protected mode, flat segments, paging off (PVH entry: EBX = start info).
        case protected32
    }

    public var mode: Mode
    /// Instruction pointer at entry.
    public var rip: UInt64
    /// Initial general-purpose registers the protocol defines (others are zero).
    public var rsi: UInt64 = 0
    public var rbx: UInt64 = 0
    public var rsp: UInt64 = 0
    /// GDT svm wrote into guest memory: base and limit (bytes - 1). Code selector 0x10,
    /// data selector 0x18, as the Linux boot protocol expects (__BOOT_CS/__BOOT_DS).
    public var gdtBase: UInt64
    public var gdtLimit: UInt16
    public static let codeSelector: UInt16 = 0x10
    public static let dataSelector: UInt16 = 0x18

    public init(mode: Mode, rip: UInt64, rsi: UInt64 = 0, rbx: UInt64 = 0, rsp: UInt64 = 0,
                gdtBase: UInt64, gdtLimit: UInt16) {
        self.mode = mode
        self.rip = rip
        self.rsi = rsi
        self.rbx = rbx
        self.rsp = rsp
        self.gdtBase = gdtBase
        self.gdtLimit = gdtLimit
    }
}
