/// The error policy of `VirtqueueError`, in one place for every device.
extension Virtqueue {
    /// The next well-formed chain, or nil when the ring is empty or broken. Malformed
    /// chains are handed back to the driver with used length 0 on the way; a queue error
    /// breaks the queue and marks the device NEEDS_RESET through `interrupt`.
    public mutating func nextRequest(interrupt: VirtioInterrupt) -> DescriptorChain? {
        // Each failed chain consumes one avail slot, so this ends within a queue's worth.
        while true {
            do {
                return try popAvailable()
            } catch {
                if let head = error.failedHead {
                    addUsed(head: head, length: 0)
                    continue
                }
                interrupt.signalNeedsReset()
                return nil
            }
        }
    }

    /// Sends the used-buffer interrupt if the driver wants one for what was just used.
    public mutating func signalUsedIfNeeded(_ interrupt: VirtioInterrupt) {
        if needsInterrupt() { interrupt.signalUsedBuffer() }
    }
}

/// Little-endian reads of a device configuration space kept as bytes.
enum ConfigSpace {
    /// `size` bytes at `offset`; bytes past the end read as zero, bad sizes as zero.
    static func read(_ bytes: [UInt8], offset: Int, size: Int) -> UInt64 {
        guard [1, 2, 4, 8].contains(size), offset >= 0, offset < bytes.count else { return 0 }
        var value: UInt64 = 0
        for i in 0..<size where offset + i < bytes.count {
            value |= UInt64(bytes[offset + i]) << (8 * UInt64(i))
        }
        return value
    }

    /// Stores `value` little-endian into `bytes[offset..<offset+size]`.
    static func put<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<MemoryLayout<T>.size {
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i))
        }
    }
}
