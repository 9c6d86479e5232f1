import Memory
import Synchronization

/// virtio-net (type 1): receiveq 0 and transmitq 1, one frame per descriptor chain, each
/// prefixed by the 12-byte virtio_net_hdr (VERSION_1 layout: flags, gso_type, hdr_len,
/// gso_size, csum_start, csum_offset, num_buffers).
///
/// No offloads yet: neither CSUM/GUEST_CSUM nor TSO/UFO nor MRG_RXBUF are offered, so
/// the guest sends complete, checksummed frames of at most its MTU and posts receive
/// buffers big enough for one such frame; headers are all zero on both paths
/// (num_buffers = 1 on receive). Offering offloads later needs the TAP offloads
/// (TUNSETOFFLOAD) set to match and the header passed through instead of zeroed.
///
/// Receive: the Machine polls the backend's file descriptor (edge-triggered is enough)
/// and calls `processBackendInput()`; frames go into receive buffers as long as there are
/// any. When the guest has none, one frame is held back and the rest stay in the backend
/// until the guest posts buffers (a notification on queue 0 resumes reading).
public final class VirtioNet: VirtioDevice {
    public static let featureMAC: UInt64 = 1 << 5
    public static let featureStatus: UInt64 = 1 << 16
    public static let linkUp: UInt16 = 1
    public static let headerSize = 12
    /// Largest frame accepted either way (without TSO a frame is at most the MTU plus
    /// link headers; this leaves room for jumbo MTUs).
    public static let maxFrameSize = 65535
    public static let queueSize: UInt16 = 256
    static let receiveQueue = 0
    static let transmitQueue = 1

    private struct State {
        var active: ActiveQueues?
        /// A frame read from the backend that found no receive buffer yet.
        var heldFrame: [UInt8]?
        var scratch: [UInt8] = []
        var droppedReceive = 0
        var droppedTransmit = 0
    }

    public let mac: MACAddress
    public let backend: any NetBackend
    private let state = Mutex(State())
    private let config: [UInt8]

    public init(mac: MACAddress, backend: any NetBackend) {
        self.mac = mac
        self.backend = backend
        // struct virtio_net_config: mac[6] at 0, status u16 at 6.
        var c = [UInt8](repeating: 0, count: 12)
        for (i, b) in mac.bytes.prefix(6).enumerated() { c[i] = b }
        ConfigSpace.put(Self.linkUp, into: &c, at: 6)
        config = c
    }

    /// A device on the TAP interface `tapInterface` (see `TapBackend`).
    public convenience init(mac: MACAddress, tapInterface: String) throws(TapError) {
        self.init(mac: mac, backend: try TapBackend(interfaceName: tapInterface))
    }

    /// The descriptor the Machine polls for input (EPOLLIN, edge-triggered is enough),
    /// calling `processBackendInput()` when it is readable; nil for non-TAP backends.
    public var backendFileDescriptor: Int32? { (backend as? TapBackend)?.fileDescriptor }

    public var deviceType: UInt32 { VirtioDeviceType.net }
    public var queueCount: Int { 2 }
    public var maxQueueSize: UInt16 { Self.queueSize }
    public var offeredFeatures: UInt64 {
        VirtioFeature.version1 | VirtioFeature.eventIndex | VirtioFeature.indirectDescriptors
            | Self.featureMAC | Self.featureStatus
    }

    public func readConfig(offset: Int, size: Int) -> UInt64 {
        ConfigSpace.read(config, offset: offset, size: size)
    }

    public func writeConfig(offset: Int, size: Int, value: UInt64) {
        // The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR-era legacy drivers.
    }

    public func activate(memory: GuestMemory, queues: [Virtqueue], features: UInt64, interrupt: VirtioInterrupt) {
        state.withLock { s in
            s.active = ActiveQueues(memory: memory, queues: queues, features: features, interrupt: interrupt)
            receive(&s)
        }
    }

    public func processQueue(_ index: Int) {
        state.withLock { s in
            switch index {
            case Self.receiveQueue: receive(&s) // new receive buffers
            case Self.transmitQueue: transmit(&s)
            default: break
            }
        }
    }

    /// False while the device cannot take frames (not activated, or holding one for want of
    /// guest buffers): the event loop then stops polling the backend, which would
    /// otherwise report it readable forever.
    public var wantsBackendInput: Bool {
        state.withLock { $0.active != nil && $0.heldFrame == nil }
    }

    /// The backend has frames (its descriptor polled readable): move them to the guest.
    public func processBackendInput() {
        state.withLock { receive(&$0) }
    }

    public func reset() {
        state.withLock { s in
            s.active = nil
            s.heldFrame = nil
        }
    }

    /// Frames dropped on receive (no room in the guest's buffer) and on transmit
    /// (malformed chain, oversized frame, backend error).
    public var droppedFrames: (receive: Int, transmit: Int) {
        state.withLock { ($0.droppedReceive, $0.droppedTransmit) }
    }

    private func receive(_ s: inout State) {
        let q = Self.receiveQueue
        guard var active = s.active, active.queues.indices.contains(q) else { return }
        defer { s.active = active }
        while true {
            if s.heldFrame == nil {
                guard let frame = readFrame(&s) else { break }
                s.heldFrame = frame
            }
            guard let chain = active.queues[q].nextRequest(interrupt: active.interrupt),
                  let frame = s.heldFrame else { break }
            s.heldFrame = nil
            guard chain.writableLength >= Self.headerSize + frame.count else {
                // Without MRG_RXBUF a frame must fit one buffer; the buffer goes back empty.
                s.droppedReceive += 1
                active.queues[q].addUsed(head: chain.head, length: 0)
                continue
            }
            var header = [UInt8](repeating: 0, count: Self.headerSize)
            header[10] = 1 // num_buffers
            let written = ((try? chain.write(header, at: 0)) ?? 0)
                + ((try? chain.write(frame, at: Self.headerSize)) ?? 0)
            active.queues[q].addUsed(head: chain.head, length: UInt32(written))
        }
        active.queues[q].signalUsedIfNeeded(active.interrupt)
    }

    private func readFrame(_ s: inout State) -> [UInt8]? {
        if s.scratch.count < Self.maxFrameSize { s.scratch = [UInt8](repeating: 0, count: Self.maxFrameSize) }
        let n = s.scratch.withUnsafeMutableBytes { buf -> Int? in
            guard let n = try? backend.receive(into: buf) else { return nil }
            return n
        }
        guard let n, n > 0 else { return nil }
        return Array(s.scratch[0..<min(n, s.scratch.count)])
    }

    private func transmit(_ s: inout State) {
        var dropped = 0
        s.active?.drain(Self.transmitQueue) { chain in
            let length = chain.readableLength
            guard length > Self.headerSize, length - Self.headerSize <= Self.maxFrameSize,
                  let bytes = try? chain.readAll(), bytes.count == length else {
                dropped += 1
                return 0
            }
            do {
                try backend.send(Array(bytes[Self.headerSize...]))
            } catch {
                dropped += 1
            }
            return 0 // a transmit buffer is only read
        }
        s.droppedTransmit += dropped
    }
}
