import Host
import Memory

/// A virtio device behind a transport (virtio-mmio here). The transport handles the
/// register protocol and feature negotiation; the device supplies its identity, its
/// configuration space and the queue processing.
///
/// Threading: `readConfig`/`writeConfig` run on vCPU threads; `processQueue` runs on the
/// thread that delivered the notification (the event loop for ioeventfd, else a vCPU);
/// `activate` and `reset` run on a vCPU thread inside the transport's register lock.
/// Implementations serialize all of these with their own lock, which ranks *below* the
/// transport's (transport lock → device lock), and never call into the transport except
/// through `VirtioInterrupt`, which takes no lock.
public protocol VirtioDevice: AnyObject, Sendable {
    /// DeviceID (virtio 1.x §5), see `VirtioDeviceType`.
    var deviceType: UInt32 { get }
    /// How many virtqueues the device has; all must be set up by the driver.
    var queueCount: Int { get }
    /// QueueNumMax for every queue (a power of two ≤ 32768).
    var maxQueueSize: UInt16 { get }
    /// Feature bits the device offers; always includes VIRTIO_F_VERSION_1.
    var offeredFeatures: UInt64 { get }

    /// Reads `size` (1, 2, 4 or 8) bytes of configuration space at `offset`, little-endian.
    /// Out-of-range bytes read as zero.
    func readConfig(offset: Int, size: Int) -> UInt64
    /// Writes configuration space; most fields are read-only and ignore writes.
    func writeConfig(offset: Int, size: Int, value: UInt64)

    /// The driver set DRIVER_OK: start serving `queues` (validated, one per queue index)
    /// with the negotiated `features`, signalling through `interrupt`.
    func activate(memory: GuestMemory, queues: [Virtqueue], features: UInt64, interrupt: VirtioInterrupt)
    /// The driver notified queue `index` (or the Machine asks for a re-scan). A no-op when
    /// the device is not active.
    func processQueue(_ index: Int)
    /// Back to the pre-activation state: queues dropped, pending work discarded.
    func reset()

    // Requirements with defaults (the extension below), so calls through `any VirtioDevice`
    // reach the devices that implement them.
    var queueEventsGoToBackend: Bool { get }
    func connectQueueEvents(kicks: [EventFD], call: EventFD)
    func register(with loop: EventLoop) throws(HostError)
}

/// What most devices do not need: devices served outside svm (vhost-user) take the queue
/// eventfds and the irqfd instead of the event loop, and any device may watch descriptors
/// of its own.
extension VirtioDevice {
    /// True when a backend outside svm consumes the queue kicks and signals used buffers
    /// on the irqfd itself: the device manager then hands the eventfds to
    /// `connectQueueEvents` instead of watching them, and the transport reports a used-
    /// buffer interrupt whenever the driver asks (it cannot see the backend's calls).
    public var queueEventsGoToBackend: Bool { false }
    public func connectQueueEvents(kicks: [EventFD], call: EventFD) {}
    /// Registers descriptors the device watches itself (a TAP, a backend's socket).
    public func register(with loop: EventLoop) throws(HostError) {}
}

/// What a device holds between `activate` and `reset`.
struct ActiveQueues {
    let memory: GuestMemory
    var queues: [Virtqueue]
    let features: UInt64
    let interrupt: VirtioInterrupt

    /// Pops every well-formed chain of queue `index`, hands it to `body`, returns it with
    /// the used length `body` gives, then interrupts the driver if it asked for it.
    mutating func drain(_ index: Int, _ body: (DescriptorChain) -> UInt32) {
        guard queues.indices.contains(index) else { return }
        while let chain = queues[index].nextRequest(interrupt: interrupt) {
            queues[index].addUsed(head: chain.head, length: body(chain))
        }
        queues[index].signalUsedIfNeeded(interrupt)
    }
}
