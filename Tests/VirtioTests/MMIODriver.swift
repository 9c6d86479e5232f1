import Memory
import Synchronization
import Virtio

/// Plays Linux's virtio_mmio driver against a transport: reset, ACKNOWLEDGE, DRIVER,
/// feature negotiation over the two 32-bit halves, FEATURES_OK, queue setup, DRIVER_OK.
final class MMIODriver {
    enum Reg {
        static let magic: UInt64 = 0x000, version: UInt64 = 0x004, deviceID: UInt64 = 0x008
        static let vendorID: UInt64 = 0x00c, deviceFeatures: UInt64 = 0x010, deviceFeaturesSel: UInt64 = 0x014
        static let driverFeatures: UInt64 = 0x020, driverFeaturesSel: UInt64 = 0x024
        static let queueSel: UInt64 = 0x030, queueNumMax: UInt64 = 0x034, queueNum: UInt64 = 0x038
        static let queueReady: UInt64 = 0x044, queueNotify: UInt64 = 0x050
        static let interruptStatus: UInt64 = 0x060, interruptACK: UInt64 = 0x064, status: UInt64 = 0x070
        static let queueDescLow: UInt64 = 0x080, queueDescHigh: UInt64 = 0x084
        static let queueDriverLow: UInt64 = 0x090, queueDriverHigh: UInt64 = 0x094
        static let queueDeviceLow: UInt64 = 0x0a0, queueDeviceHigh: UInt64 = 0x0a4
        static let configGeneration: UInt64 = 0x0fc, config: UInt64 = 0x100
    }

    let memory: GuestMemory
    let transport: VirtioMMIOTransport
    let interrupts = Counter()
    private(set) var queues: [TestDriver] = []
    private(set) var features: UInt64 = 0

    init(device: any VirtioDevice, memory: GuestMemory? = nil) throws {
        let m = try memory ?? GuestMemory(size: 16 << 20)
        self.memory = m
        let counter = interrupts
        transport = VirtioMMIOTransport(device: device, memory: m, interrupt: { counter.increment() })
    }

    func read(_ offset: UInt64) -> UInt32 { UInt32(transport.read(offset: offset, size: 4)) }
    func write(_ offset: UInt64, _ value: UInt32) { transport.write(offset: offset, size: 4, value: UInt64(value)) }
    var status: UInt32 { read(Reg.status) }

    var deviceFeatures: UInt64 {
        write(Reg.deviceFeaturesSel, 1)
        let high = UInt64(read(Reg.deviceFeatures))
        write(Reg.deviceFeaturesSel, 0)
        return high << 32 | UInt64(read(Reg.deviceFeatures))
    }

    func writeDriverFeatures(_ f: UInt64) {
        write(Reg.driverFeaturesSel, 1)
        write(Reg.driverFeatures, UInt32(truncatingIfNeeded: f >> 32))
        write(Reg.driverFeaturesSel, 0)
        write(Reg.driverFeatures, UInt32(truncatingIfNeeded: f))
    }

    /// Up to FEATURES_OK; returns whether the device accepted the features.
    @discardableResult
    func negotiate(_ wanted: UInt64? = nil) -> Bool {
        write(Reg.status, 0)
        write(Reg.status, VirtioStatus.acknowledge)
        write(Reg.status, VirtioStatus.acknowledge | VirtioStatus.driver)
        features = wanted ?? deviceFeatures
        writeDriverFeatures(features)
        write(Reg.status, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK)
        return status & VirtioStatus.featuresOK != 0
    }

    func setUpQueue(_ index: Int, size: UInt16) -> TestDriver {
        let d = TestDriver(memory: memory, size: size, base: 0x1_0000 * UInt64(index + 1),
                           dataBase: 0x40_0000 + 0x20_0000 * UInt64(index))
        write(Reg.queueSel, UInt32(index))
        write(Reg.queueNum, UInt32(size))
        setQueueAddresses(desc: d.descriptorTable, driver: d.availRing, device: d.usedRing)
        write(Reg.queueReady, 1)
        return d
    }

    func setQueueAddresses(desc: UInt64, driver: UInt64, device: UInt64) {
        write(Reg.queueDescLow, UInt32(truncatingIfNeeded: desc))
        write(Reg.queueDescHigh, UInt32(truncatingIfNeeded: desc >> 32))
        write(Reg.queueDriverLow, UInt32(truncatingIfNeeded: driver))
        write(Reg.queueDriverHigh, UInt32(truncatingIfNeeded: driver >> 32))
        write(Reg.queueDeviceLow, UInt32(truncatingIfNeeded: device))
        write(Reg.queueDeviceHigh, UInt32(truncatingIfNeeded: device >> 32))
    }

    /// The whole Linux sequence; returns the per-queue drivers.
    @discardableResult
    func start(features wanted: UInt64? = nil, queueSize: UInt16 = 16) -> [TestDriver] {
        guard negotiate(wanted) else { return [] }
        let count = transport.device.queueCount
        queues = (0..<count).map { setUpQueue($0, size: queueSize) }
        write(Reg.status, status | VirtioStatus.driverOK)
        return queues
    }

    func notify(_ queue: Int) { write(Reg.queueNotify, UInt32(queue)) }

    func config(_ offset: UInt64, size: Int) -> UInt64 {
        transport.read(offset: Reg.config + offset, size: size)
    }
}

/// A device that records what the transport does to it.
final class MockDevice: VirtioDevice {
    struct Record {
        var activations: [(queues: [Virtqueue], features: UInt64)] = []
        var processed: [Int] = []
        var resets = 0
        var configWrites: [(Int, Int, UInt64)] = []
    }

    let deviceType: UInt32
    let queueCount: Int
    let maxQueueSize: UInt16
    let offeredFeatures: UInt64
    let record = Mutex(Record())

    init(type: UInt32 = 42, queues: Int = 2, maxQueueSize: UInt16 = 64,
         features: UInt64 = VirtioFeature.version1 | VirtioFeature.eventIndex | (1 << 3)) {
        deviceType = type
        queueCount = queues
        self.maxQueueSize = maxQueueSize
        offeredFeatures = features
    }

    func readConfig(offset: Int, size: Int) -> UInt64 {
        // Byte i of config space reads as 0x10 + i.
        var v: UInt64 = 0
        for i in 0..<size { v |= UInt64(0x10 + offset + i) << (8 * UInt64(i)) }
        return v
    }

    func writeConfig(offset: Int, size: Int, value: UInt64) {
        record.withLock { $0.configWrites.append((offset, size, value)) }
    }

    func activate(memory: GuestMemory, queues: [Virtqueue], features: UInt64, interrupt: VirtioInterrupt) {
        record.withLock { $0.activations.append((queues, features)) }
    }

    func processQueue(_ index: Int) { record.withLock { $0.processed.append(index) } }
    func reset() { record.withLock { $0.resets += 1 } }

    var activations: Int { record.withLock { $0.activations.count } }
    var processed: [Int] { record.withLock { $0.processed } }
    var resets: Int { record.withLock { $0.resets } }
}
