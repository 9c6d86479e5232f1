import Snapshot
import Host
import Memory
import Synchronization

/// virtio-console (type 3) with a single port and no VIRTIO_CONSOLE_F_MULTIPORT:
/// queue 0 is receiveq (host → guest), queue 1 is transmitq (guest → host).
/// No size feature: cols/rows are left 0, Linux then keeps its default. Guests use it as
/// /dev/hvc0 (`console=hvc0`).
public final class VirtioConsole: VirtioDevice {
    /// Host input waiting for guest buffers is capped here; more is dropped (and counted).
    public static let inputBufferLimit = 64 << 10
    public static let queueSize: UInt16 = 256
    static let receiveQueue = 0
    static let transmitQueue = 1

    private struct State {
        var active: ActiveQueues?
        var pending: [UInt8] = []
        var droppedInput = 0
    }

    private let output: @Sendable ([UInt8]) -> Void
    private let state = Mutex(State())
    /// Signalled whenever the guest takes pending input, so a sender waiting for room
    /// (`pendingInputBytes` below `inputBufferLimit`) sleeps on it instead of polling.
    public let inputTaken: EventFD?

    /// `output` receives what the guest writes, in order. It is called with the device's
    /// lock held (which keeps the order across threads), so it must not call back into
    /// this device.
    public init(output: @escaping @Sendable ([UInt8]) -> Void) {
        self.output = output
        inputTaken = try? EventFD()
    }

    public var deviceType: UInt32 { VirtioDeviceType.console }
    public var queueCount: Int { 2 }
    public var maxQueueSize: UInt16 { Self.queueSize }
    public var offeredFeatures: UInt64 {
        VirtioFeature.version1 | VirtioFeature.eventIndex | VirtioFeature.indirectDescriptors
    }

    /// struct virtio_console_config: cols u16, rows u16, max_nr_ports u32, emerg_wr u32.
    /// Without SIZE/MULTIPORT/EMERG_WRITE the driver reads none of it; all zeros.
    public func readConfig(offset: Int, size: Int) -> UInt64 {
        ConfigSpace.read([UInt8](repeating: 0, count: 12), offset: offset, size: size)
    }

    public func writeConfig(offset: Int, size: Int, value: UInt64) {}

    public func activate(memory: GuestMemory, queues: [Virtqueue], features: UInt64, interrupt: VirtioInterrupt) {
        state.withLock { s in
            s.active = ActiveQueues(memory: memory, queues: queues, features: features, interrupt: interrupt)
            deliver(&s)
        }
    }

    public func processQueue(_ index: Int) {
        state.withLock { s in
            switch index {
            case Self.receiveQueue:
                // New receive buffers: hand over whatever input is waiting.
                deliver(&s)
            case Self.transmitQueue:
                s.active?.drain(index) { chain in
                    if let bytes = try? chain.readAll(), !bytes.isEmpty { output(bytes) }
                    return 0 // nothing written into a transmit buffer
                }
            default:
                break
            }
        }
    }

    /// Host input for the guest (from the terminal, say). Buffered up to
    /// `inputBufferLimit` until the guest has posted receive buffers.
    public func receive(_ bytes: [UInt8]) {
        state.withLock { s in
            let room = Self.inputBufferLimit - s.pending.count
            s.pending += bytes.prefix(room)
            s.droppedInput += max(0, bytes.count - room)
            deliver(&s)
        }
    }

    /// Host input waiting for guest receive buffers. A sender that must not lose bytes
    /// keeps this plus what it sends at or below `inputBufferLimit`.
    public var pendingInputBytes: Int { state.withLock { $0.pending.count } }

    /// Input bytes dropped because the guest did not take them fast enough.
    public var droppedInputBytes: Int { state.withLock { $0.droppedInput } }

    public func reset() {
        // Pending host input stays: it is the user's, not the old driver's.
        state.withLock { $0.active = nil }
    }

    private func deliver(_ s: inout State) {
        let before = s.pending.count
        Self.deliver(&s)
        if s.pending.count < before { inputTaken?.signal() }
    }

    private static func deliver(_ s: inout State) {
        let q = receiveQueue
        guard var active = s.active, !s.pending.isEmpty, active.queues.indices.contains(q) else { return }
        var taken = 0
        while taken < s.pending.count,
              let chain = active.queues[q].nextRequest(interrupt: active.interrupt) {
            let n = (try? chain.write(s.pending[taken...].prefix(chain.writableLength), at: 0)) ?? 0
            taken += n
            active.queues[q].addUsed(head: chain.head, length: UInt32(n))
        }
        active.queues[q].signalUsedIfNeeded(active.interrupt)
        s.pending.removeFirst(taken)
        s.active = active
    }
}

/// The ring positions and the host input not yet taken by the guest.
extension VirtioConsole: Snapshottable {
    public func saveState(to w: inout StateWriter) {
        state.withLock { s in
            s.active.savePositions(to: &w)
            w.put(bytes: s.pending)
        }
    }

    public func restoreState(from r: inout StateReader) throws(SnapshotError) {
        try state.withLock { (s) throws(SnapshotError) in
            try s.active.restorePositions(from: &r)
            s.pending = try r.getBytes("pending input", limit: Self.inputBufferLimit)
            deliver(&s)
        }
    }
}
