import Host
import Memory

/// Everything that can go wrong loading a kernel. Kernels and initrds come from users and
/// may be truncated or corrupt, so each case names the problem in one line.
public enum BootError: Error, Equatable, CustomStringConvertible {
    /// Neither a bzImage setup header nor an ELF header.
    case unknownKernelFormat
    /// The file ends before a structure it must contain.
    case kernelTruncated(what: String, needed: UInt64, size: UInt64)
    /// bzImage boot protocol older than 2.12 (no xloadflags, no 64-bit entry guarantee).
    case unsupportedBootProtocol(UInt16)
    /// A bzImage setup header field has a value no real kernel has.
    case invalidSetupHeader(String)
    /// bzImage without LOADED_HIGH: a zImage that must be loaded at 0x10000.
    case notLoadedHigh
    /// bzImage without XLF_KERNEL_64: no 64-bit entry point.
    case not64BitKernel
    /// A malformed ELF header, program header, section header or note.
    case invalidELF(String)
    /// ELF vmlinux without the Xen PHYS32_ENTRY note.
    case noPVHEntry
    /// The kernel needs guest RAM up to `end` but RAM below the MMIO hole ends at `ramEnd`.
    case kernelTooLarge(end: UInt64, ramEnd: UInt64)
    /// An ELF segment that does not lie in guest RAM above svm's boot data.
    case segmentOutsideRAM(address: UInt64, size: UInt64)
    case commandLineTooLong(length: Int, limit: Int)
    case commandLineContainsNUL
    case initrdEmpty
    /// No page-aligned place between the kernel and the initrd limit is big enough.
    case initrdTooLarge(size: UInt64, available: UInt64)
    case invalidCPUCount(Int, maximum: Int)
    /// More memory map entries than the boot structure can carry.
    case memoryMapTooLarge(entries: Int, maximum: Int)
    /// Reading the kernel or initrd file failed (an I/O error, or the file shrank after
    /// svm checked its size): the failed read, naming the file, and its errno.
    case readFailed(what: String, HostError)
    /// A guest memory access failed; the checks above should make this unreachable.
    case guestMemory(MemoryError)

    public var description: String {
        switch self {
        case .unknownKernelFormat:
            return "kernel: not a bzImage or ELF vmlinux (no HdrS magic, no ELF header)"
        case let .kernelTruncated(what, needed, size):
            return "kernel: file is truncated: \(what) needs \(needed) bytes, file has \(size)"
        case let .unsupportedBootProtocol(v):
            return "kernel: boot protocol \(v >> 8).\(String(format2: v & 0xFF)) is too old; svm needs 2.12 or newer"
        case let .invalidSetupHeader(why):
            return "kernel: invalid bzImage setup header: \(why)"
        case .notLoadedHigh:
            return "kernel: bzImage lacks LOADED_HIGH (a zImage loaded at 0x10000 is not supported)"
        case .not64BitKernel:
            return "kernel: bzImage has no 64-bit entry point (XLF_KERNEL_64 not set); use an x86-64 kernel"
        case let .invalidELF(why):
            return "kernel: invalid ELF vmlinux: \(why)"
        case .noPVHEntry:
            return "kernel: the ELF has no PVH entry note (Xen note type 18); build the kernel with CONFIG_PVH=y or use a bzImage"
        case let .kernelTooLarge(end, ramEnd):
            return "kernel: needs guest RAM up to \(hex(end)) (\(mib(end))) but RAM below the MMIO hole ends at \(hex(ramEnd)) (\(mib(ramEnd))); give the VM more memory"
        case let .segmentOutsideRAM(address, size):
            return "kernel: ELF segment \(hex(address))+\(hex(size)) is not in guest RAM at or above \(hex(BootLayout.kernelLoad))"
        case let .commandLineTooLong(length, limit):
            return "command line: \(length) bytes, the kernel accepts at most \(limit)"
        case .commandLineContainsNUL:
            return "command line: contains a NUL byte"
        case .initrdEmpty:
            return "initrd: file is empty"
        case let .initrdTooLarge(size, available):
            return "initrd: \(size) bytes (\(mib(size))) does not fit; \(available) bytes (\(mib(available))) free between the kernel and the initrd limit; give the VM more memory"
        case let .invalidCPUCount(n, maximum):
            return "cpus: \(n) is not supported; the MP table allows 1 to \(maximum)"
        case let .memoryMapTooLarge(entries, maximum):
            return "boot: memory map has \(entries) entries, the kernel accepts at most \(maximum)"
        case let .readFailed(what, error):
            return "\(what): \(error)"
        case let .guestMemory(e):
            return "boot: \(e)"
        }
    }
}

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

func mib(_ v: UInt64) -> String {
    v % (1 << 20) == 0 ? "\(v >> 20) MiB" : "\(v / 1024) KiB"
}

private extension String {
    /// Two-digit decimal minor version (2.12, 2.05).
    init(format2 v: UInt16) { self = v < 10 ? "0\(v)" : "\(v)" }
}
