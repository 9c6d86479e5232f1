import CKVM
import Glibc

/// Errors from allocating or touching guest memory. Each names the operation.
public enum MemoryError: Error, Equatable, CustomStringConvertible {
    /// The mapping could not be made (errno from mmap).
    case mapFailed(bytes: UInt64, errno: Int32)
    /// Faulting in the RAM failed (errno from madvise(MADV_POPULATE_WRITE), e.g. ENOMEM).
    case populateFailed(bytes: UInt64, errno: Int32)
    /// A guest physical range is not entirely inside guest RAM.
    case outOfRange(address: UInt64, length: UInt64)
    /// A size that is zero, not page-aligned or beyond what svm supports.
    case invalidSize(UInt64)
    /// Creating, sizing or sealing the memfd of shareable RAM failed.
    case memfdFailed(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .mapFailed(bytes, err):
            return "mmap of \(bytes / (1 << 20)) MiB guest RAM failed: \(String(cString: strerror(err))) (errno \(err))"
        case let .populateFailed(bytes, err):
            return "allocating \(bytes / (1 << 20)) MiB of guest RAM failed: \(String(cString: strerror(err))) (errno \(err))"
        case let .outOfRange(address, length):
            return "guest range 0x\(String(address, radix: 16))+0x\(String(length, radix: 16)) is outside guest RAM"
        case let .invalidSize(size):
            return "invalid guest memory size \(size) bytes"
        case let .memfdFailed(operation, err):
            return "\(operation) for guest RAM failed: \(String(cString: strerror(err))) (errno \(err))"
        }
    }
}

/// Guest RAM: one anonymous host mapping, split into guest-physical regions around the
/// 32-bit MMIO hole. It is the only code that turns guest addresses into host pointers.
///
/// Sendable invariant: the mapping is created in `init`, never moved or resized, and unmapped
/// only in `deinit`. Concurrent access to guest RAM from vCPU and device threads is the
/// nature of a VM (the guest itself races with devices); this type guarantees only that
/// every access lands inside the mapping.
public final class GuestMemory: @unchecked Sendable {
    /// A contiguous piece of guest-physical RAM and where it lives in the host mapping.
    public struct Region: Equatable, Sendable {
        public let guestAddress: UInt64
        public let size: UInt64
        public let hostOffset: UInt64
        public var end: UInt64 { guestAddress + size }
    }

    /// Start of the 32-bit MMIO hole (devices, LAPIC, IOAPIC) that RAM must not cover.
    public static let mmioHoleStart: UInt64 = 0xC000_0000
    /// RAM that does not fit below the hole continues here.
    public static let highMemoryStart: UInt64 = 0x1_0000_0000
    /// Largest guest RAM svm accepts (a sanity bound, far beyond this project's hosts).
    public static let maximumSize: UInt64 = 1 << 40

    public let size: UInt64
    public let regions: [Region]
    public let hostBase: UnsafeMutableRawPointer
    /// With `shareable`: the memfd behind the mapping, which a vhost-user backend maps to
    /// reach the same pages (region `hostOffset`s are offsets into it). Sealed against
    /// shrinking, so the backend's mapping can never lose its pages under it. nil for
    /// anonymous RAM.
    public let memfd: Int32?

    /// How guest RAM is backed.
    public enum Backing: Sendable {
        /// Anonymous private memory: what a VM without vhost-user devices gets; it can use
        /// transparent huge pages (anonymous THP is `madvise` on our hosts).
        case anonymous
        /// A sealed memfd mapped MAP_SHARED, for backends in other processes (virtiofsd).
        /// shmem THP is `never` on our hosts, so these pages are 4 KiB.
        case shareable
    }

    /// Lays out `size` bytes of RAM: below the MMIO hole first, the rest above 4 GiB.
    public static func layout(size: UInt64) -> [Region] {
        if size <= mmioHoleStart {
            return [Region(guestAddress: 0, size: size, hostOffset: 0)]
        }
        return [
            Region(guestAddress: 0, size: mmioHoleStart, hostOffset: 0),
            Region(guestAddress: highMemoryStart, size: size - mmioHoleStart, hostOffset: mmioHoleStart),
        ]
    }

    /// Maps `size` bytes of anonymous memory. With `populate`, every page is faulted in now
    /// (in parallel, see `Population`), so the VM either gets all of its RAM up front or
    /// does not start. `hugePages` asks for transparent huge pages (MADV_HUGEPAGE): fewer
    /// faults to populate, fewer TLB misses for the guest.
    public init(size: UInt64, populate: Bool = false, hugePages: Bool = true, backing: Backing = .anonymous) throws(MemoryError) {
        guard size >= 1 << 20, size % 4096 == 0, size <= Self.maximumSize else {
            throw .invalidSize(size)
        }
        var fd: Int32 = -1
        if backing == .shareable {
            fd = ckvm_memfd_create("svm-guest-ram")
            guard fd >= 0 else { throw .memfdFailed(operation: "memfd_create", errno: errno) }
            guard ftruncate(fd, off_t(size)) == 0 else {
                let e = errno
                close(fd)
                throw .memfdFailed(operation: "ftruncate", errno: e)
            }
            guard ckvm_memfd_seal_size(fd) == 0 else {
                let e = errno
                close(fd)
                throw .memfdFailed(operation: "fcntl F_ADD_SEALS", errno: e)
            }
        }
        let flags = backing == .shareable ? MAP_SHARED | MAP_NORESERVE : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        guard let p = mmap(nil, Int(size), PROT_READ | PROT_WRITE, flags, fd, 0), p != MAP_FAILED else {
            let e = errno
            if fd >= 0 { close(fd) }
            throw .mapFailed(bytes: size, errno: e)
        }
        // Guest RAM is never worth dumping with svm's own core.
        _ = madvise(p, Int(size), MADV_DONTDUMP)
        if hugePages { _ = madvise(p, Int(size), MADV_HUGEPAGE) }
        if populate {
            let error = Population.populate(p, size: size)
            if error != 0 {
                munmap(p, Int(size))
                if fd >= 0 { close(fd) }
                throw .populateFailed(bytes: size, errno: error)
            }
        }
        memfd = fd >= 0 ? fd : nil
        self.size = size
        self.regions = Self.layout(size: size)
        self.hostBase = p
    }

    /// Guest RAM that starts as the contents of the file `fd` (a snapshot's memory file),
    /// mapped MAP_PRIVATE: pages are read from the file (its page cache) as the guest first
    /// touches them, and a page the guest writes becomes its own copy, so the file never
    /// changes and any number of VMs can start from it at once.
    public init(copyOnWriteFile fd: Int32, size: UInt64) throws(MemoryError) {
        guard size >= 1 << 20, size % 4096 == 0, size <= Self.maximumSize else {
            throw .invalidSize(size)
        }
        guard let p = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0), p != MAP_FAILED else {
            throw .mapFailed(bytes: size, errno: errno)
        }
        _ = madvise(p, Int(size), MADV_DONTDUMP)
        memfd = nil
        self.size = size
        self.regions = Self.layout(size: size)
        self.hostBase = p
    }

    deinit {
        munmap(hostBase, Int(size))
        if let memfd { close(memfd) }
    }

    /// Host offset of `[address, address+length)`, or nil if any part is outside RAM.
    /// Overflow-safe: a guest can hand us any 64-bit number.
    @inline(__always)
    public func hostOffset(of address: UInt64, length: UInt64) -> UInt64? {
        for r in regions where address >= r.guestAddress {
            let off = address - r.guestAddress
            if off <= r.size, length <= r.size - off { return r.hostOffset + off }
        }
        return nil
    }

    /// True if the whole range is guest RAM.
    public func contains(_ address: UInt64, length: UInt64) -> Bool {
        hostOffset(of: address, length: length) != nil
    }

    /// Calls `body` with a host buffer for the guest range, after checking it is in RAM.
    public func withMutableBytes<R>(at address: UInt64, length: UInt64,
                                    _ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        guard let off = hostOffset(of: address, length: length) else {
            throw MemoryError.outOfRange(address: address, length: length)
        }
        return try body(UnsafeMutableRawBufferPointer(start: hostBase + Int(off), count: Int(length)))
    }

    public func write(_ bytes: some Collection<UInt8>, at address: UInt64) throws(MemoryError) {
        guard let off = hostOffset(of: address, length: UInt64(bytes.count)) else {
            throw .outOfRange(address: address, length: UInt64(bytes.count))
        }
        let dst = UnsafeMutableRawBufferPointer(start: hostBase + Int(off), count: bytes.count)
        dst.copyBytes(from: bytes)
    }

    public func readBytes(at address: UInt64, count: Int) throws(MemoryError) -> [UInt8] {
        guard count >= 0, let off = hostOffset(of: address, length: UInt64(count)) else {
            throw .outOfRange(address: address, length: UInt64(max(count, 0)))
        }
        return Array(UnsafeRawBufferPointer(start: hostBase + Int(off), count: count))
    }

    /// Little-endian integer store (x86 guests are little-endian, like the host).
    public func write<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(MemoryError) {
        let n = UInt64(MemoryLayout<T>.size)
        guard let off = hostOffset(of: address, length: n) else {
            throw .outOfRange(address: address, length: n)
        }
        (hostBase + Int(off)).storeBytes(of: value.littleEndian, as: T.self)
    }

    public func read<T: FixedWidthInteger>(_: T.Type, at address: UInt64) throws(MemoryError) -> T {
        let n = UInt64(MemoryLayout<T>.size)
        guard let off = hostOffset(of: address, length: n) else {
            throw .outOfRange(address: address, length: n)
        }
        return T(littleEndian: (hostBase + Int(off)).loadUnaligned(as: T.self))
    }

    /// Zero-fills a guest range.
    public func zero(at address: UInt64, count: UInt64) throws(MemoryError) {
        guard let off = hostOffset(of: address, length: count) else {
            throw .outOfRange(address: address, length: count)
        }
        memset(hostBase + Int(off), 0, Int(count))
    }
}
