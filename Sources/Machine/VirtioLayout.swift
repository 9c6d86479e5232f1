import Virtio

/// Where virtio-mmio devices live: one 4 KiB page each from 0xD000_0000 (inside the 32-bit
/// MMIO hole, clear of the IOAPIC and LAPIC), and the ISA interrupt lines they use (the
/// MP table routes ISA IRQs 0-15 to the IOAPIC pin of the same number; 4 is the UART's,
/// 8 the RTC's, 0-2 belong to the PIT and the PIC cascade).
enum VirtioLayout {
    static let base: UInt64 = 0xD000_0000
    static let stride: UInt64 = 0x1000
    static let irqs: [UInt32] = [5, 6, 7, 9, 10, 11, 12, 14, 15]
    static var maximumDevices: Int { irqs.count }

    static func address(of index: Int) -> UInt64 { base + UInt64(index) * stride }

    /// The kernel command line entry that announces device `index` to Linux.
    static func commandLineEntry(_ index: Int) -> String {
        "virtio_mmio.device=0x\(String(VirtioMMIOTransport.windowSize, radix: 16))@0x\(String(address(of: index), radix: 16)):\(irqs[index])"
    }
}
