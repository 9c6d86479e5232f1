import Glibc
import Host
import Memory
import Synchronization
import Virtio

/// virtio-fs (device id 26, virtio 1.2 §5.11) served by a vhost-user backend such as
/// virtiofsd. svm is off the data path: the driver's queue kicks (ioeventfds) go to the
/// backend, the backend's calls go to the guest's irqfd, and the backend reads and writes
/// the rings in the shared guest RAM itself. What svm does is the control plane: the
/// register window and config space (tag, queue count), and telling the backend about
/// memory and rings when the driver starts the device and taking them back at reset.
///
/// A backend that dies or answers nonsense puts the device in NEEDS_RESET, reported once
/// through `failure`; the VM keeps running.
///
/// Locking: `state` is taken by the transport's calls (vCPU threads, inside the
/// transport's lock) and by the event loop when the socket hangs up; a backend exchange
/// happens under it, bounded by the channel's reply timeout.
public final class VirtioFS: VirtioDevice, EventSource, @unchecked Sendable {
    public static let tagLength = 36
    /// One high-priority queue (FUSE interrupts and forgets) and one request queue.
    public static let requestQueues = 1
    public static let queueSize: UInt16 = 1024

    /// Virtio features svm lets through from the backend to the driver: what the rings
    /// need. Everything else a backend might offer (logging, notification tricks) stays out.
    static let passedThrough = VirtioFeature.version1 | VirtioFeature.indirectDescriptors | VirtioFeature.eventIndex

    public let tag: String
    public let deviceType = VirtioDeviceType.filesystem
    public let queueCount = 1 + VirtioFS.requestQueues
    public let maxQueueSize = VirtioFS.queueSize
    public let offeredFeatures: UInt64
    public var queueEventsGoToBackend: Bool { true }

    private let channel: VhostUserChannel
    private let backendFeatures: UInt64
    private let protocolFeatures: UInt64
    private let failure: @Sendable (String) -> Void

    public enum Health: Equatable, Sendable {
        case waiting, running, failed(String)
        public var description: String {
            switch self {
            case .waiting: "waiting for the driver"
            case .running: "running"
            case let .failed(why): "failed: \(why)"
            }
        }
    }

    private struct State {
        var kicks: [EventFD] = []
        var call: EventFD?
        var interrupt: VirtioInterrupt?
        var active = false
        var health = Health.waiting
        var loop: EventLoop?
    }
    private let state = Mutex(State())

    /// Connects to the backend at `socketPath` and negotiates what can be before a driver
    /// exists: ownership, the backend's virtio and protocol features, its queue count.
    public init(tag: String, socketPath: String, failure: @escaping @Sendable (String) -> Void) throws(VhostUserError) {
        guard !tag.isEmpty, tag.utf8.count <= Self.tagLength else {
            throw .unsupported("tag '\(tag)': must be 1 to \(Self.tagLength) bytes")
        }
        self.tag = tag
        self.failure = failure
        channel = try VhostUserChannel(connectingTo: socketPath)
        try channel.send(VhostUserMessage(.setOwner))
        try channel.send(VhostUserMessage(.getFeatures))
        backendFeatures = try channel.replyU64(to: .getFeatures)
        guard backendFeatures & VirtioFeature.version1 != 0 else {
            throw .unsupported("does not offer VIRTIO_F_VERSION_1 (features 0x\(String(backendFeatures, radix: 16)))")
        }
        var negotiated: UInt64 = 0
        if backendFeatures & VhostUserFeature.protocolFeatures != 0 {
            try channel.send(VhostUserMessage(.getProtocolFeatures))
            let offered = try channel.replyU64(to: .getProtocolFeatures)
            negotiated = offered & (VhostUserProtocolFeature.replyAck | VhostUserProtocolFeature.multipleQueues)
            try channel.send(.u64(.setProtocolFeatures, negotiated))
            if negotiated & VhostUserProtocolFeature.multipleQueues != 0 {
                try channel.send(VhostUserMessage(.getQueueNum))
                let queues = try channel.replyU64(to: .getQueueNum)
                guard queues >= UInt64(queueCount) else {
                    throw .unsupported("serves \(queues) queues; virtio-fs here needs \(queueCount)")
                }
            }
        }
        protocolFeatures = negotiated
        offeredFeatures = backendFeatures & Self.passedThrough
    }

    /// The transport's ioeventfds (one per queue) and the device's irqfd: handed to the
    /// backend at activation, so kicks and calls never pass through svm.
    public func connectQueueEvents(kicks: [EventFD], call: EventFD) {
        state.withLock {
            $0.kicks = kicks
            $0.call = call
        }
    }

    /// Watches the socket for the backend hanging up (it sends nothing on its own).
    public func register(with loop: EventLoop) throws(HostError) {
        try loop.add(fd: channel.fd, events: .peerClosed, source: self)
        state.withLock { $0.loop = loop }
    }

    public var health: Health { state.withLock { $0.health } }

    // MARK: Configuration space: tag[36], then num_request_queues (le32)

    public func readConfig(offset: Int, size: Int) -> UInt64 {
        var space = Array(tag.utf8) + [UInt8](repeating: 0, count: Self.tagLength - tag.utf8.count)
        withUnsafeBytes(of: UInt32(Self.requestQueues).littleEndian) { space += $0 }
        guard offset >= 0, size > 0, size <= 8 else { return 0 }
        var v: UInt64 = 0
        for i in (0..<size).reversed() {
            v <<= 8
            if offset + i < space.count { v |= UInt64(space[offset + i]) }
        }
        return v
    }

    public func writeConfig(offset: Int, size: Int, value: UInt64) {} // read-only

    // MARK: Lifecycle

    public func activate(memory: GuestMemory, queues: [Virtqueue], features: UInt64, interrupt: VirtioInterrupt) {
        state.withLock { s in
            s.interrupt = interrupt
            if case .failed = s.health {
                interrupt.signalNeedsReset()
                return
            }
            do {
                try start(memory: memory, queues: queues, features: features, &s)
                s.active = true
                s.health = .running
            } catch {
                fail("\(error)", &s)
            }
        }
    }

    private func start(memory: GuestMemory, queues: [Virtqueue], features: UInt64, _ s: inout State) throws(VhostUserError) {
        guard s.kicks.count == queues.count, let call = s.call else {
            throw .unsupported("has no queue eventfds (the device manager did not connect them)")
        }
        let table: MemoryTable
        do { table = try MemoryTable(memory: memory) } catch { throw .unsupported("\(error)") }
        try request(.u64(.setFeatures, features | (backendFeatures & VhostUserFeature.protocolFeatures)))
        try request(.memoryTable(table))
        for (i, q) in queues.enumerated() {
            let index = UInt32(i)
            let lengths = Virtqueue.ringLengths(size: q.size)
            guard let desc = table.userAddress(of: q.descriptorTable, length: lengths.descriptorTable),
                  let used = table.userAddress(of: q.usedRing, length: lengths.usedRing),
                  let avail = table.userAddress(of: q.availRing, length: lengths.availRing) else {
                throw .unsupported("cannot be given vring \(i): it is outside guest RAM")
            }
            try request(.vringState(.setVringNum, index: index, value: UInt32(q.size)))
            try request(.vringAddress(index: index, descriptorTable: desc, usedRing: used, availableRing: avail))
            try request(.vringState(.setVringBase, index: index, value: 0))
            try request(.vringDescriptor(.setVringKick, index: index, fd: s.kicks[i].fd))
            try request(.vringDescriptor(.setVringCall, index: index, fd: call.fd))
            if backendFeatures & VhostUserFeature.protocolFeatures != 0 {
                // With protocol features, rings start disabled (vhost-user.rst, "Ring states").
                try request(.vringState(.setVringEnable, index: index, value: 1))
            }
        }
    }

    /// Sends a request that has no reply of its own; with REPLY_ACK, asks for one and
    /// checks it, so a refused memory table or ring is caught here, not at the first I/O.
    private func request(_ message: VhostUserMessage) throws(VhostUserError) {
        var m = message
        let ack = protocolFeatures & VhostUserProtocolFeature.replyAck != 0
        if ack { m.flags |= VhostUserFlags.needReply }
        try channel.send(m)
        if ack {
            let status = try channel.replyU64(to: m.request)
            guard status == 0 else { throw .refused(m.request, status: status) }
        }
    }

    public func processQueue(_ index: Int) {
        // A QueueNotify that reached a vCPU instead of the ioeventfd: pass it on.
        state.withLock { s in
            guard s.active, s.kicks.indices.contains(index) else { return }
            s.kicks[index].signal()
        }
    }

    /// Driver reset: the backend stops every ring (GET_VRING_BASE) and forgets it.
    public func reset() {
        state.withLock { s in
            guard s.active else { return }
            s.active = false
            if case .failed = s.health { return }
            s.health = .waiting
            do {
                for i in 0..<queueCount {
                    try channel.send(.vringState(.getVringBase, index: UInt32(i), value: 0))
                    let reply = try channel.reply(to: .getVringBase, payloadSize: 8)
                    let index = LittleEndian.read(UInt32.self, reply, at: 0)
                    guard index == UInt32(i) else { throw VhostUserError.wrongVring(.getVringBase, expected: UInt32(i), got: index) }
                }
            } catch {
                fail("\(error)", &s)
            }
        }
    }

    // MARK: Failure

    public func handleEvent(fd: Int32, events: UInt32) {
        state.withLock { s in
            s.loop?.remove(fd: fd)
            s.loop = nil
            if case .failed = s.health { return }
            fail("the vhost-user backend hung up", &s)
        }
    }

    private func fail(_ why: String, _ s: inout State) {
        s.health = .failed(why)
        s.active = false
        s.interrupt?.signalNeedsReset()
        failure("virtio-fs '\(tag)': \(why); the device needs a reset, the VM goes on")
    }
}
