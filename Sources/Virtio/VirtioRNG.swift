import Snapshot
import Memory
import Synchronization

/// virtio-rng / entropy device (type 4): fills every device-writable buffer posted on its
/// single queue with random bytes from the kernel (getrandom(2), through the standard
/// library's SystemRandomNumberGenerator), at most `maxBytesPerRequest` per request.
public final class VirtioRNG: VirtioDevice {
    public static let maxBytesPerRequest = 64 << 10
    public static let queueSize: UInt16 = 256

    private let active = Mutex<ActiveQueues?>(nil)

    public init() {}

    public var deviceType: UInt32 { VirtioDeviceType.entropy }
    public var queueCount: Int { 1 }
    public var maxQueueSize: UInt16 { Self.queueSize }
    public var offeredFeatures: UInt64 {
        VirtioFeature.version1 | VirtioFeature.eventIndex | VirtioFeature.indirectDescriptors
    }

    public func readConfig(offset: Int, size: Int) -> UInt64 { 0 } // no configuration space
    public func writeConfig(offset: Int, size: Int, value: UInt64) {}

    public func activate(memory: GuestMemory, queues: [Virtqueue], features: UInt64, interrupt: VirtioInterrupt) {
        active.withLock { $0 = ActiveQueues(memory: memory, queues: queues, features: features, interrupt: interrupt) }
    }

    public func processQueue(_ index: Int) {
        active.withLock { a in
            a?.drain(index) { chain in
                let n = min(chain.writableLength, Self.maxBytesPerRequest)
                let filled = (try? chain.withWritablePieces(offset: 0, count: n) { piece, _ in
                    Self.fillRandom(piece)
                }) ?? 0
                return UInt32(filled)
            }
        }
    }

    public func reset() {
        active.withLock { $0 = nil }
    }

    static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
        var rng = SystemRandomNumberGenerator()
        var i = 0
        while i + 8 <= buffer.count {
            buffer.storeBytes(of: rng.next() as UInt64, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        if i < buffer.count {
            var last = rng.next() as UInt64
            while i < buffer.count {
                buffer[i] = UInt8(truncatingIfNeeded: last)
                last >>= 8
                i += 1
            }
        }
    }
}

extension VirtioRNG: Snapshottable {
    public func saveState(to w: inout StateWriter) {
        active.withLock { $0.savePositions(to: &w) }
    }

    public func restoreState(from r: inout StateReader) throws(SnapshotError) {
        try active.withLock { (a) throws(SnapshotError) in try a.restorePositions(from: &r) }
    }
}
