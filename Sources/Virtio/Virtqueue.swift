import Memory

/// The device side of one split virtqueue (virtio 1.x §2.7): descriptor table, available
/// ring (driver → device) and used ring (device → driver), all in guest RAM.
///
/// The driver runs concurrently on a vCPU and owns the descriptor table and avail ring;
/// the device owns the used ring. Nothing the driver writes is trusted: every index is
/// range-checked, every buffer is checked against guest RAM, chains are bounded.
/// A `Virtqueue` is used by one thread at a time (the device keeps it under its lock).
public struct Virtqueue: Sendable {
    /// The largest queue size the split ring allows.
    public static let maximumSize: UInt16 = 32768

    static let descriptorFlagNext: UInt16 = 1
    static let descriptorFlagWrite: UInt16 = 2
    static let descriptorFlagIndirect: UInt16 = 4
    static let availFlagNoInterrupt: UInt16 = 1

    public let size: UInt16
    public let descriptorTable: UInt64
    public let availRing: UInt64
    public let usedRing: UInt64
    /// VIRTIO_F_EVENT_IDX was negotiated.
    public let eventIndex: Bool
    /// VIRTIO_F_INDIRECT_DESC was negotiated.
    public let indirectDescriptors: Bool
    let memory: GuestMemory

    /// The next avail ring slot the device will consume (free-running, wraps at 65536).
    public private(set) var nextAvail: UInt16 = 0
    /// The next used ring slot the device will fill (free-running, wraps at 65536).
    public private(set) var nextUsed: UInt16 = 0
    /// Set after a queue error: the queue pops nothing more until the device is reset.
    public private(set) var isBroken = false

    /// avail idx as last read: chains up to it may be consumed without re-reading it.
    private var availIndexSeen: UInt16 = 0
    /// Used entries added since `needsInterrupt()` last looked, and nextUsed at that time.
    private var usedSinceCheck = 0
    private var usedAtCheck: UInt16 = 0

    /// Bytes of each ring part for a queue of `size` entries, including the event fields.
    public static func ringLengths(size: UInt16) -> (descriptorTable: UInt64, availRing: UInt64, usedRing: UInt64) {
        let n = UInt64(size)
        return (16 * n, 6 + 2 * n, 6 + 8 * n)
    }

    /// Validates the driver's configuration: `size` a power of two not above
    /// `maximumSize` (the device's QueueNumMax), each part aligned and inside guest RAM.
    public init(memory: GuestMemory, size: UInt32, descriptorTable: UInt64, availRing: UInt64,
                usedRing: UInt64, eventIndex: Bool = false, indirectDescriptors: Bool = false,
                maximumSize: UInt16 = Virtqueue.maximumSize) throws(VirtqueueError) {
        let limit = UInt32(min(maximumSize, Self.maximumSize))
        guard size > 0, size <= limit, size & (size - 1) == 0 else { throw .invalidSize(size) }
        let lengths = Self.ringLengths(size: UInt16(size))
        for (name, address, length, alignment) in [
            ("descriptor table", descriptorTable, lengths.descriptorTable, UInt64(16)),
            ("available ring", availRing, lengths.availRing, 2),
            ("used ring", usedRing, lengths.usedRing, 4),
        ] {
            guard address % alignment == 0, memory.contains(address, length: length) else {
                throw .ringOutOfRange(name: name, address: address, length: length)
            }
        }
        self.memory = memory
        self.size = UInt16(size)
        self.descriptorTable = descriptorTable
        self.availRing = availRing
        self.usedRing = usedRing
        self.eventIndex = eventIndex
        self.indirectDescriptors = indirectDescriptors
    }

    /// Where a restored queue picks up: the ring positions a saved device had reached.
    /// Only for a queue nothing has used yet (just built from the saved configuration).
    public mutating func restorePositions(nextAvail: UInt16, nextUsed: UInt16) {
        self.nextAvail = nextAvail
        self.nextUsed = nextUsed
        availIndexSeen = nextAvail
        usedAtCheck = nextUsed
        usedSinceCheck = 0
    }

    // MARK: Ring field addresses

    private var availIndexAddress: UInt64 { availRing + 2 }
    private func availSlotAddress(_ i: UInt16) -> UInt64 { availRing + 4 + 2 * UInt64(i % size) }
    /// used_event: the used idx at which the driver wants its next interrupt.
    private var usedEventAddress: UInt64 { availRing + 4 + 2 * UInt64(size) }
    private var usedIndexAddress: UInt64 { usedRing + 2 }
    private func usedSlotAddress(_ i: UInt16) -> UInt64 { usedRing + 4 + 8 * UInt64(i % size) }
    /// avail_event: the avail idx at which the device wants its next notification.
    private var availEventAddress: UInt64 { usedRing + 4 + 8 * UInt64(size) }

    // The rings were checked against guest RAM in init and RAM never shrinks, so these
    // accesses cannot fail; a failure would mean a broken invariant, and reads as "empty".
    private func load16(_ address: UInt64) -> UInt16? { try? memory.read(UInt16.self, at: address) }
    private func store<T: FixedWidthInteger>(_ value: T, _ address: UInt64) { try? memory.write(value, at: address) }

    // MARK: Consuming available chains

    /// The next chain the driver made available, or nil if there is none (or the queue is
    /// broken). A thrown error names the problem; see `VirtqueueError` for what the caller
    /// does with it. With EVENT_IDX, finding the ring empty publishes avail_event so the
    /// driver notifies on its next buffer.
    public mutating func popAvailable() throws(VirtqueueError) -> DescriptorChain? {
        if isBroken { return nil }
        if nextAvail == availIndexSeen {
            guard try refreshAvailIndex() else { return nil }
        }
        guard let head = load16(availSlotAddress(nextAvail)) else { return nil }
        nextAvail &+= 1
        guard head < size else {
            isBroken = true
            throw .headIndexOutOfRange(head: head, size: size)
        }
        return try walkChain(head: head)
    }

    /// Reads avail idx (once per pass over the ring). Returns true if chains are waiting.
    private mutating func refreshAvailIndex() throws(VirtqueueError) -> Bool {
        guard var index = load16(availIndexAddress) else { return false }
        if index == nextAvail && eventIndex {
            // Ask for a notification when the driver publishes slot nextAvail, then look
            // again: it may have published just before seeing our avail_event.
            store(nextAvail, availEventAddress)
            MemoryBarrier.full()
            guard let again = load16(availIndexAddress) else { return false }
            index = again
        }
        let pending = index &- nextAvail
        guard pending <= size else {
            isBroken = true
            throw .availIndexTooFarAhead(availIndex: index, nextAvail: nextAvail, size: size)
        }
        availIndexSeen = index
        // Ring entries and descriptors are read only after the index that published them.
        MemoryBarrier.acquire()
        return pending > 0
    }

    private struct RawDescriptor {
        var address: UInt64
        var length: UInt32
        var flags: UInt16
        var next: UInt16
    }

    private func readDescriptor(table: UInt64, index: UInt16, head: UInt16) throws(VirtqueueError) -> RawDescriptor {
        let at = table + 16 * UInt64(index)
        let d = try? memory.withMutableBytes(at: at, length: 16) { p in
            RawDescriptor(address: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                          length: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
                          flags: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self)),
                          next: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
        }
        // Unreachable: tables were range-checked. Kept defined all the same.
        guard let d else { throw .nextIndexOutOfRange(head: head, index: index) }
        return d
    }

    /// Follows the chain from `head` through NEXT links and at most one indirect table.
    private func walkChain(head: UInt16) throws(VirtqueueError) -> DescriptorChain {
        var readable: [DescriptorChain.Segment] = []
        var writable: [DescriptorChain.Segment] = []
        var total: UInt64 = 0
        var table = descriptorTable
        var tableEntries = UInt32(size)
        var inIndirect = false
        var index = head
        // Descriptors left before the chain counts as a loop: the queue size for the
        // descriptors in the ring (a chain can use each at most once), then the table's
        // length for an indirect table. The latter is not capped at the queue size: Linux
        // sizes indirect tables by its scatter-gather limit (virtio-blk: seg_max + 2) even
        // when it had to settle for a smaller ring; 32768 bounds the walk all the same.
        var remaining = Int(size)

        while true {
            guard remaining > 0 else { throw .chainTooLong(head: head) }
            remaining -= 1
            let d = try readDescriptor(table: table, index: index, head: head)

            if d.flags & Self.descriptorFlagIndirect != 0 {
                guard !inIndirect else { throw .invalidIndirect(head: head, reason: .nested) }
                guard indirectDescriptors else { throw .invalidIndirect(head: head, reason: .notNegotiated) }
                guard d.flags & Self.descriptorFlagNext == 0 else {
                    throw .invalidIndirect(head: head, reason: .combinedWithNext)
                }
                guard d.length > 0, d.length % 16 == 0 else {
                    throw .invalidIndirect(head: head, reason: .badLength)
                }
                guard memory.contains(d.address, length: UInt64(d.length)) else {
                    throw .invalidIndirect(head: head, reason: .outOfRange)
                }
                // The WRITE flag of the descriptor naming the table is ignored (§2.7.5.3.2).
                table = d.address
                tableEntries = d.length / 16
                inIndirect = true
                index = 0
                remaining = min(Int(tableEntries), Int(Self.maximumSize))
                continue
            }

            guard memory.contains(d.address, length: UInt64(d.length)) else {
                throw .bufferOutOfRange(head: head, address: d.address, length: d.length)
            }
            total += UInt64(d.length)
            guard total <= UInt64(UInt32.max) else { throw .chainTooLarge(head: head) }
            let segment = DescriptorChain.Segment(address: d.address, length: d.length)
            if d.flags & Self.descriptorFlagWrite != 0 {
                if d.length > 0 { writable.append(segment) }
            } else {
                guard writable.isEmpty else { throw .readableAfterWritable(head: head) }
                if d.length > 0 { readable.append(segment) }
            }

            guard d.flags & Self.descriptorFlagNext != 0 else { break }
            guard UInt32(d.next) < tableEntries else {
                throw .nextIndexOutOfRange(head: head, index: d.next)
            }
            index = d.next
        }
        return DescriptorChain(head: head, readable: readable, writable: writable, memory: memory)
    }

    // MARK: Returning used chains

    /// Returns the chain `head` to the driver, `length` bytes having been written into its
    /// device-writable part. A head outside the queue (never produced by `popAvailable`)
    /// is ignored, so the used ring only ever names descriptors of this queue.
    public mutating func addUsed(head: UInt16, length: UInt32) {
        guard head < size, !isBroken else { return }
        let slot = usedSlotAddress(nextUsed)
        store(UInt32(head), slot)
        store(length, slot + 4)
        nextUsed &+= 1
        usedSinceCheck += 1
        // The element must be visible before the index that publishes it.
        MemoryBarrier.release()
        store(nextUsed, usedIndexAddress)
    }

    /// Whether the driver wants an interrupt for the chains used since the last call:
    /// with EVENT_IDX, if used idx crossed used_event; otherwise unless the driver set
    /// VIRTQ_AVAIL_F_NO_INTERRUPT. False when nothing was used since the last call.
    public mutating func needsInterrupt() -> Bool {
        let new = nextUsed
        let old = usedAtCheck
        let count = usedSinceCheck
        usedAtCheck = new
        usedSinceCheck = 0
        if count == 0 || isBroken { return false }
        // Our used idx store must be visible before we read the driver's suppression field,
        // and the driver does the mirror image: otherwise both sides can miss each other.
        MemoryBarrier.full()
        if eventIndex {
            // More than 65535 completions since the last look: the window test below
            // cannot tell, and an extra interrupt is always safe.
            if count >= 1 << 16 { return true }
            guard let usedEvent = load16(usedEventAddress) else { return true }
            // vring_need_event: did used idx move past used_event in (old, new]?
            return (new &- usedEvent &- 1) < (new &- old)
        }
        guard let flags = load16(availRing) else { return true }
        return flags & Self.availFlagNoInterrupt == 0
    }
}
