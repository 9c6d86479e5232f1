import Snapshot
import Host
import Memory
import Synchronization

/// virtio-net (type 1): receiveq 0 and transmitq 1. Each packet is a 12-byte
/// virtio_net_hdr (`VirtioNetHeader`) and an Ethernet frame; the header passes between
/// driver and TAP as it is, checked on the way (`NetHeaderValidation`).
///
/// Offloads: CSUM/GUEST_CSUM and HOST_/GUEST_TSO4/6, offered as far as the TAP supports
/// them (`VirtioNetFeature.offloadFeatures`). What the driver accepts decides what the TAP
/// may hand us (TUNSETOFFLOAD at activation): partial checksums, 64 KiB TCP frames.
///
/// Receive buffers: MRG_RXBUF is offered and a big packet is spread over several chains
/// (`NetReceivePlacement`). The alternative, GUEST_TSO without MRG_RXBUF, makes Linux post
/// "big" buffers of about 17 pages each, so a 256-entry ring pins some 17 MiB of a small
/// guest's RAM and every ACK still takes a whole one; mergeable buffers are sized by the
/// guest from recent traffic (1.5 to 4 KiB), which is also what QEMU, Cloud Hypervisor and
/// kvmtool do. A driver that does not negotiate MRG_RXBUF still works: one chain per
/// packet, dropped if it does not fit.
///
/// Receive: the device registers its backend's descriptor with the VM's event loop
/// (`register(with:)`) and reads packets when it is readable; they go into receive buffers
/// as long as there are any. When the guest has none, one packet is held back, the
/// descriptor is taken out of the loop's interest set (it would otherwise report readable
/// forever), and the rest stay in the backend until the guest posts buffers (a
/// notification on queue 0 resumes reading and re-arms the descriptor).
public final class VirtioNet: VirtioDevice, EventSource {
    public static let linkUp: UInt16 = 1
    /// Largest frame accepted either way: the largest IP packet (64 KiB - 1, which TSO
    /// frames reach) behind an Ethernet header with one VLAN tag.
    public static let maxFrameSize = 65535 + 14 + 4
    public static let queueSize: UInt16 = 256
    static let receiveQueue = 0
    static let transmitQueue = 1
    /// Features offered whatever the backend supports.
    static let baseFeatures = VirtioFeature.version1 | VirtioFeature.eventIndex | VirtioFeature.indirectDescriptors
        | VirtioNetFeature.mac | VirtioNetFeature.status | VirtioNetFeature.mergeableReceiveBuffers

    private struct State {
        var active: ActiveQueues?
        /// A packet read from the backend that found no (or not enough) receive buffers yet.
        var pending: NetReceivePlacement?
        var scratch: [UInt8] = []
        var droppedReceive = 0
        var droppedTransmit = 0
        /// Why the TAP offloads could not follow the last driver's features, if they could not.
        var offloadFailure: String?
        /// The loop watching the backend's descriptor, and whether it is watched for input now.
        var loop: EventLoop?
        var watching = false
    }

    public let mac: MACAddress
    public let backend: any NetBackend
    public let offeredFeatures: UInt64
    private let state = Mutex(State())
    private let config: [UInt8]

    public init(mac: MACAddress, backend: any NetBackend) {
        self.mac = mac
        self.backend = backend
        offeredFeatures = Self.baseFeatures | VirtioNetFeature.offloadFeatures(for: backend.supportedOffloads)
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

    /// Watches the backend's descriptor (if it has one) on `loop`; input is read there.
    public func register(with loop: EventLoop) throws(HostError) {
        guard let fd = backend.pollDescriptor else { return }
        try loop.add(fd: fd, events: [], source: self)
        state.withLock { s in
            s.loop = loop
            updateInterest(&s)
        }
    }

    public func unregister(from loop: EventLoop) {
        guard let fd = backend.pollDescriptor else { return }
        loop.remove(fd: fd)
        state.withLock { $0.loop = nil }
    }

    public func handleEvent(fd: Int32, events: UInt32) {
        processBackendInput()
    }

    /// Watches the backend exactly while the device can take frames.
    private func updateInterest(_ s: inout State) {
        guard let loop = s.loop, let fd = backend.pollDescriptor else { return }
        let wanted = s.active != nil && s.pending == nil
        guard wanted != s.watching else { return }
        do {
            try loop.modify(fd: fd, events: wanted ? .readable : [])
            s.watching = wanted
        } catch {
            s.offloadFailure = s.offloadFailure ?? "\(error)"
        }
    }

    public var deviceType: UInt32 { VirtioDeviceType.net }
    public var queueCount: Int { 2 }
    public var maxQueueSize: UInt16 { Self.queueSize }

    public func readConfig(offset: Int, size: Int) -> UInt64 {
        ConfigSpace.read(config, offset: offset, size: size)
    }

    public func writeConfig(offset: Int, size: Int, value: UInt64) {
        // The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR-era legacy drivers.
    }

    public func activate(memory: GuestMemory, queues: [Virtqueue], features: UInt64, interrupt: VirtioInterrupt) {
        // The TAP hands over only what this driver can take. Should that fail, the TAP keeps
        // its previous offloads and receive drops whatever the driver did not negotiate.
        let offloads = NetOffloads.forReceive(negotiated: features).intersection(backend.supportedOffloads)
        var failure: String?
        do { try backend.setReceiveOffloads(offloads) } catch { failure = "\(error)" }
        state.withLock { s in
            s.offloadFailure = failure
            s.active = ActiveQueues(memory: memory, queues: queues, features: features, interrupt: interrupt)
            receive(&s)
            updateInterest(&s)
        }
    }

    public func processQueue(_ index: Int) {
        state.withLock { s in
            switch index {
            case Self.receiveQueue: receive(&s) // new receive buffers
            case Self.transmitQueue: transmit(&s)
            default: break
            }
            updateInterest(&s)
        }
    }

    /// False while the device cannot take frames (not activated, or holding one for want of
    /// guest buffers): the backend's descriptor is then out of the loop's interest set.
    public var wantsBackendInput: Bool {
        state.withLock { $0.active != nil && $0.pending == nil }
    }

    /// The backend has frames (its descriptor polled readable): move them to the guest.
    public func processBackendInput() {
        state.withLock { s in
            receive(&s)
            updateInterest(&s)
        }
    }

    public func reset() {
        state.withLock { s in
            s.active = nil
            s.pending = nil
            updateInterest(&s)
        }
        // Back to what the TAP does before any driver (a failure changes nothing: receive
        // checks every header against the next driver's features anyway).
        try? backend.setReceiveOffloads([])
    }

    /// Frames dropped on receive (no room in the guest's buffers, an offload the driver did
    /// not negotiate) and on transmit (malformed chain or header, oversized frame, backend
    /// error).
    public var droppedFrames: (receive: Int, transmit: Int) {
        state.withLock { ($0.droppedReceive, $0.droppedTransmit) }
    }

    /// The error of the last attempt to set the TAP's offloads for a driver, if it failed.
    public var offloadFailure: String? { state.withLock { $0.offloadFailure } }

    private func receive(_ s: inout State) {
        let q = Self.receiveQueue
        guard var active = s.active, active.queues.indices.contains(q) else { return }
        defer { s.active = active }
        let mergeable = active.features & VirtioNetFeature.mergeableReceiveBuffers != 0
        while true {
            if s.pending == nil {
                guard let packet = readPacket(&s) else { break }
                guard let checked = Self.checkedForReceive(packet, negotiated: active.features) else {
                    s.droppedReceive += 1
                    continue
                }
                s.pending = NetReceivePlacement(packet: checked)
            }
            let progress = s.pending!.place(into: &active.queues[q], interrupt: active.interrupt, mergeable: mergeable)
            if progress == .waitingForBuffers { break }
            if progress == .dropped { s.droppedReceive += 1 }
            s.pending = nil
        }
        active.queues[q].signalUsedIfNeeded(active.interrupt)
    }

    /// The backend's packet with its header made fit for the driver, or nil to drop it.
    static func checkedForReceive(_ packet: [UInt8], negotiated features: UInt64) -> [UInt8]? {
        guard packet.count > VirtioNetHeader.size, let header = VirtioNetHeader(packet),
              case let .success(checked) = header.forReceive(frameLength: packet.count - VirtioNetHeader.size,
                                                             negotiated: features) else { return nil }
        var result = packet
        result.replaceSubrange(0..<VirtioNetHeader.size, with: checked.bytes)
        return result
    }

    private func readPacket(_ s: inout State) -> [UInt8]? {
        let capacity = VirtioNetHeader.size + Self.maxFrameSize
        if s.scratch.count < capacity { s.scratch = [UInt8](repeating: 0, count: capacity) }
        let n = s.scratch.withUnsafeMutableBytes { buf -> Int? in
            guard let n = try? backend.receive(into: buf) else { return nil }
            return n
        }
        guard let n, n > 0 else { return nil }
        return Array(s.scratch[0..<min(n, s.scratch.count)])
    }

    private func transmit(_ s: inout State) {
        var dropped = 0
        let features = s.active?.features ?? 0
        s.active?.drain(Self.transmitQueue) { chain in
            switch NetTransmitPacket.parse(chain, negotiated: features) {
            case let .success(packet):
                do { try backend.send(packet) } catch { dropped += 1 }
            case .failure:
                dropped += 1
            }
            return 0 // a transmit buffer is only read
        }
        s.droppedTransmit += dropped
    }
}

/// The ring positions. A received packet still waiting for buffers is dropped (the
/// network loses packets anyway; TCP sends it again), and the receive chains it held are
/// given back by rewinding the ring, so the guest loses no buffers. The TAP is reopened
/// by name when the VM is rebuilt, and activation sets its offloads again.
extension VirtioNet: Snapshottable {
    public func saveState(to w: inout StateWriter) {
        state.withLock { s in
            s.active.savePositions(to: &w, held: [Self.receiveQueue: s.pending?.heldChains ?? 0])
        }
    }

    public func restoreState(from r: inout StateReader) throws(SnapshotError) {
        try state.withLock { (s) throws(SnapshotError) in
            try s.active.restorePositions(from: &r)
            s.pending = nil
            updateInterest(&s)
        }
    }
}
