import Memory
import Synchronization

/// The virtio-mmio transport, version 2 (virtio 1.x §4.2): a 0x200-byte register window
/// in guest-physical address space in front of one `VirtioDevice`.
///
/// The Machine routes MMIO exits inside the window to `read`/`write` (offsets relative to
/// the window base), delivers queue notifications from ioeventfds (registered at
/// base + `queueNotifyOffset`, 4 bytes, data-match on the queue index) to `notify(queue:)`,
/// and supplies the interrupt closure (an irqfd write). Linux finds the device with
/// `virtio_mmio.device=0x200@0xBASE:IRQ` on its command line.
///
/// Locking: one Mutex guards the registers. Lock order is transport → device: the
/// transport calls `activate`/`reset` while holding its lock, never `processQueue`; devices
/// never call the transport (interrupts go through the lock-free `VirtioInterrupt`).
/// Queue work runs on the thread that delivered the notification: the event loop when
/// ioeventfds are used, so vCPU threads do not wait on host I/O.
public final class VirtioMMIOTransport: Sendable {
    /// Size of the register window (registers 0x000–0x0ff, configuration space from 0x100).
    public static let windowSize: UInt64 = 0x200
    public static let magicValue: UInt32 = 0x7472_6976 // "virt"
    public static let version: UInt32 = 2
    public static let vendorID: UInt32 = 0x554D_4551 // "QEMU", what guests expect to see
    /// Offset of QueueNotify, where the Machine attaches per-queue ioeventfds.
    public static let queueNotifyOffset: UInt64 = 0x050
    static let configOffset: UInt64 = 0x100

    enum Register {
        static let magicValue: UInt64 = 0x000
        static let version: UInt64 = 0x004
        static let deviceID: UInt64 = 0x008
        static let vendorID: UInt64 = 0x00c
        static let deviceFeatures: UInt64 = 0x010
        static let deviceFeaturesSel: UInt64 = 0x014
        static let driverFeatures: UInt64 = 0x020
        static let driverFeaturesSel: UInt64 = 0x024
        static let queueSel: UInt64 = 0x030
        static let queueNumMax: UInt64 = 0x034
        static let queueNum: UInt64 = 0x038
        static let queueReady: UInt64 = 0x044
        static let queueNotify: UInt64 = 0x050
        static let interruptStatus: UInt64 = 0x060
        static let interruptACK: UInt64 = 0x064
        static let status: UInt64 = 0x070
        static let queueDescLow: UInt64 = 0x080
        static let queueDescHigh: UInt64 = 0x084
        static let queueDriverLow: UInt64 = 0x090
        static let queueDriverHigh: UInt64 = 0x094
        static let queueDeviceLow: UInt64 = 0x0a0
        static let queueDeviceHigh: UInt64 = 0x0a4
        static let shmLenLow: UInt64 = 0x0b0
        static let shmLenHigh: UInt64 = 0x0b4
        static let shmBaseLow: UInt64 = 0x0b8
        static let shmBaseHigh: UInt64 = 0x0bc
        static let configGeneration: UInt64 = 0x0fc
    }

    struct QueueConfig {
        var size: UInt32
        var ready = false
        var descriptorTable: UInt64 = 0
        var driverArea: UInt64 = 0
        var deviceArea: UInt64 = 0
    }

    struct State {
        var status: UInt32 = 0
        var deviceFeaturesSel: UInt32 = 0
        var driverFeaturesSel: UInt32 = 0
        var driverFeatures: UInt64 = 0
        var queueSel: UInt32 = 0
        var queues: [QueueConfig]
        var active = false

        init(queueCount: Int, maxQueueSize: UInt16) {
            queues = Array(repeating: QueueConfig(size: UInt32(maxQueueSize)), count: queueCount)
        }
    }

    public let device: any VirtioDevice
    /// The device's interrupt state (InterruptStatus, ConfigGeneration, NEEDS_RESET).
    public let interrupt: VirtioInterrupt
    let memory: GuestMemory
    let queueCount: Int
    let maxQueueSize: UInt16
    let offeredFeatures: UInt64
    let state: Mutex<State>
    private let queueNotification: (@Sendable (Int) -> Void)?

    /// - Parameters:
    ///   - interrupt: raises the device's interrupt (irqfd write); called on any thread.
    ///   - queueNotification: if set, a QueueNotify *register write* (a vCPU exit, when no
    ///     ioeventfd caught it) is handed to this closure with the queue index, so the
    ///     Machine can run the work on its event loop; if nil, the vCPU thread processes
    ///     the queue itself.
    public init(device: any VirtioDevice, memory: GuestMemory,
                interrupt: @escaping @Sendable () -> Void,
                queueNotification: (@Sendable (Int) -> Void)? = nil) {
        self.device = device
        self.memory = memory
        self.interrupt = VirtioInterrupt(trigger: interrupt, usedBuffersSignalledElsewhere: device.queueEventsGoToBackend)
        let count = max(device.queueCount, 0)
        let limit = min(device.maxQueueSize, Virtqueue.maximumSize)
        // A QueueNumMax that is not a power of two would make every driver choice invalid.
        let maxSize = limit == 0 ? 0 : UInt16(1) << (15 - limit.leadingZeroBitCount)
        self.queueCount = count
        self.maxQueueSize = maxSize
        self.offeredFeatures = device.offeredFeatures | VirtioFeature.version1
        self.queueNotification = queueNotification
        self.state = Mutex(State(queueCount: count, maxQueueSize: maxSize))
    }

    // MARK: Register reads

    /// A guest read of `size` bytes at `offset` into the window. Registers below 0x100 are
    /// 32-bit only; other sizes, unknown registers and offsets past the window read as 0.
    public func read(offset: UInt64, size: Int) -> UInt64 {
        if offset >= Self.configOffset {
            guard offset < Self.windowSize else { return 0 }
            return device.readConfig(offset: Int(offset - Self.configOffset), size: size)
        }
        guard size == 4, offset % 4 == 0 else { return 0 }
        return UInt64(state.withLock { readRegister(offset, $0) })
    }

    private func readRegister(_ offset: UInt64, _ s: State) -> UInt32 {
        let queue = s.queueSel < queueCount ? s.queues[Int(s.queueSel)] : nil
        switch offset {
        case Register.magicValue: return Self.magicValue
        case Register.version: return Self.version
        case Register.deviceID: return device.deviceType
        case Register.vendorID: return Self.vendorID
        case Register.deviceFeatures:
            switch s.deviceFeaturesSel {
            case 0: return UInt32(truncatingIfNeeded: offeredFeatures)
            case 1: return UInt32(truncatingIfNeeded: offeredFeatures >> 32)
            default: return 0
            }
        case Register.queueNumMax: return queue == nil ? 0 : UInt32(maxQueueSize)
        case Register.queueNum: return queue?.size ?? 0
        case Register.queueReady: return queue?.ready == true ? 1 : 0
        case Register.interruptStatus: return interrupt.interruptStatus
        case Register.status: return s.status | (interrupt.needsReset ? VirtioStatus.needsReset : 0)
        case Register.queueDescLow: return UInt32(truncatingIfNeeded: queue?.descriptorTable ?? 0)
        case Register.queueDescHigh: return UInt32(truncatingIfNeeded: (queue?.descriptorTable ?? 0) >> 32)
        case Register.queueDriverLow: return UInt32(truncatingIfNeeded: queue?.driverArea ?? 0)
        case Register.queueDriverHigh: return UInt32(truncatingIfNeeded: (queue?.driverArea ?? 0) >> 32)
        case Register.queueDeviceLow: return UInt32(truncatingIfNeeded: queue?.deviceArea ?? 0)
        case Register.queueDeviceHigh: return UInt32(truncatingIfNeeded: (queue?.deviceArea ?? 0) >> 32)
        case Register.configGeneration: return interrupt.configGeneration
        case Register.shmLenLow, Register.shmLenHigh, Register.shmBaseLow, Register.shmBaseHigh:
            return 0xffff_ffff // no shared memory regions (virtio 1.x §4.2.2.2: all ones)
        default: return 0
        }
    }

    // MARK: Register writes

    /// A guest write of `size` bytes at `offset` into the window. Writes the protocol does
    /// not allow in the current state are ignored (the driver sees them on read-back).
    public func write(offset: UInt64, size: Int, value: UInt64) {
        if offset >= Self.configOffset {
            guard offset < Self.windowSize else { return }
            let status = state.withLock { $0.status }
            // Configuration writes only once a driver owns the device.
            guard status & VirtioStatus.driver != 0, status & VirtioStatus.failed == 0 else { return }
            device.writeConfig(offset: Int(offset - Self.configOffset), size: size, value: value)
            return
        }
        guard size == 4, offset % 4 == 0 else { return }
        let v = UInt32(truncatingIfNeeded: value)
        if offset == Register.queueNotify {
            if let queueNotification {
                queueNotification(Int(v))
            } else {
                notify(queue: Int(v))
            }
            return
        }
        state.withLock { writeRegister(offset, v, &$0) }
    }

    private func writeRegister(_ offset: UInt64, _ v: UInt32, _ s: inout State) {
        switch offset {
        case Register.deviceFeaturesSel: s.deviceFeaturesSel = v
        case Register.driverFeaturesSel: s.driverFeaturesSel = v
        case Register.driverFeatures:
            // Only between DRIVER and FEATURES_OK (virtio 1.x §3.1.1 steps 3–5).
            guard s.status & VirtioStatus.driver != 0,
                  s.status & (VirtioStatus.featuresOK | VirtioStatus.failed) == 0 else { return }
            switch s.driverFeaturesSel {
            case 0: s.driverFeatures = (s.driverFeatures & 0xffff_ffff_0000_0000) | UInt64(v)
            case 1: s.driverFeatures = (s.driverFeatures & 0x0000_0000_ffff_ffff) | (UInt64(v) << 32)
            default: break
            }
        case Register.queueSel: s.queueSel = v
        case Register.queueNum: updateQueue(&s) { $0.size = v }
        case Register.queueReady: setQueueReady(v == 1, &s)
        case Register.queueDescLow: updateQueue(&s) { $0.descriptorTable = low($0.descriptorTable, v) }
        case Register.queueDescHigh: updateQueue(&s) { $0.descriptorTable = high($0.descriptorTable, v) }
        case Register.queueDriverLow: updateQueue(&s) { $0.driverArea = low($0.driverArea, v) }
        case Register.queueDriverHigh: updateQueue(&s) { $0.driverArea = high($0.driverArea, v) }
        case Register.queueDeviceLow: updateQueue(&s) { $0.deviceArea = low($0.deviceArea, v) }
        case Register.queueDeviceHigh: updateQueue(&s) { $0.deviceArea = high($0.deviceArea, v) }
        case Register.interruptACK: interrupt.acknowledge(v)
        case Register.status: setStatus(v, &s)
        default: break // read-only or unknown
        }
    }

    private func low(_ old: UInt64, _ v: UInt32) -> UInt64 { (old & 0xffff_ffff_0000_0000) | UInt64(v) }
    private func high(_ old: UInt64, _ v: UInt32) -> UInt64 { (old & 0x0000_0000_ffff_ffff) | (UInt64(v) << 32) }

    /// Queue registers are writable after FEATURES_OK and before DRIVER_OK, while the
    /// selected queue is not ready (virtio 1.x §4.2.3.2).
    private func queueConfigWritable(_ s: State) -> Bool {
        s.status & VirtioStatus.featuresOK != 0
            && s.status & (VirtioStatus.driverOK | VirtioStatus.failed) == 0
            && s.queueSel < queueCount
    }

    private func updateQueue(_ s: inout State, _ change: (inout QueueConfig) -> Void) {
        guard queueConfigWritable(s), !s.queues[Int(s.queueSel)].ready else { return }
        change(&s.queues[Int(s.queueSel)])
    }

    /// QueueReady=1 checks the queue now: a size or ring the device cannot use leaves the
    /// queue not ready (visible on read-back) and marks the device NEEDS_RESET.
    private func setQueueReady(_ ready: Bool, _ s: inout State) {
        guard queueConfigWritable(s) else { return }
        let i = Int(s.queueSel)
        guard ready else { s.queues[i].ready = false; return }
        do {
            _ = try makeQueue(s.queues[i], features: s.driverFeatures)
            s.queues[i].ready = true
        } catch {
            interrupt.signalNeedsReset()
        }
    }

    func makeQueue(_ q: QueueConfig, features: UInt64) throws(VirtqueueError) -> Virtqueue {
        try Virtqueue(memory: memory, size: q.size, descriptorTable: q.descriptorTable,
                      availRing: q.driverArea, usedRing: q.deviceArea,
                      eventIndex: features & VirtioFeature.eventIndex != 0,
                      indirectDescriptors: features & VirtioFeature.indirectDescriptors != 0,
                      maximumSize: maxQueueSize)
    }

    /// The device status state machine (virtio 1.x §2.1, §3.1.1).
    private func setStatus(_ value: UInt32, _ s: inout State) {
        if value == 0 {
            resetLocked(&s)
            return
        }
        // NEEDS_RESET is the device's to set; the driver never clears bits.
        let requested = value & ~VirtioStatus.needsReset
        guard requested & s.status == s.status else { return }
        let added = requested & ~s.status
        if added & VirtioStatus.failed != 0 {
            s.status |= VirtioStatus.failed
            return
        }
        // Each step needs the previous ones (ACKNOWLEDGE → DRIVER → FEATURES_OK → DRIVER_OK).
        let has = { (bit: UInt32) in requested & bit != 0 }
        guard !has(VirtioStatus.driver) || has(VirtioStatus.acknowledge),
              !has(VirtioStatus.featuresOK) || has(VirtioStatus.driver),
              !has(VirtioStatus.driverOK) || has(VirtioStatus.featuresOK) else { return }

        var accepted = requested
        if added & VirtioStatus.featuresOK != 0 {
            let unoffered = s.driverFeatures & ~offeredFeatures
            if unoffered != 0 || s.driverFeatures & VirtioFeature.version1 == 0 {
                // Refused: FEATURES_OK stays clear on read-back, and DRIVER_OK cannot follow.
                accepted &= ~(VirtioStatus.featuresOK | VirtioStatus.driverOK)
            }
        }
        s.status = accepted
        if added & VirtioStatus.driverOK != 0, accepted & VirtioStatus.driverOK != 0 {
            activateLocked(&s)
        }
    }

    private func activateLocked(_ s: inout State) {
        var queues: [Virtqueue] = []
        for q in s.queues {
            guard q.ready, let queue = try? makeQueue(q, features: s.driverFeatures) else {
                // Every queue of our devices is required; without one the device cannot run.
                interrupt.signalNeedsReset()
                return
            }
            queues.append(queue)
        }
        device.activate(memory: memory, queues: queues, features: s.driverFeatures, interrupt: interrupt)
        s.active = true
    }

    private func resetLocked(_ s: inout State) {
        device.reset()
        s = State(queueCount: queueCount, maxQueueSize: maxQueueSize)
        interrupt.reset()
    }

    // MARK: Notifications

    /// A notification for queue `queue` (from an ioeventfd, the event loop thread). Runs
    /// the device's processing for it on the calling thread; ignored unless the device is
    /// active, not NEEDS_RESET and the index is one of its queues.
    public func notify(queue: Int) {
        guard queue >= 0, queue < queueCount, !interrupt.needsReset,
              state.withLock({ $0.active }) else { return }
        device.processQueue(queue)
    }

    /// True once the driver set DRIVER_OK and the device was activated.
    public var isActive: Bool { state.withLock { $0.active } }
}
