import Glibc
import Host
import KVM
import Snapshot
import Virtio

/// What `Machine.snapshot` wrote.
public struct SnapshotSummary: Sendable {
    /// Guest RAM size (the memory file's apparent size).
    public let memorySize: UInt64
    /// Bytes of RAM actually written (the rest are holes).
    public let memoryData: UInt64
    /// Seconds from the pause to the snapshot being safe on disk.
    public let seconds: Double
}

extension Machine {
    /// Saves the running (or paused) VM into the new directory `path` (docs/snapshot.md):
    /// every vCPU is paused outside KVM_RUN and the device loop is parked, so no queue is
    /// half processed; then guest RAM, the KVM and device state and the manifest are
    /// written and fsynced, and the directory appears under its name only when complete.
    /// `annotations` are the caller's own manifest entries (a key without spaces, a value
    /// without newlines). Afterwards the VM runs again if `resume` and it was running;
    /// otherwise it stays paused, for the caller to end without the guest running again
    /// (a guest that went on could change its disks after they were fingerprinted).
    @discardableResult
    public func snapshot(to path: String, annotations: [(key: String, value: String)] = [],
                         resume: Bool) throws(MachineError) -> SnapshotSummary {
        for (i, t) in devices.transports.enumerated() where !t.canSnapshot {
            throw .snapshot(.unsupported("virtio device \(i) (type \(t.device.deviceType)) cannot be saved yet (shared folders cannot)"))
        }
        let start = MonotonicClock.now()
        let partial: String
        do { partial = try SnapshotFiles.beginWriting(path) } catch { throw .snapshot(error) }
        let wasPaused = state == .paused
        guard wasPaused || pause() else {
            SnapshotFiles.abandon(partial)
            throw .snapshot(.unsupported("the VM is \(state.name); only a running or paused VM can be saved"))
        }
        guard parking.park(abandon: { self.hasEnded }) else {
            parking.unpark()
            SnapshotFiles.abandon(partial)
            throw .snapshot(.unsupported("the VM ended while it was being saved"))
        }
        defer {
            parking.unpark()
            if resume && !wasPaused { self.resume() }
        }
        do {
            let memoryWritten = try writeSnapshot(into: partial, annotations: annotations)
            try SnapshotFiles.commit(partial, as: path)
            return SnapshotSummary(memorySize: memory.size, memoryData: memoryWritten, seconds: MonotonicClock.now() - start)
        } catch {
            SnapshotFiles.abandon(partial)
            throw .snapshot(error)
        }
    }

    /// Writes memory, state and manifest into `directory`; returns the RAM bytes written.
    private func writeSnapshot(into directory: String, annotations: [(key: String, value: String)]) throws(SnapshotError) -> UInt64 {
        let msrIndices: [UInt32]
        var w = StateWriter()
        do {
            msrIndices = try system.msrIndexList()
            var vcpuStates: [VCPUSnapshot] = []
            for vcpu in vcpus { vcpuStates.append(try vcpu.captureState(msrIndices: msrIndices)) }
            let vmState = try vm.captureState()
            w.section("vcpus") { s in
                s.put(UInt32(vcpuStates.count))
                for v in vcpuStates { KVMStateCoding.put(v, to: &s) }
            }
            w.section("vm") { KVMStateCoding.put(vmState, to: &$0) }
        } catch { throw .io(operation: error.operation, errno: error.errno) }
        for (name, device) in legacy.snapshottable {
            w.section(name) { device.saveState(to: &$0) }
        }
        w.section("virtio") { s in
            s.put(UInt32(devices.transports.count))
            for t in devices.transports { s.section("transport") { t.saveState(to: &$0) } }
        }
        // The guest's disks: data the device wrote is made durable with the snapshot.
        for case let disk as VirtioBlock in devices.virtioDevices {
            if let image = disk.storage as? DiskImage { _ = fsync(image.fileDescriptor) }
        }

        let memoryFD = try SnapshotFiles.create(directory, SnapshotFiles.memory)
        defer { close(memoryFD) }
        let written = try SparseMemory.write(memory.hostBase, size: Int(memory.size), to: memoryFD)
        try SnapshotFiles.sync(memoryFD, "the memory file")
        try SnapshotFiles.write(w.bytes, to: directory, SnapshotFiles.state)

        var m = Manifest()
        m.append("memory-size", String(memory.size))
        m.append("memory-data", String(written.dataBytes))
        m.append("memory-checksum", written.checksum.hex)
        m.append("state-size", String(w.bytes.count))
        m.append("state-checksum", Checksum.of(w.bytes).hex)
        m.append("cpus", String(vcpus.count))
        m.append("cpu-features", cpuFeatures(msrIndices: msrIndices))
        m.append("host-emulates-guest-kernel", emulatingHost ? "yes" : "no")
        m.append("cmdline", commandLine)
        for (i, disk) in config.disks.enumerated() {
            let fingerprint = try DiskFingerprint.of(path: disk.path)
            m.append("disk", "\(i) \(disk.readOnly ? "ro" : "rw") \(fingerprint.text) \(disk.path)")
        }
        for (i, net) in devices.networks.enumerated() {
            m.append("tap", "\(i) \(net.mac) \(config.networks[i].tapName)")
        }
        for a in annotations { m.append(a.key, a.value) }
        try SnapshotFiles.write(m.encoded(), to: directory, SnapshotFiles.manifest)
        return written.dataBytes
    }

    func cpuFeatures(msrIndices: [UInt32]) -> String {
        CPUFeatureFingerprint.of(cpuidSetup, msrIndices: msrIndices)
    }
}

/// What identifies a disk image's contents cheaply: size, modification time (ns) and
/// inode. Any write through svm or anything else changes the time; a copy of the image
/// is another inode, and is refused too (safer than trusting that it was not changed).
struct DiskFingerprint: Equatable {
    let size: UInt64
    let modified: Int64
    let inode: UInt64

    var text: String { "\(size) \(modified) \(inode)" }

    static func of(path: String) throws(SnapshotError) -> DiskFingerprint {
        var st = stat()
        guard stat(path, &st) == 0 else { throw .last("stat disk \(path)") }
        return DiskFingerprint(size: UInt64(st.st_size), modified: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
                               inode: UInt64(st.st_ino))
    }

    /// Parses "SIZE MTIME INODE" (the first three words of a manifest disk line's rest).
    init?(words: [Substring]) {
        guard words.count == 3, let s = UInt64(words[0]), let m = Int64(words[1]), let i = UInt64(words[2]) else { return nil }
        size = s
        modified = m
        inode = i
    }

    init(size: UInt64, modified: Int64, inode: UInt64) {
        self.size = size
        self.modified = modified
        self.inode = inode
    }
}
