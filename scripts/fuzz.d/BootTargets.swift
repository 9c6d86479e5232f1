// Kernel images (Sources/Boot): bzImage and ELF vmlinux (PVH) from whoever runs svm boot or
// builds an image for svm-runtime; parsed before anything else of the VM exists.
@testable import Boot
import Memory

enum KernelTarget {
    /// Guest RAM of three sizes, so "does not fit" is as reachable as "loads".
    static let memories: [GuestMemory] = [64 << 20, 40 << 20, 20 << 20].map {
        try! GuestMemory(size: $0, hugePages: false)
    }

    static let target = FuzzTarget(
        name: "kernel",
        covers: "detectKernelFormat + loadLinux (bzImage setup header, ELF headers, PVH note, initrd, command line): a BootError or an entry inside guest RAM",
        seeds: { [
            [0x00, 0x00] + bzImage(),
            [0x11, 0x10] + bzImage(),
            [0x06, 0x03] + elf(noteInSectionOnly: false),
            [0x12, 0x40] + elf(noteInSectionOnly: true),
        ] },
        run: { bytes in
            guard bytes.count >= 2 else { return }
            // byte 0: RAM size (bits 0-1), vCPUs (bits 2-3), an initrd (bit 4), a long command
            // line (bit 5); byte 1: the initrd's size in 4 KiB pages.
            let memory = memories[Int(bytes[0] & 3) % memories.count]
            let cpus = Int(bytes[0] >> 2 & 3) + 1
            let initrd: [UInt8]? = bytes[0] & 0x10 != 0 ? [UInt8](repeating: 0xA5, count: Int(bytes[1]) << 12) : nil
            let commandLine = bytes[0] & 0x20 != 0 ? String(repeating: "x", count: 4000) : "console=ttyS0"
            let kernel = Array(bytes.dropFirst(2))
            let params = BootParameters(kernel: kernel, initrd: initrd, commandLine: commandLine, cpuCount: cpus)
            let entry: BootEntry
            do { entry = try loadLinux(params, into: memory) } catch {
                fuzzCheck(!"\(error)".isEmpty && !"\(error)".contains("\n"), "error without one line: \(error)")
                return
            }
            func inside(_ address: UInt64, _ length: UInt64, _ what: String) {
                fuzzCheck(memory.contains(address, length: length), "\(what) at 0x\(String(address, radix: 16)) outside \(memory.size) bytes of RAM")
            }
            inside(entry.rip, 1, "entry point")
            inside(entry.gdtBase, UInt64(entry.gdtLimit) + 1, "GDT")
            switch entry.mode {
            case let .long64(pml4):
                inside(pml4, 4096, "PML4")
                inside(entry.rsi, 4096, "zero page")
            case .protected32:
                inside(entry.rbx, 64, "PVH start info")
            }
        })

    static func put<T: FixedWidthInteger>(_ v: T, _ b: inout [UInt8], _ at: Int) {
        for i in 0..<MemoryLayout<T>.size { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    /// A bzImage of boot protocol 2.15: one setup sector, a 64-bit relocatable kernel of 4 KiB.
    static func bzImage() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 1024)
        b[0] = 0x4D; b[1] = 0x5A
        b[0x1F1] = 1
        put(UInt32(4096 / 16), &b, 0x1F4)
        put(UInt16(0xAA55), &b, 0x1FE)
        b[0x200] = 0xEB; b[0x201] = 0x6A
        put(UInt32(0x5372_6448), &b, 0x202)   // "HdrS"
        put(UInt16(0x020F), &b, 0x206)
        b[0x211] = 0x01                        // LOADED_HIGH
        put(UInt32(0x7FFF_FFFF), &b, 0x22C)    // initrd_addr_max
        put(UInt32(0x20_0000), &b, 0x230)      // kernel_alignment
        b[0x234] = 1                           // relocatable
        put(UInt16(0x0003), &b, 0x236)         // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
        put(UInt32(2047), &b, 0x238)           // cmdline_size
        put(UInt64(0x100_0000), &b, 0x258)     // pref_address
        put(UInt32(0x100_0000), &b, 0x260)     // init_size
        return b + (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    }

    /// An ELF64 vmlinux: PT_LOAD at 16 MiB and the Xen PHYS32_ENTRY note, in a PT_NOTE or
    /// only in a SHT_NOTE section.
    static func elf(noteInSectionOnly: Bool) -> [UInt8] {
        let entry: UInt64 = 0x100_0100
        var note: [UInt8] = [4, 0, 0, 0, 8, 0, 0, 0, 18, 0, 0, 0] + Array("Xen\0".utf8)
        note += (0..<8).map { UInt8(truncatingIfNeeded: entry >> (8 * UInt64($0))) }
        var b = [UInt8](repeating: 0, count: 0x1200 + note.count)
        b[0] = 0x7F; b[1] = 0x45; b[2] = 0x4C; b[3] = 0x46; b[4] = 2; b[5] = 1; b[6] = 1
        put(UInt16(2), &b, 16); put(UInt16(62), &b, 18); put(UInt32(1), &b, 20)
        put(entry | 0xFFFF_FFFF_8000_0000, &b, 24)
        put(UInt64(64), &b, 32); put(UInt16(64), &b, 52); put(UInt16(56), &b, 54); put(UInt16(2), &b, 56)
        put(UInt32(1), &b, 64); put(UInt32(7), &b, 68); put(UInt64(0x1000), &b, 72)
        put(UInt64(0xFFFF_FFFF_8100_0000), &b, 80); put(UInt64(0x100_0000), &b, 88)
        put(UInt64(0x200), &b, 96); put(UInt64(0x3000), &b, 104); put(UInt64(0x20_0000), &b, 112)
        put(UInt32(noteInSectionOnly ? 0 : 4), &b, 120); put(UInt64(0x1200), &b, 128)
        put(UInt64(note.count), &b, 152); put(UInt64(4), &b, 168)
        if noteInSectionOnly {
            put(UInt64(0x1100), &b, 40); put(UInt16(64), &b, 58); put(UInt16(2), &b, 60)
            put(UInt32(7), &b, 0x1100 + 64 + 4); put(UInt64(0x1200), &b, 0x1100 + 64 + 24)
            put(UInt64(note.count), &b, 0x1100 + 64 + 32); put(UInt64(4), &b, 0x1100 + 64 + 48)
        }
        for i in 0..<0x100 { b[0x1000 + i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        b.replaceSubrange(0x1200..<b.count, with: note)
        return b
    }
}
