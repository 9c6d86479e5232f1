/// The bzImage setup header (Documentation/x86/boot.rst), parsed and validated before
/// anything is written to guest memory.
struct SetupHeader: Equatable {
    static let minimumVersion: UInt16 = 0x020C   // 2.12: xloadflags exist
    static let sectorSize: UInt64 = 512
    /// The header must reach at least past init_size, the last field svm reads.
    static let minimumEnd: UInt64 = ZeroPage.initSize + 4

    /// Number of 512-byte real-mode setup sectors after the boot sector (0 means 4).
    var setupSects: UInt64
    var version: UInt16
    var loadflags: UInt8
    var xloadflags: UInt16
    var initrdAddrMax: UInt32
    var kernelAlignment: UInt32
    var relocatable: Bool
    var cmdlineSize: UInt32
    var prefAddress: UInt64
    var initSize: UInt32
    /// File offset where the header ends: 0x202 + the byte at 0x201.
    var end: UInt64

    /// File offset of the protected-mode kernel: boot sector plus setup sectors.
    var kernelOffset: UInt64 { (setupSects + 1) * Self.sectorSize }

    /// True if the file carries the "HdrS" magic (what makes it a bzImage).
    static func hasMagic(_ file: FileBytes) -> Bool {
        file.u32(ZeroPage.headerMagic) == ZeroPage.headerMagicValue
    }

    init(_ file: FileBytes) throws(BootError) {
        guard let magic = file.u32(ZeroPage.headerMagic) else {
            throw .kernelTruncated(what: "bzImage setup header", needed: ZeroPage.headerMagic + 4, size: file.count)
        }
        guard magic == ZeroPage.headerMagicValue else { throw .unknownKernelFormat }
        guard let version = file.u16(ZeroPage.version) else {
            throw .kernelTruncated(what: "bzImage setup header", needed: ZeroPage.version + 2, size: file.count)
        }
        guard version >= Self.minimumVersion else { throw .unsupportedBootProtocol(version) }

        // The jump at 0x200 is "EB xx": its target, 0x202 + xx, is the end of the header.
        guard let jumpOffset = file.u8(ZeroPage.jump + 1) else {
            throw .kernelTruncated(what: "bzImage setup header", needed: ZeroPage.jump + 2, size: file.count)
        }
        end = ZeroPage.headerMagic + UInt64(jumpOffset)
        guard end >= Self.minimumEnd else {
            throw .invalidSetupHeader("header ends at \(hex(end)), before init_size (protocol 2.12 needs at least \(hex(Self.minimumEnd)))")
        }
        guard file.contains(0, length: end) else {
            throw .kernelTruncated(what: "bzImage setup header", needed: end, size: file.count)
        }
        // All reads below are inside [0, end), which was just checked.
        func u8(_ o: UInt64) -> UInt8 { file.u8(o) ?? 0 }
        func u16(_ o: UInt64) -> UInt16 { file.u16(o) ?? 0 }
        func u32(_ o: UInt64) -> UInt32 { file.u32(o) ?? 0 }

        let sects = u8(ZeroPage.setupSects)
        setupSects = sects == 0 ? 4 : UInt64(sects)
        self.version = version
        loadflags = u8(ZeroPage.loadflags)
        xloadflags = u16(ZeroPage.xloadflags)
        initrdAddrMax = u32(ZeroPage.initrdAddrMax)
        kernelAlignment = u32(ZeroPage.kernelAlignment)
        relocatable = u8(ZeroPage.relocatableKernel) != 0
        cmdlineSize = u32(ZeroPage.cmdlineSize)
        prefAddress = file.u64(ZeroPage.prefAddress) ?? 0
        initSize = u32(ZeroPage.initSize)

        guard loadflags & ZeroPage.loadedHigh != 0 else { throw .notLoadedHigh }
        guard xloadflags & ZeroPage.xlfKernel64 != 0 else { throw .not64BitKernel }
        if relocatable {
            guard kernelAlignment != 0, kernelAlignment & (kernelAlignment - 1) == 0 else {
                throw .invalidSetupHeader("kernel_alignment \(hex(UInt64(kernelAlignment))) is not a power of two")
            }
        }
        guard initSize > 0 else { throw .invalidSetupHeader("init_size is 0") }
        guard file.count > kernelOffset else {
            throw .kernelTruncated(what: "\(setupSects) setup sectors and a protected-mode kernel",
                                   needed: kernelOffset + 1, size: file.count)
        }
    }

    /// Where the kernel's decompressor actually runs (it relocates itself there and needs
    /// init_size bytes from it): compressed/head_64.S aligns the load address up to
    /// kernel_alignment and never goes below LOAD_PHYSICAL_ADDR, which header.S exports
    /// as pref_address; a non-relocatable kernel runs at pref_address.
    func runtimeStart(loadAddress: UInt64) -> UInt64? {
        guard relocatable else { return prefAddress }
        guard let aligned = alignUp(loadAddress, to: UInt64(kernelAlignment)) else { return nil }
        return max(aligned, prefAddress)
    }
}
