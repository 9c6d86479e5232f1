import Devices
import Glibc
import Host
import KVM
import Memory
import Snapshot

extension MachineBuilder {
    /// Builds a VM from the snapshot in `directory` instead of a kernel: the same devices
    /// as the saved VM (from `config`, which the caller rebuilt from the manifest), guest RAM
    /// mapped copy-on-write from the memory file, and every saved state loaded. Everything
    /// is checked before the guest could run: the manifest and state checksums, the memory
    /// file's checksum, the CPU features this host gives the guest, the disks' fingerprints.
    static func restore(_ givenConfig: MachineConfig, from directory: String) throws(MachineError) -> MachineParts {
        var config = givenConfig
        let snapshot: SnapshotContents
        do { snapshot = try SnapshotContents.read(directory) } catch { throw .snapshot(error) }
        let m = snapshot.manifest
        guard m["memory-size"] == String(config.memorySize) else {
            throw .snapshot(.incompatible("the snapshot has \(m["memory-size"] ?? "?") bytes of RAM, this VM \(config.memorySize)"))
        }
        guard m["cpus"] == String(config.cpuCount) else {
            throw .snapshot(.incompatible("the snapshot has \(m["cpus"] ?? "?") vCPUs, this VM \(config.cpuCount)"))
        }
        try checkDisks(m, config: config)
        let taps = m.values("tap")
        guard taps.count == config.networks.count else {
            throw .snapshot(.incompatible("the snapshot has \(taps.count) network interfaces, this VM \(config.networks.count)"))
        }
        for (i, line) in taps.enumerated() {
            // "INDEX MAC TAP": the guest keeps the MAC address it saw at its boot.
            let words = line.split(separator: " ", maxSplits: 2)
            guard words.count == 3 else { throw .snapshot(.malformed("manifest tap line '\(line)'")) }
            config.networks[i].mac = String(words[1])
        }
        let emulatingHost = KVMSystem.hostEmulatesGuestKernel
        guard m["host-emulates-guest-kernel"] == (emulatingHost ? "yes" : "no") else {
            throw .snapshot(.incompatible("the snapshot was made on a host whose KVM \(emulatingHost ? "runs" : "emulates") guest kernel code; this one does not"))
        }

        let monitor = ConsoleMonitor(watchHalfDoneSyscalls: emulatingHost)
        let scanHook = ScanHook()
        let devices = try DeviceManager(config: config, scan: { bytes in scanHook.machine?.scanConsole(bytes) })
        let system: KVMSystem
        do { system = try KVMSystem() } catch { throw .kvmUnavailable(error) }

        // The CPU the guest saw must be the CPU it gets: same CPUID tables, same MSR list.
        let cpuid: CPUIDSetup
        do {
            cpuid = try cpuidSetup(system, config: config, emulatingHost: emulatingHost)
            let here = CPUFeatureFingerprint.of(cpuid, msrIndices: try system.msrIndexList())
            guard here == m["cpu-features"] else {
                throw MachineError.snapshot(.incompatible("the snapshot was made for other CPU features than this host gives a guest (fingerprint \(m["cpu-features"] ?? "none"), here \(here))"))
            }
        } catch let e as MachineError { throw e } catch let e as HostError { throw .kvm(e) } catch { throw .badInput("\(error)") }

        let vm: VirtualMachine
        do {
            vm = try system.createVM()
            try vm.setTSSAddress(tssAddress)
            try vm.setIdentityMapAddress(identityMapAddress)
        } catch { throw .kvm(error) }
        let memory = try mapMemory(directory, snapshot: snapshot, size: config.memorySize)
        do {
            for (slot, region) in memory.regions.enumerated() {
                try vm.setUserMemoryRegion(slot: UInt32(slot), guestAddress: region.guestAddress,
                                           size: region.size, host: memory.hostBase + Int(region.hostOffset))
            }
            try vm.createIRQChip()
            try vm.createPIT2()
        } catch { throw .kvm(error) }

        let loop = try LoopParts()
        try devices.attachVirtio(to: vm, memory: memory, loop: loop.loop)
        let legacy = try LegacyDeviceSet(config: config, vm: vm, hook: scanHook, devices: devices)

        let vcpus: [VCPU]
        do {
            vcpus = try createVCPUs(vm, cpuid: cpuid)
            // The VM's interrupt controllers and clock first, then each vCPU (its LAPIC
            // and pending events refer to them).
            try vm.restoreState(snapshot.vm)
            for (vcpu, state) in zip(vcpus, snapshot.vcpus) { try vcpu.restoreState(state) }
        } catch { throw .kvm(error) }

        do throws(SnapshotError) {
            var r = snapshot.devices
            for (name, device) in legacy.snapshottable {
                var section = try r.section(name)
                try device.restoreState(from: &section)
                try section.finish()
            }
            var virtio = try r.section("virtio")
            let count = try virtio.get(UInt32.self, "transport count")
            guard count == devices.transports.count else {
                throw SnapshotError.incompatible("the snapshot has \(count) virtio devices, this VM \(devices.transports.count)")
            }
            for t in devices.transports {
                var section = try virtio.section("transport")
                try t.restoreState(from: &section)
                try section.finish()
            }
            try virtio.finish()
            try r.finish()
        } catch { throw .snapshot(error) }

        return MachineParts(config: config, emulatingHost: emulatingHost, commandLine: m["cmdline"] ?? "", memory: memory,
                            system: system, vm: vm, vcpus: vcpus, devices: devices, serial: legacy.serial, monitor: monitor,
                            loop: loop.loop, ended: loop.ended, timers: loop.timers, parking: loop.parking,
                            legacy: legacy, cpuidSetup: cpuid, hook: scanHook)
    }

    /// Each disk of the snapshot must be the config's, unchanged since the save.
    static func checkDisks(_ m: Manifest, config: MachineConfig) throws(MachineError) {
        let disks = m.values("disk")
        guard disks.count == config.disks.count else {
            throw .snapshot(.incompatible("the snapshot has \(disks.count) disks, this VM \(config.disks.count)"))
        }
        for (line, disk) in zip(disks, config.disks) {
            // "INDEX ro|rw SIZE MTIME INODE PATH" (the path last: it may hold spaces).
            let words = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: false)
            guard words.count == 6, let saved = DiskFingerprint(words: Array(words[2...4])) else {
                throw .snapshot(.malformed("manifest disk line '\(line)'"))
            }
            guard String(words[5]) == disk.path else {
                throw .snapshot(.incompatible("the snapshot's disk is \(words[5]), not \(disk.path)"))
            }
            let now: DiskFingerprint
            do { now = try DiskFingerprint.of(path: disk.path) } catch { throw .disk(path: disk.path, reason: "\(error)") }
            guard now == saved else {
                throw .snapshot(.incompatible("disk \(disk.path) changed since the snapshot was made (size, time or inode differ)"))
            }
        }
    }

    /// Maps the memory file copy-on-write and checks its checksum through the mapping
    /// (which reads only its data segments, and leaves them in the page cache for the guest).
    static func mapMemory(_ directory: String, snapshot: SnapshotContents, size: UInt64) throws(MachineError) -> GuestMemory {
        let path = "\(directory)/\(SnapshotFiles.memory)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .snapshot(errno == ENOENT ? .malformed("\(path) is missing") : .last("open \(path)")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .snapshot(.last("fstat \(path)")) }
        guard UInt64(st.st_size) == size else {
            throw .snapshot(.malformed("the memory file has \(st.st_size) bytes, the manifest says \(size)"))
        }
        let memory: GuestMemory
        do { memory = try GuestMemory(copyOnWriteFile: fd, size: size) } catch { throw .memory(error) }
        do throws(SnapshotError) {
            let sum = try SparseMemory.checksum(fd: fd, mapping: memory.hostBase, size: Int(size))
            guard sum.hex == snapshot.manifest["memory-checksum"] else { throw SnapshotError.checksumMismatch(file: SnapshotFiles.memory) }
        } catch { throw .snapshot(error) }
        return memory
    }
}

/// A snapshot's manifest and state file, read and checked (checksums, sizes) and the KVM
/// parts decoded; the device sections stay encoded until the devices exist.
struct SnapshotContents {
    let manifest: Manifest
    let vcpus: [VCPUSnapshot]
    let vm: VMSnapshot
    /// The state file after the vcpus and vm sections.
    let devices: StateReader

    static func read(_ directory: String) throws(SnapshotError) -> SnapshotContents {
        let manifest = try Manifest.parse(SnapshotFiles.read(directory, SnapshotFiles.manifest, limit: 1 << 20))
        let bytes = try SnapshotFiles.read(directory, SnapshotFiles.state)
        guard String(bytes.count) == manifest["state-size"], Checksum.of(bytes).hex == manifest["state-checksum"] else {
            throw .checksumMismatch(file: SnapshotFiles.state)
        }
        var r = StateReader(bytes)
        var v = try r.section("vcpus")
        let count = try v.get(UInt32.self, "vCPU count")
        guard String(count) == manifest["cpus"] else { throw .malformed("\(count) vCPU states for \(manifest["cpus"] ?? "?") vCPUs") }
        var vcpus: [VCPUSnapshot] = []
        for _ in 0..<count { vcpus.append(try KVMStateCoding.vcpu(from: &v)) }
        try v.finish()
        var vmSection = try r.section("vm")
        let vm = try KVMStateCoding.vm(from: &vmSection)
        try vmSection.finish()
        return SnapshotContents(manifest: manifest, vcpus: vcpus, vm: vm, devices: r)
    }
}

extension Machine {
    /// Builds a VM from the snapshot in `directory`, ready to `start` (it continues where
    /// it was saved). `config` must describe the saved VM's shape and devices (the caller
    /// keeps what it needs in the manifest's annotations); output closures are its own.
    public convenience init(restoring directory: String, config: MachineConfig) throws(MachineError) {
        self.init(parts: try MachineBuilder.restore(config, from: directory))
    }

    /// The manifest of the snapshot in `directory`, checked (format, version, checksum).
    public static func snapshotManifest(_ directory: String) throws(MachineError) -> Manifest {
        do { return try Manifest.parse(SnapshotFiles.read(directory, SnapshotFiles.manifest, limit: 1 << 20)) }
        catch { throw .snapshot(error) }
    }
}
