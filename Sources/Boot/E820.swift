import Memory

/// One entry of the BIOS-style memory map given to the kernel (e820 in the zero page,
/// hvm_memmap_table_entry for PVH; both use the ACPI address range types).
struct E820Entry: Equatable, Sendable {
    enum Kind: UInt32, Sendable {
        case ram = 1
        case reserved = 2
    }

    var address: UInt64
    var size: UInt64
    var kind: Kind
    var end: UInt64 { address + size }
}

enum E820 {
    /// Legacy area that is never usable RAM: EBDA (our MP table), VGA hole, BIOS ROM.
    static let reservedLow: Range<UInt64> = BootLayout.ebda..<BootLayout.kernelLoad

    /// The memory map for guest RAM `regions`: each region as RAM, minus the legacy area
    /// below 1 MiB, which is reported reserved. Nothing is reported in the MMIO hole
    /// because GuestMemory has no region there. Sorted by address.
    static func map(for regions: [GuestMemory.Region]) -> [E820Entry] {
        var entries = [E820Entry(address: reservedLow.lowerBound,
                                 size: UInt64(reservedLow.count), kind: .reserved)]
        for r in regions where r.size > 0 {
            // Up to two pieces: below and above the reserved legacy area.
            if r.guestAddress < reservedLow.lowerBound {
                let end = min(r.end, reservedLow.lowerBound)
                entries.append(.init(address: r.guestAddress, size: end - r.guestAddress, kind: .ram))
            }
            if r.end > reservedLow.upperBound {
                let start = max(r.guestAddress, reservedLow.upperBound)
                entries.append(.init(address: start, size: r.end - start, kind: .ram))
            }
        }
        return entries.sorted { $0.address < $1.address }
    }

    /// Zero-page encoding: packed `struct boot_e820_entry` (addr, size, type), 20 bytes.
    static func zeroPageBytes(_ entries: [E820Entry]) -> [UInt8] {
        var b: [UInt8] = []
        for e in entries {
            b.appendLE(e.address)
            b.appendLE(e.size)
            b.appendLE(e.kind.rawValue)
        }
        return b
    }

    /// PVH encoding: `struct hvm_memmap_table_entry` (addr, size, type, reserved), 24 bytes.
    static func pvhBytes(_ entries: [E820Entry]) -> [UInt8] {
        var b: [UInt8] = []
        for e in entries {
            b.appendLE(e.address)
            b.appendLE(e.size)
            b.appendLE(e.kind.rawValue)
            b.appendLE(UInt32(0))
        }
        return b
    }
}
