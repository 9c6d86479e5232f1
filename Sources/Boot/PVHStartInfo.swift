import Memory

/// The PVH `struct hvm_start_info` (version 1) and the tables it points to, laid out as in
/// include/xen/interface/hvm/start_info.h. All little-endian, 64-bit addresses.
enum PVHStartInfo {
    static let magic: UInt32 = 0x336E_C578   // XEN_HVM_START_MAGIC_VALUE ("xEn3" | 0x80)
    static let version: UInt32 = 1           // version 1 adds the memory map fields
    static let size = 56
    static let moduleEntrySize = 32
    static let memoryMapEntrySize = 24
    /// Memory map entries that fit between pvhMemoryMap and the zero page.
    static let maxMemoryMapEntries = Int(BootLayout.zeroPage - BootLayout.pvhMemoryMap) / memoryMapEntrySize

    /// `struct hvm_start_info`; a zero address means "not present".
    static func bytes(moduleCount: UInt32, moduleList: UInt64, commandLine: UInt64,
                      memoryMap: UInt64, memoryMapEntries: UInt32) -> [UInt8] {
        var b: [UInt8] = []
        b.appendLE(magic)               //  0 magic
        b.appendLE(version)             //  4 version
        b.appendLE(UInt32(0))           //  8 flags
        b.appendLE(moduleCount)         // 12 nr_modules
        b.appendLE(moduleList)          // 16 modlist_paddr
        b.appendLE(commandLine)         // 24 cmdline_paddr
        b.appendLE(UInt64(0))           // 32 rsdp_paddr: no ACPI
        b.appendLE(memoryMap)           // 40 memmap_paddr
        b.appendLE(memoryMapEntries)    // 48 memmap_entries
        b.appendLE(UInt32(0))           // 52 reserved
        return b
    }

    /// `struct hvm_modlist_entry` for the initrd (no per-module command line).
    static func moduleEntry(address: UInt64, size: UInt64) -> [UInt8] {
        var b: [UInt8] = []
        b.appendLE(address)             //  0 paddr
        b.appendLE(size)                //  8 size
        b.appendLE(UInt64(0))           // 16 cmdline_paddr
        b.appendLE(UInt64(0))           // 24 reserved
        return b
    }

    /// Writes start info, module list and memory map; returns the start info address (EBX).
    static func write(initrd: (address: UInt64, size: UInt64)?, memoryMap: [E820Entry],
                      into memory: GuestMemory) throws(BootError) -> UInt64 {
        guard memoryMap.count <= maxMemoryMapEntries else {
            throw .memoryMapTooLarge(entries: memoryMap.count, maximum: maxMemoryMapEntries)
        }
        try memory.clear(at: BootLayout.pvhStartInfo, count: BootLayout.zeroPage - BootLayout.pvhStartInfo)
        let info = bytes(moduleCount: initrd == nil ? 0 : 1,
                         moduleList: initrd == nil ? 0 : BootLayout.pvhModuleList,
                         commandLine: BootLayout.commandLine,
                         memoryMap: BootLayout.pvhMemoryMap,
                         memoryMapEntries: UInt32(memoryMap.count))
        try memory.store(info, at: BootLayout.pvhStartInfo)
        if let initrd {
            try memory.store(moduleEntry(address: initrd.address, size: initrd.size), at: BootLayout.pvhModuleList)
        }
        try memory.store(E820.pvhBytes(memoryMap), at: BootLayout.pvhMemoryMap)
        return BootLayout.pvhStartInfo
    }
}
