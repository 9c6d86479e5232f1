/// A device on a bus: it answers accesses to the address range it was registered for.
/// `offset` is relative to the start of that range; `data` holds the 1 to 8 bytes of the
/// access, little-endian (a read fills it, a write carries it).
///
/// Threading: called on the vCPU thread that exited; devices serialize themselves.
public protocol BusDevice: AnyObject, Sendable {
    func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer)
    func write(offset: UInt64, from data: UnsafeRawBufferPointer)
}

/// The devices of one address space (port I/O or MMIO), each owning a range. Registration
/// happens while the VM is built and refuses overlaps; lookup on the exit path is a binary
/// search over a sorted array (no allocation, no lock: the table never changes once the
/// vCPUs run). An address no device owns reads as all ones and drops writes, like an
/// empty ISA bus or an unassigned MMIO hole.
public final class Bus: @unchecked Sendable {
    // Sendable invariant: `entries` is only mutated by `register`, before any vCPU runs.
    struct Entry {
        let base: UInt64
        let end: UInt64  // exclusive
        let device: BusDevice
    }

    public enum RegistrationError: Error, CustomStringConvertible {
        case overlap(name: String, base: UInt64, size: UInt64)
        case empty(name: String)
        public var description: String {
            switch self {
            case let .overlap(name, base, size):
                "bus: \(name) at 0x\(String(base, radix: 16)) (+0x\(String(size, radix: 16))) overlaps a device already there"
            case let .empty(name): "bus: \(name) registered with an empty range"
            }
        }
    }

    private(set) var entries: [Entry] = []
    public let name: String

    public init(name: String) { self.name = name }

    public func register(_ device: BusDevice, base: UInt64, size: UInt64, name: String) throws(RegistrationError) {
        guard size > 0 else { throw .empty(name: name) }
        let end = base &+ size
        for e in entries where base < e.end && e.base < end {
            throw .overlap(name: name, base: base, size: size)
        }
        entries.append(Entry(base: base, end: end, device: device))
        entries.sort { $0.base < $1.base }
    }

    public var deviceCount: Int { entries.count }

    @inline(__always)
    func find(_ address: UInt64) -> Entry? {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) >> 1
            let e = entries[mid]
            if address < e.base { high = mid } else if address >= e.end { low = mid + 1 } else { return e }
        }
        return nil
    }

    /// Returns false when no device owns `address` (the read is then all ones).
    @inline(__always)
    @discardableResult
    public func read(_ address: UInt64, into data: UnsafeMutableRawBufferPointer) -> Bool {
        guard let e = find(address) else {
            for i in 0..<data.count { data[i] = 0xFF }
            return false
        }
        e.device.read(offset: address - e.base, into: data)
        return true
    }

    @inline(__always)
    @discardableResult
    public func write(_ address: UInt64, from data: UnsafeRawBufferPointer) -> Bool {
        guard let e = find(address) else { return false }
        e.device.write(offset: address - e.base, from: data)
        return true
    }
}
