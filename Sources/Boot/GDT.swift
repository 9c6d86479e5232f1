import Memory

/// The GDT the boot protocols require: flat 4 GiB code at selector 0x10 (__BOOT_CS) and
/// flat data at 0x18 (__BOOT_DS). Entry 0 is the mandatory null descriptor; 0x08 is unused
/// but kept so the selectors match Linux's own boot GDT.
enum GDT {
    /// Present, DPL 0, execute/read, L=1 (64-bit code), G=1, limit 0xFFFFF.
    static let code64: UInt64 = 0x00AF_9B00_0000_FFFF
    /// Present, DPL 0, execute/read, D=1 (32-bit code), G=1, limit 0xFFFFF.
    static let code32: UInt64 = 0x00CF_9B00_0000_FFFF
    /// Present, DPL 0, read/write, B=1, G=1, limit 0xFFFFF.
    static let data: UInt64 = 0x00CF_9300_0000_FFFF

    static func entries(for mode: BootEntry.Mode) -> [UInt64] {
        switch mode {
        case .long64: return [0, 0, code64, data]
        case .protected32: return [0, 0, code32, data]
        }
    }

    /// Writes the GDT at BootLayout.gdt; returns (base, limit) for BootEntry.
    static func write(for mode: BootEntry.Mode, into memory: GuestMemory) throws(BootError) -> (base: UInt64, limit: UInt16) {
        var bytes: [UInt8] = []
        for e in entries(for: mode) { bytes.appendLE(e) }
        try memory.store(bytes, at: BootLayout.gdt)
        return (BootLayout.gdt, UInt16(bytes.count - 1))
    }
}
