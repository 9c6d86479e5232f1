/// Offsets of the `struct boot_params` ("zero page") fields svm reads or writes, from
/// arch/x86/include/uapi/asm/bootparam.h. The setup header (`hdr`) sits at 0x1F1 both in
/// the bzImage file and in the zero page, so the header offsets serve for both.
enum ZeroPage {
    static let e820Entries: UInt64 = 0x1E8        // __u8 e820_entries
    static let setupHeader: UInt64 = 0x1F1        // struct setup_header hdr
    /// End of the space the zero page gives `hdr` (edd_mbr_sig_buffer starts here).
    static let setupHeaderLimit: UInt64 = 0x290
    static let e820Table: UInt64 = 0x2D0          // struct boot_e820_entry[128]
    static let e820EntrySize: UInt64 = 20         // addr u64, size u64, type u32 (packed)
    static let e820MaxEntries = 128               // E820_MAX_ENTRIES_ZEROPAGE

    // struct setup_header fields, as offsets from the start of the file / zero page.
    static let setupSects: UInt64 = 0x1F1         // u8, 0 means 4
    static let vidMode: UInt64 = 0x1FA            // u16
    static let jump: UInt64 = 0x200               // u16: EB xx, header ends at 0x202 + xx
    static let headerMagic: UInt64 = 0x202        // u32 "HdrS"
    static let version: UInt64 = 0x206            // u16
    static let typeOfLoader: UInt64 = 0x210       // u8
    static let loadflags: UInt64 = 0x211          // u8
    static let ramdiskImage: UInt64 = 0x218       // u32
    static let ramdiskSize: UInt64 = 0x21C        // u32
    static let heapEndPtr: UInt64 = 0x224         // u16
    static let cmdLinePtr: UInt64 = 0x228         // u32
    static let initrdAddrMax: UInt64 = 0x22C      // u32, highest byte address the initrd may use
    static let kernelAlignment: UInt64 = 0x230    // u32
    static let relocatableKernel: UInt64 = 0x234  // u8
    static let xloadflags: UInt64 = 0x236         // u16
    static let cmdlineSize: UInt64 = 0x238        // u32, max length without the NUL
    static let hardwareSubarch: UInt64 = 0x23C    // u32, then u64 hardware_subarch_data
    static let setupData: UInt64 = 0x250          // u64, physical pointer to a setup_data list
    static let prefAddress: UInt64 = 0x258        // u64
    static let initSize: UInt64 = 0x260           // u32

    static let headerMagicValue: UInt32 = 0x5372_6448  // "HdrS" little-endian

    // loadflags / xloadflags bits.
    static let loadedHigh: UInt8 = 1 << 0
    static let canUseHeap: UInt8 = 1 << 7
    static let xlfKernel64: UInt16 = 1 << 0

    /// type_of_loader 0xFF: "undefined" boot loader, as the boot protocol asks of loaders
    /// without an assigned id.
    static let undefinedLoader: UInt8 = 0xFF
    /// heap_end_ptr: end of the real-mode setup heap (offset from the setup segment);
    /// 0xFE00 is what the boot protocol documents for a setup area of 0x10000 bytes.
    static let heapEnd: UInt16 = 0xFE00
    /// vid_mode 0xFFFF: "normal" VGA mode, i.e. do not ask the user.
    static let normalVideoMode: UInt16 = 0xFFFF
}
