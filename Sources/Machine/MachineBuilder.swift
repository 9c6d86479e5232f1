import Boot
import Devices
import Glibc
import Host
import KVM
import Memory
import Snapshot

/// What a built, not yet running VM consists of.
struct MachineParts {
    let config: MachineConfig
    let emulatingHost: Bool
    let commandLine: String
    let memory: GuestMemory
    let system: KVMSystem
    let vm: VirtualMachine
    let vcpus: [VCPU]
    let devices: DeviceManager
    let serial: Serial16550
    let monitor: ConsoleMonitor
    let loop: EventLoop
    let ended: EventFD
    let timers: Timers
    let parking: DeviceLoopParking
    let legacy: LegacyDeviceSet
    let cpuidSetup: CPUIDSetup
    /// Connected to the Machine by its init.
    let hook: ScanHook
}

/// Turns a `MachineConfig` into a VM that is ready to run: checks the input, opens the
/// images, builds the devices, creates the KVM VM, maps guest RAM, loads the kernel and
/// sets up the vCPUs. Nothing runs yet. The order matters and is explained where it does.
enum MachineBuilder {
    /// Address of the 3 pages Intel VMX needs for real mode, and of its identity map page:
    /// inside the MMIO hole, below the BIOS area, where guest RAM never is.
    static let tssAddress: UInt64 = 0xFFFB_D000
    static let identityMapAddress: UInt64 = 0xFFFB_C000

    static func build(_ config: MachineConfig) throws(MachineError) -> MachineParts {
        guard (1...MachineConfig.maximumCPUs).contains(config.cpuCount) else {
            throw .cpuCount(requested: config.cpuCount, maximum: MachineConfig.maximumCPUs)
        }
        if let available = HostMemoryCheck.availableBytes(), config.memorySize > available {
            throw .memoryExceedsHost(requested: config.memorySize, available: available)
        }

        // Kernel and initrd are opened, not read: their headers are checked now, before
        // touching KVM, so bad input is reported as such; their contents go straight into
        // guest RAM later (BootImage).
        var firmware: [UInt8] = []
        var kernel: BootImage?
        var initrd: BootImage?
        if config.flatImage {
            firmware = try FileLoader.read(config.kernelPath, what: "firmware",
                                           limit: UInt64(MachineConfig.flatImageMaximumSize))
        } else {
            let image = try FileLoader.open(config.kernelPath, what: "kernel", limit: 512 << 20)
            do { _ = try detectKernelFormat(image) } catch { throw .boot(error) }
            kernel = image
            initrd = try config.initrdPath.map { p throws(MachineError) in
                try FileLoader.open(p, what: "initrd", limit: config.memorySize)
            }
        }

        let emulatingHost = KVMSystem.hostEmulatesGuestKernel
        let monitor = ConsoleMonitor(watchHalfDoneSyscalls: emulatingHost)
        let scanHook = ScanHook()
        let devices = try DeviceManager(config: config, scan: { bytes in scanHook.machine?.scanConsole(bytes) })

        let system: KVMSystem
        do { system = try KVMSystem() } catch { throw .kvmUnavailable(error) }
        var deviceEntries = devices.commandLineEntries
        if let agent = devices.consoleDeviceName(role: .agent) { deviceEntries.append("svm.agent=/dev/\(agent)") }
        let commandLine = GuestCommandLine.build(user: config.commandLine, emulatingHost: emulatingHost,
                                                 devices: deviceEntries)

        // RAM slots go in before the irqchip and PIT: once those devices sit on KVM's I/O
        // buses, every memory slot change waits for an SRCU grace period (~6 ms here).
        let vm: VirtualMachine
        let memory: GuestMemory
        do {
            vm = try system.createVM()
            try vm.setTSSAddress(tssAddress)
            try vm.setIdentityMapAddress(identityMapAddress)
        } catch { throw .kvm(error) }
        do {
            memory = try GuestMemory(size: config.memorySize, populate: config.populateMemory,
                                     backing: config.shareableMemory || !config.sharedFolders.isEmpty ? .shareable : .anonymous)
        }
        catch { throw .memory(error) }
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

        let bootEntry: BootEntry?
        if let kernel {
            do {
                bootEntry = try loadLinux(
                    BootParameters(kernel: kernel, initrd: initrd, commandLine: commandLine, cpuCount: config.cpuCount),
                    into: memory)
            } catch { throw .boot(error) }
        } else {
            do { try memory.write(firmware, at: MachineConfig.flatImageAddress) } catch { throw .memory(error) }
            bootEntry = nil
        }

        let legacy = try LegacyDeviceSet(config: config, vm: vm, hook: scanHook, devices: devices)

        let vcpus: [VCPU]
        let cpuid: CPUIDSetup
        do {
            cpuid = try cpuidSetup(system, config: config, emulatingHost: emulatingHost)
            vcpus = try createVCPUs(vm, cpuid: cpuid)
            for vcpu in vcpus { try VCPUSetup.configureCommon(vcpu) }
            if let bootEntry {
                try VCPUSetup.enter(vcpus[0], at: bootEntry)
            } else {
                try VCPUSetup.enterRealMode(vcpus[0], at: MachineConfig.flatImageAddress)
            }
        } catch { throw .kvm(error) }

        return MachineParts(config: config, emulatingHost: emulatingHost, commandLine: commandLine, memory: memory,
                            system: system, vm: vm, vcpus: vcpus, devices: devices, serial: legacy.serial, monitor: monitor,
                            loop: loop.loop, ended: loop.ended, timers: loop.timers, parking: loop.parking,
                            legacy: legacy, cpuidSetup: cpuid, hook: scanHook)
    }
}

extension MachineBuilder {
    static func cpuidSetup(_ system: KVMSystem, config: MachineConfig, emulatingHost: Bool) throws(HostError) -> CPUIDSetup {
        CPUIDSetup(supported: try system.supportedCPUID(), cpuCount: config.cpuCount, hideUnemulatedFeatures: emulatingHost)
    }

    /// One vCPU per configured CPU, each with its CPUID table.
    static func createVCPUs(_ vm: VirtualMachine, cpuid: CPUIDSetup) throws(HostError) -> [VCPU] {
        var created: [VCPU] = []
        for id in 0..<UInt32(cpuid.cpuCount) {
            let vcpu = try vm.createVCPU(id: id)
            try vcpu.setCPUID(cpuid.entries(forVCPU: id))
            created.append(vcpu)
        }
        return created
    }
}

/// Late-bound target for device callbacks, which must exist before the Machine does.
/// unowned(unsafe): the Machine owns the devices, so it outlives every callback they make.
final class ScanHook: @unchecked Sendable {
    unowned(unsafe) var machine: Machine?
}

/// The device event loop and what every VM registers on it before any device does.
struct LoopParts {
    let loop: EventLoop
    let ended: EventFD
    let timers: Timers
    let parking: DeviceLoopParking

    init() throws(MachineError) {
        do {
            loop = try EventLoop(name: "svm-devices")
            ended = try EventFD()
            timers = try Timers()
            try timers.register(with: loop)
            parking = try DeviceLoopParking()
            try parking.register(with: loop)
        } catch { throw .host(error) }
    }
}

/// The PC's port devices. Their callbacks reach the Machine through hooks that are
/// connected once it exists; they only fire once vCPUs run.
struct LegacyDeviceSet {
    let serial: Serial16550
    let i8042: I8042
    let cmos: CMOS

    init(config: MachineConfig, vm: VirtualMachine, hook scanHook: ScanHook, devices: DeviceManager) throws(MachineError) {
        let output = config.serialOutput
        let vmRef = vm
        serial = Serial16550(
            output: { byte in
                withUnsafeBytes(of: byte) { output($0) }
                scanHook.machine?.scanConsole(CollectionOfOne(byte))
            },
            interrupt: { level in try? vmRef.setIRQLine(Serial16550.com1IRQ, level: level) })
        i8042 = I8042(reset: { scanHook.machine?.guestReset() })
        cmos = CMOS(now: { time(nil) })
        try devices.attachLegacy(serial: serial, i8042: i8042, cmos: cmos)
    }

    /// In the order the state file keeps them.
    var snapshottable: [(name: String, device: any Snapshottable)] {
        [("serial", serial), ("i8042", i8042), ("cmos", cmos)]
    }
}
