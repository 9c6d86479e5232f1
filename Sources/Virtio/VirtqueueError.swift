/// What can be wrong with a virtqueue or a descriptor chain the driver published.
///
/// Policy (every case ends in a defined state, none traps):
/// - **Request errors** (`failedHead != nil`): the chain's head index was valid, so the
///   driver can be given its descriptors back. The head has been consumed from the avail
///   ring; the caller completes it with used length 0 (`Virtqueue.addUsed(head:length:)`)
///   and carries on with the next chain. A device that reports per-request status (blk)
///   cannot write it here: the chain itself is not trustworthy, so no byte of it is written.
/// - **Queue errors** (`failedHead == nil`): the ring itself is unusable (avail idx more
///   than a queue ahead, a head index outside the table, rings outside RAM, a bad size).
///   Nothing sensible can be returned to the driver, so the queue stops (`isBroken`) and the
///   device must be marked NEEDS_RESET with a configuration-change interrupt
///   (`VirtioInterrupt.signalNeedsReset()`), as virtio 1.x §2.1.2 prescribes.
public enum VirtqueueError: Error, Equatable, Sendable, CustomStringConvertible {
    // Queue errors: configuration.
    /// Queue size zero, not a power of two, or larger than the device's maximum / 32768.
    case invalidSize(UInt32)
    /// A ring is not entirely in guest RAM, or is misaligned.
    case ringOutOfRange(name: String, address: UInt64, length: UInt64)

    // Queue errors: run time.
    /// avail idx is more than a queue size ahead of what the device consumed.
    case availIndexTooFarAhead(availIndex: UInt16, nextAvail: UInt16, size: UInt16)
    /// An avail ring entry names a descriptor outside the table.
    case headIndexOutOfRange(head: UInt16, size: UInt16)

    // Request errors: the chain starting at `head` is malformed.
    /// A `next` field (or an indirect table entry's) points outside its table.
    case nextIndexOutOfRange(head: UInt16, index: UInt16)
    /// A buffer is not entirely in guest RAM (includes address+length overflowing 64 bits).
    case bufferOutOfRange(head: UInt16, address: UInt64, length: UInt32)
    /// More descriptors than the queue size (or the indirect table) holds: a loop.
    case chainTooLong(head: UInt16)
    /// The buffers add up to more than 4 GiB - 1 (the spec allows < 2^32).
    case chainTooLarge(head: UInt16)
    /// A device-readable descriptor follows a device-writable one.
    case readableAfterWritable(head: UInt16)
    /// INDIRECT without the feature, with NEXT, inside an indirect table, or with a
    /// table length that is zero, not a multiple of 16 or outside RAM.
    case invalidIndirect(head: UInt16, reason: IndirectProblem)

    public enum IndirectProblem: String, Sendable {
        case notNegotiated = "VIRTIO_F_INDIRECT_DESC was not negotiated"
        case combinedWithNext = "INDIRECT combined with NEXT"
        case nested = "nested indirect table"
        case badLength = "table length zero or not a multiple of 16"
        case outOfRange = "table outside guest RAM"
    }

    /// The head to complete with used length 0, for request errors; nil for queue errors.
    public var failedHead: UInt16? {
        switch self {
        case .invalidSize, .ringOutOfRange, .availIndexTooFarAhead, .headIndexOutOfRange:
            return nil
        case let .nextIndexOutOfRange(head, _), let .bufferOutOfRange(head, _, _),
             let .chainTooLong(head), let .chainTooLarge(head), let .readableAfterWritable(head),
             let .invalidIndirect(head, _):
            return head
        }
    }

    /// True when the device must be marked NEEDS_RESET.
    public var needsReset: Bool { failedHead == nil }

    public var description: String {
        switch self {
        case let .invalidSize(n):
            return "virtqueue size \(n) is not a power of two in 1...32768 within the device maximum"
        case let .ringOutOfRange(name, address, length):
            return "virtqueue \(name) 0x\(String(address, radix: 16))+0x\(String(length, radix: 16)) is outside guest RAM or misaligned"
        case let .availIndexTooFarAhead(avail, next, size):
            return "avail idx \(avail) is more than \(size) ahead of \(next)"
        case let .headIndexOutOfRange(head, size):
            return "avail ring names descriptor \(head), queue size is \(size)"
        case let .nextIndexOutOfRange(head, index):
            return "chain \(head): next index \(index) is outside the table"
        case let .bufferOutOfRange(head, address, length):
            return "chain \(head): buffer 0x\(String(address, radix: 16))+0x\(String(length, radix: 16)) is outside guest RAM"
        case let .chainTooLong(head):
            return "chain \(head) has more descriptors than its table (a loop?)"
        case let .chainTooLarge(head):
            return "chain \(head) is 4 GiB or more in total"
        case let .readableAfterWritable(head):
            return "chain \(head): a device-readable descriptor follows a device-writable one"
        case let .invalidIndirect(head, reason):
            return "chain \(head): \(reason.rawValue)"
        }
    }
}
