import Snapshot

/// Saved state of the virtio-mmio transport: the registers the driver wrote (status,
/// negotiated features, selectors, each queue's size and ring addresses), the interrupt
/// state, and then the device's own state. Restoring an active transport builds its
/// queues from the saved addresses and activates the device as DRIVER_OK would, then the
/// device puts its queues back at their saved ring positions.
extension VirtioMMIOTransport: Snapshottable {
    /// Whether the device behind this transport can be saved.
    public var canSnapshot: Bool { device is Snapshottable }

    public func saveState(to w: inout StateWriter) {
        state.withLock { s in
            w.put(device.deviceType)
            w.put(s.status)
            w.put(s.deviceFeaturesSel)
            w.put(s.driverFeaturesSel)
            w.put(s.driverFeatures)
            w.put(s.queueSel)
            w.put(s.active)
            w.put(UInt32(s.queues.count))
            for q in s.queues {
                w.put(q.size)
                w.put(q.ready)
                w.put(q.descriptorTable)
                w.put(q.driverArea)
                w.put(q.deviceArea)
            }
        }
        w.put(interrupt.pendingStatus)
        w.put(interrupt.configGeneration)
        w.put(interrupt.needsReset)
        w.section("device") { d in (device as? Snapshottable)?.saveState(to: &d) }
    }

    public func restoreState(from r: inout StateReader) throws(SnapshotError) {
        let type = try r.get(UInt32.self, "device type")
        guard type == device.deviceType else {
            throw .malformed("virtio device type \(type) saved where this VM has type \(device.deviceType)")
        }
        var s = State(queueCount: queueCount, maxQueueSize: maxQueueSize)
        s.status = try r.get(UInt32.self, "status")
        s.deviceFeaturesSel = try r.get(UInt32.self, "DeviceFeaturesSel")
        s.driverFeaturesSel = try r.get(UInt32.self, "DriverFeaturesSel")
        s.driverFeatures = try r.get(UInt64.self, "driver features")
        s.queueSel = try r.get(UInt32.self, "QueueSel")
        let active = try r.getBool("active")
        let count = try r.get(UInt32.self, "queue count")
        guard count == queueCount else { throw .malformed("\(count) queues saved for a device with \(queueCount)") }
        for i in 0..<queueCount {
            s.queues[i].size = try r.get(UInt32.self, "queue size")
            s.queues[i].ready = try r.getBool("queue ready")
            s.queues[i].descriptorTable = try r.get(UInt64.self, "descriptor table")
            s.queues[i].driverArea = try r.get(UInt64.self, "driver area")
            s.queues[i].deviceArea = try r.get(UInt64.self, "device area")
        }
        guard s.driverFeatures & ~offeredFeatures == 0 else {
            throw .incompatible("the saved virtio device negotiated features this device does not offer (0x\(String(s.driverFeatures & ~offeredFeatures, radix: 16)))")
        }
        let status = try r.get(UInt32.self, "interrupt status")
        let generation = try r.get(UInt32.self, "config generation")
        let needsReset = try r.getBool("needs reset")
        var deviceState = try r.section("device")
        if active {
            var queues: [Virtqueue] = []
            for q in s.queues {
                do { queues.append(try makeQueue(q, features: s.driverFeatures)) } catch {
                    throw .malformed("saved queue: \(error)")
                }
            }
            device.activate(memory: memory, queues: queues, features: s.driverFeatures, interrupt: interrupt)
            s.active = true
        }
        interrupt.restore(status: status, generation: generation, needsReset: needsReset)
        state.withLock { $0 = s }
        guard let snapshottable = device as? Snapshottable else {
            throw .unsupported("virtio device type \(device.deviceType) has no saved state")
        }
        try snapshottable.restoreState(from: &deviceState)
        try deviceState.finish()
    }
}

extension ActiveQueues {
    /// Each queue's ring positions; `held[i]` chains taken from queue i but not returned
    /// (a device that keeps them across notifications) are given back by rewinding.
    func savePositions(to w: inout StateWriter, held: [Int: Int] = [:]) {
        w.put(UInt32(queues.count))
        for (i, q) in queues.enumerated() {
            w.put(q.nextAvail &- UInt16(truncatingIfNeeded: held[i] ?? 0))
            w.put(q.nextUsed)
        }
    }

    mutating func restorePositions(from r: inout StateReader) throws(SnapshotError) {
        let count = try r.get(UInt32.self, "queue count")
        guard count == queues.count else { throw .malformed("\(count) queue positions for \(queues.count) queues") }
        for i in queues.indices {
            let avail = try r.get(UInt16.self, "next avail")
            let used = try r.get(UInt16.self, "next used")
            queues[i].restorePositions(nextAvail: avail, nextUsed: used)
        }
    }
}

extension Optional where Wrapped == ActiveQueues {
    /// A device's queues: whether it was active, then their positions.
    func savePositions(to w: inout StateWriter, held: [Int: Int] = [:]) {
        w.put(self != nil)
        self?.savePositions(to: &w, held: held)
    }

    /// Restores positions into the queues the transport's restore activated; the saved
    /// and rebuilt activity must agree.
    mutating func restorePositions(from r: inout StateReader) throws(SnapshotError) {
        let wasActive = try r.getBool("device active")
        guard wasActive == (self != nil) else { throw .malformed("device saved \(wasActive ? "active" : "inactive") behind a transport that is not") }
        try self?.restorePositions(from: &r)
    }
}
