import Memory

/// Intel MultiProcessor Specification 1.4 tables, so the kernel finds the vCPUs and the
/// I/O APIC without ACPI. Layout: the 16-byte floating pointer at BootLayout.mpTable,
/// the configuration table right after it, all within the EBDA's last KiB below 640 KiB
/// (one of the places Linux scans).
enum MPTable {
    static let localAPICAddress: UInt32 = 0xFEE0_0000
    static let ioAPICAddress: UInt32 = 0xFEC0_0000
    static let localAPICVersion: UInt8 = 0x14
    static let ioAPICVersion: UInt8 = 0x11
    static let specRevision: UInt8 = 4
    static let isaIRQCount = 16

    static let floatingPointerSize = 16
    static let headerSize = 44
    static let processorEntrySize = 20
    static let otherEntrySize = 8   // bus, I/O APIC, I/O and local interrupt entries

    /// Everything but the processor entries: pointer, header, bus, I/O APIC, ISA IRQs,
    /// ExtINT and NMI local interrupts.
    static let fixedSize = floatingPointerSize + headerSize + otherEntrySize * (2 + isaIRQCount + 2)

    /// Largest vCPU count whose table fits below the end of the EBDA. The I/O APIC takes
    /// APIC id `cpuCount`, which must stay below the broadcast id 0xFF.
    static let maxCPUs: Int = {
        let space = Int(BootLayout.ebdaEnd - BootLayout.mpTable)
        return min((space - fixedSize) / processorEntrySize, 0xFE)
    }()

    // Entry types and flags from the specification.
    private static let processorEntry: UInt8 = 0, busEntry: UInt8 = 1, ioAPICEntry: UInt8 = 2
    private static let ioInterruptEntry: UInt8 = 3, localInterruptEntry: UInt8 = 4
    private static let cpuEnabled: UInt8 = 1, cpuBootstrap: UInt8 = 2
    private static let interruptINT: UInt8 = 0, interruptNMI: UInt8 = 1, interruptExtINT: UInt8 = 3
    /// Family 6 signature with FPU and APIC feature bits: informational only, Linux uses CPUID.
    private static let cpuSignature: UInt32 = 0x600
    private static let cpuFeatures: UInt32 = 1 << 0 | 1 << 9

    /// The floating pointer followed by the configuration table, to be placed at
    /// BootLayout.mpTable.
    static func bytes(cpuCount: Int) throws(BootError) -> [UInt8] {
        guard cpuCount >= 1, cpuCount <= maxCPUs else {
            throw .invalidCPUCount(cpuCount, maximum: maxCPUs)
        }
        let configAddress = UInt32(BootLayout.mpTable) + UInt32(floatingPointerSize)
        let ioAPICID = UInt8(cpuCount)

        var entries: [UInt8] = []
        for id in 0..<cpuCount {
            entries.append(processorEntry)
            entries.append(UInt8(id))                              // local APIC id
            entries.append(localAPICVersion)
            entries.append(id == 0 ? cpuEnabled | cpuBootstrap : cpuEnabled)
            entries.appendLE(cpuSignature)
            entries.appendLE(cpuFeatures)
            entries.appendLE(UInt64(0))                            // reserved
        }
        entries.append(busEntry)
        entries.append(0)                                          // bus id
        entries.appendASCII("ISA", paddedTo: 6)
        entries += [ioAPICEntry, ioAPICID, ioAPICVersion, 1 /* enabled */]
        entries.appendLE(ioAPICAddress)
        for irq in 0..<UInt8(isaIRQCount) {
            // ISA IRQ n -> I/O APIC pin n, polarity/trigger conforming to the bus (flags 0).
            entries += [ioInterruptEntry, interruptINT, 0, 0, 0 /* bus */, irq, ioAPICID, irq]
        }
        // 8259 ExtINT -> LINT0 and NMI -> LINT1 on every local APIC (0xFF), virtual wire mode.
        entries += [localInterruptEntry, interruptExtINT, 0, 0, 0, 0, 0xFF, 0]
        entries += [localInterruptEntry, interruptNMI, 0, 0, 0, 0, 0xFF, 1]

        var header: [UInt8] = []
        header.appendASCII("PCMP", paddedTo: 4)
        header.appendLE(UInt16(headerSize + entries.count))       // base table length
        header.append(specRevision)
        header.append(0)                                           // checksum, below
        header.appendASCII("SVM", paddedTo: 8)                     // OEM id
        header.appendASCII("SVM VM", paddedTo: 12)                 // product id
        header.appendLE(UInt32(0))                                 // OEM table pointer
        header.appendLE(UInt16(0))                                 // OEM table size
        header.appendLE(UInt16(cpuCount + 1 + 1 + isaIRQCount + 2)) // entry count
        header.appendLE(localAPICAddress)
        header.appendLE(UInt16(0))                                 // extended table length
        header.append(0)                                           // extended table checksum
        header.append(0)                                           // reserved
        var config = header + entries
        config[7] = checksum(config)

        var pointer: [UInt8] = []
        pointer.appendASCII("_MP_", paddedTo: 4)
        pointer.appendLE(configAddress)
        pointer.append(1)                                          // length in 16-byte units
        pointer.append(specRevision)
        pointer.append(0)                                          // checksum, below
        pointer += [0, 0, 0, 0, 0]  // feature bytes: table present, no IMCR (virtual wire)
        pointer[10] = checksum(pointer)

        return pointer + config
    }

    /// The byte that makes `bytes` sum to 0 mod 256 (with the checksum byte still 0).
    static func checksum(_ bytes: [UInt8]) -> UInt8 {
        0 &- bytes.reduce(0, &+)
    }
}
