/// Fixed guest-physical addresses of everything svm writes before the kernel runs.
///
/// Low memory below 1 MiB belongs to svm's boot structures; the kernel is loaded at 1 MiB
/// and owns everything above it (the initrd is placed at the top of low RAM). The
/// addresses follow the conventions of kvmtool/Firecracker so that a reader who knows those
/// recognises the map; none of them may overlap (checked by a unit test).
public enum BootLayout {
    /// BIOS data area word holding the EBDA segment; Linux reads it to find (and reserve)
    /// the EBDA, where the MP table lives.
    public static let biosEBDASegmentPointer: UInt64 = 0x40E
    /// GDT with the boot protocol's __BOOT_CS (0x10) and __BOOT_DS (0x18).
    public static let gdt: UInt64 = 0x500
    /// PVH `hvm_start_info` (56 bytes), then the module list and the memory map, all in
    /// the page 0x6000..0x6FFF.
    public static let pvhStartInfo: UInt64 = 0x6000
    public static let pvhModuleList: UInt64 = 0x6040
    public static let pvhMemoryMap: UInt64 = 0x6080
    /// Linux boot protocol `struct boot_params` ("zero page", one 4 KiB page).
    public static let zeroPage: UInt64 = 0x7000
    public static let zeroPageSize: UInt64 = 0x1000
    /// Initial stack pointer: the page below the page tables is free.
    public static let stackPointer: UInt64 = 0x8FF0
    /// Identity-mapping page tables for the 64-bit entry: PML4, one PDPT, four PDs of
    /// 2 MiB pages covering the first 4 GiB.
    public static let pml4: UInt64 = 0x9000
    public static let pdpt: UInt64 = 0xA000
    public static let pageDirectories: UInt64 = 0xB000
    public static let pageDirectoryCount: UInt64 = 4
    /// Kernel command line (NUL-terminated) and the space reserved for it.
    public static let commandLine: UInt64 = 0x2_0000
    public static let commandLineCapacity: UInt64 = 0x1_0000
    /// Extended BIOS data area: the last KiB below 640 KiB, where Linux scans for the MP
    /// floating pointer. Reserved in the e820 map up to 1 MiB (EBDA, VGA hole, BIOS ROM).
    public static let ebda: UInt64 = 0x9_FC00
    public static let ebdaEnd: UInt64 = 0xA_0000
    public static let mpTable: UInt64 = ebda
    /// Where the protected-mode kernel (bzImage) is loaded; the start of "high" memory.
    public static let kernelLoad: UInt64 = 0x10_0000
    /// Page size used for aligning the initrd.
    public static let pageSize: UInt64 = 0x1000
}
