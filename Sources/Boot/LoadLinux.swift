import Memory

/// The two ways svm can boot Linux, told apart by file content.
public enum KernelFormat: Equatable, Sendable {
    /// bzImage, Linux boot protocol 2.12+, entered at its 64-bit entry point.
    case bzImage
    /// ELF vmlinux with a Xen PVH entry note, entered in 32-bit protected mode.
    case elfPVH
}

/// Detects the kernel format from content, not file name: the "HdrS" setup header magic
/// at 0x202 means bzImage (EFI-stub kernels also start with "MZ"); the ELF magic means a
/// vmlinux, which must carry the PVH entry note. Fully parses an ELF so that a vmlinux
/// without PVH support is reported here, before any memory is touched.
public func detectKernelFormat(_ kernel: BootImage) throws(BootError) -> KernelFormat {
    let file = FileBytes(kernel)
    if SetupHeader.hasMagic(file) { return .bzImage }
    if ElfImage.hasMagic(file) {
        _ = try ElfImage(file)
        return .elfPVH
    }
    // A DOS/EFI "MZ" stub too short to reach the setup header: a cut-off bzImage.
    if file.u16(0) == 0x5A4D, !file.contains(0, length: ZeroPage.headerMagic + 4) {
        throw .kernelTruncated(what: "bzImage setup header", needed: ZeroPage.headerMagic + 4, size: file.count)
    }
    throw .unknownKernelFormat
}

public func detectKernelFormat(_ kernel: [UInt8]) throws(BootError) -> KernelFormat {
    try detectKernelFormat(BootImage(bytes: kernel))
}

/// Largest `BootParameters.cpuCount` loadLinux accepts: as many processor entries as the
/// MP table can hold in the EBDA's last KiB (and I/O APIC id = cpuCount stays below 0xFF).
public let maximumBootCPUCount: Int = MPTable.maxCPUs

public struct BootParameters: Sendable {
    public var kernel: BootImage
    public var initrd: BootImage?
    public var commandLine: String
    public var cpuCount: Int

    public init(kernel: BootImage, initrd: BootImage?, commandLine: String, cpuCount: Int) {
        self.kernel = kernel
        self.initrd = initrd
        self.commandLine = commandLine
        self.cpuCount = cpuCount
    }

    public init(kernel: [UInt8], initrd: [UInt8]?, commandLine: String, cpuCount: Int) {
        self.init(kernel: BootImage(bytes: kernel), initrd: initrd.map { BootImage(bytes: $0) },
                  commandLine: commandLine, cpuCount: cpuCount)
    }
}

/// Loads kernel, initrd, command line, memory map, MP table, GDT (and page tables for the
/// 64-bit bzImage entry) into guest memory and returns how to enter the kernel.
/// All input is validated before the kernel is written; on error nothing outside svm's
/// fixed low-memory boot area has been modified.
public func loadLinux(_ params: BootParameters, into memory: GuestMemory) throws(BootError) -> BootEntry {
    // Build the MP table first: it validates the CPU count before anything is written.
    let mpTable = try MPTable.bytes(cpuCount: params.cpuCount)
    let entry: BootEntry
    switch try detectKernelFormat(params.kernel) {
    case .bzImage: entry = try BzImageLoader.load(params, into: memory)
    case .elfPVH: entry = try ElfLoader.load(params, into: memory)
    }
    try memory.clear(at: BootLayout.mpTable, count: BootLayout.ebdaEnd - BootLayout.mpTable)
    try memory.store(mpTable, at: BootLayout.mpTable)
    // BDA: the EBDA segment, so Linux finds and reserves the EBDA holding the MP table.
    try memory.store(UInt16(BootLayout.ebda >> 4), at: BootLayout.biosEBDASegmentPointer)
    return entry
}
