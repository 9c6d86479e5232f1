import Memory

/// Identity map of the first 4 GiB with 2 MiB pages, for the 64-bit boot protocol entry
/// (the kernel, its init_size area, the zero page and the command line must be mapped;
/// everything svm loads is below 4 GiB, so one map covers all of it).
enum PageTables {
    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let largePage: UInt64 = 1 << 7

    static let pageBytes = Int(BootLayout.pageSize)
    static let entriesPerTable = 512

    /// Writes PML4, PDPT and the page directories; returns the PML4 address for CR3.
    static func write(into memory: GuestMemory) throws(BootError) -> UInt64 {
        var pml4 = [UInt8](repeating: 0, count: pageBytes)
        store(BootLayout.pdpt | present | writable, at: 0, in: &pml4)

        var pdpt = [UInt8](repeating: 0, count: pageBytes)
        for i in 0..<Int(BootLayout.pageDirectoryCount) {
            let pd = BootLayout.pageDirectories + UInt64(i) * BootLayout.pageSize
            store(pd | present | writable, at: i, in: &pdpt)
        }

        let pdCount = Int(BootLayout.pageDirectoryCount)
        var pds = [UInt8](repeating: 0, count: pageBytes * pdCount)
        for i in 0..<(entriesPerTable * pdCount) {
            store(UInt64(i) << 21 | present | writable | largePage, at: i, in: &pds)
        }

        try memory.store(pml4, at: BootLayout.pml4)
        try memory.store(pdpt, at: BootLayout.pdpt)
        try memory.store(pds, at: BootLayout.pageDirectories)
        return BootLayout.pml4
    }

    private static func store(_ entry: UInt64, at index: Int, in table: inout [UInt8]) {
        for b in 0..<8 { table[index * 8 + b] = UInt8(truncatingIfNeeded: entry >> (8 * b)) }
    }
}
