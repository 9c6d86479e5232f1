import Boot
import CKVM
import Devices
import Glibc
import Host
import KVM
import Memory
import Synchronization
import Virtio

/// One virtual machine: built from a `MachineConfig` by `init`, run to its end by `run()`.
///
/// Threads: one per vCPU (KVM_RUN loop), one reading console input, and the caller's
/// thread supervising (signals, timeout, stop requests). Sendable invariant: everything
/// mutable after `init` is either behind a Mutex/Atomic or owned by one vCPU thread.
public final class Machine: @unchecked Sendable {
    public let config: MachineConfig
    public let emulatingHost: Bool
    public let commandLine: String
    let system: KVMSystem
    let vm: VirtualMachine
    public let memory: GuestMemory
    let vcpus: [VCPU]
    /// nil for a flat image, which starts in real mode.
    let bootEntry: BootEntry?

    // Devices.
    let serial: Serial16550
    let i8042: I8042
    let cmos: CMOS
    let ports: PortDispatch
    let virtio: VirtioDevices

    /// The virtio consoles, in config order (hvc0, hvc1, …), for feeding them input.
    public var virtioConsoles: [VirtioConsole] { virtio.consoles }

    // Ending.
    let exitState = Mutex<MachineExit?>(nil)
    let stopEvent: EventFD
    let consoleState = Mutex(ConsoleState())
    let fixupCount = Atomic<Int>(0)
    let portExitCount = Atomic<UInt64>(0)
    let mmioExitCount = Atomic<UInt64>(0)

    /// How many exits of each kind svm handled (for tests and benchmarks).
    public struct ExitCounts: Equatable, Sendable {
        public var portIO: UInt64
        public var mmio: UInt64
    }
    public var exitCounts: ExitCounts {
        ExitCounts(portIO: portExitCount.load(ordering: .relaxed), mmio: mmioExitCount.load(ordering: .relaxed))
    }

    struct ConsoleState {
        var scanner = ConsoleEventScanner()
        var panicReason: String?
        var panicSeenAt: Double?
        var syscallLikelyBroken = false
    }

    /// Address of the 3 pages Intel VMX needs for real mode, and of its identity map page:
    /// inside the MMIO hole, below the BIOS area, where guest RAM never is.
    static let tssAddress: UInt64 = 0xFFFB_D000
    static let identityMapAddress: UInt64 = 0xFFFB_C000
    static let serialIRQ: UInt32 = 4
    static let halfDoneSyscallWatch = "half-done-syscall"

    public init(config: MachineConfig) throws(MachineError) {
        guard (1...MachineConfig.maximumCPUs).contains(config.cpuCount) else {
            throw .badInput("--cpus \(config.cpuCount): must be between 1 and \(MachineConfig.maximumCPUs)")
        }
        if let available = HostMemoryCheck.availableBytes(), config.memorySize > available {
            throw .badInput("--mem \(config.memorySize >> 20)M: the host has only \(available >> 20) MiB available")
        }
        self.config = config

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

        // Consoles the kernel prints to are scanned for panics like the serial port.
        let lineHolder = ConsoleSink()
        var virtioConfig = config
        virtioConfig.virtioConsoles = config.virtioConsoles.map { console in
            guard console.scanForGuestEvents else { return console }
            let output = console.output
            return VirtioConsoleConfig(scanForGuestEvents: true) { bytes in
                output(bytes)
                lineHolder.scan(bytes)
            }
        }
        virtio = try VirtioDevices(config: virtioConfig)

        do { system = try KVMSystem() } catch { throw .kvmUnavailable(error) }
        emulatingHost = KVMSystem.hostEmulatesGuestKernel
        commandLine = GuestCommandLine.build(user: config.commandLine, emulatingHost: emulatingHost,
                                             devices: virtio.commandLineEntries)

        // RAM slots go in before the irqchip and PIT: once those devices sit on KVM's I/O
        // buses, every memory slot change waits for an SRCU grace period (~6 ms here).
        do {
            vm = try system.createVM()
            try vm.setTSSAddress(Self.tssAddress)
            try vm.setIdentityMapAddress(Self.identityMapAddress)
        } catch { throw .kvm(error) }
        do { memory = try GuestMemory(size: config.memorySize, populate: config.populateMemory) }
        catch { throw .memory(error) }
        do {
            for (slot, region) in memory.regions.enumerated() {
                try vm.setUserMemoryRegion(slot: UInt32(slot), guestAddress: region.guestAddress,
                                           size: region.size, host: memory.hostBase + Int(region.hostOffset))
            }
            try vm.createIRQChip()
            try vm.createPIT2()
        } catch { throw .kvm(error) }
        try virtio.attach(to: vm, memory: memory)

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

        do { stopEvent = try EventFD() } catch { throw .host(error) }

        // Devices. Closures capture a weak-free unowned reference set up after init;
        // they only run while `run()` keeps self alive.
        let outputFD = config.consoleOutputFD
        let vmRef = vm
        serial = Serial16550(
            output: { byte in lineHolder.deliver(byte: byte, fd: outputFD) },
            interrupt: { level in try? vmRef.setIRQLine(Machine.serialIRQ, level: level) })
        let resetHolder = ResetSink()
        i8042 = I8042(reset: { resetHolder.fire() })
        cmos = CMOS(now: { time(nil) })
        ports = PortDispatch()

        do {
            let supported = try system.supportedCPUID()
            let cpuid = CPUIDSetup(supported: supported, cpuCount: config.cpuCount,
                                   hideUnemulatedFeatures: emulatingHost)
            var created: [VCPU] = []
            for id in 0..<UInt32(config.cpuCount) {
                let vcpu = try vm.createVCPU(id: id)
                try vcpu.setCPUID(cpuid.entries(forVCPU: id))
                try VCPUSetup.configureCommon(vcpu)
                created.append(vcpu)
            }
            vcpus = created
            if let bootEntry {
                try VCPUSetup.enter(vcpus[0], at: bootEntry)
            } else {
                try VCPUSetup.enterRealMode(vcpus[0], at: MachineConfig.flatImageAddress)
            }
        } catch { throw .kvm(error) }

        if emulatingHost {
            // A stock kernel's first system call from /init faults at the kernel's syscall
            // entry (error 0x15: user instruction fetch) and init dies.
            consoleState.withLock {
                $0.scanner.watch(LineWatch(name: Machine.halfDoneSyscallWatch, allOf: ["[1]: segfault at ffffffff", " error 15"]))
            }
        }
        lineHolder.machine = self
        resetHolder.machine = self
        ports.machine = self
    }

    /// Ends the VM with `exit` unless another ending was recorded first.
    func stop(_ exit: MachineExit) {
        let first = exitState.withLock { state -> Bool in
            guard state == nil else { return false }
            state = exit
            return true
        }
        if first { stopEvent.signal() }
    }

    var isStopping: Bool { exitState.withLock { $0 != nil } }

    /// The guest wrote 0xFE to the i8042: a reboot, or the last act of a panic.
    func guestReset() {
        let panic = consoleState.withLock { $0.panicReason }
        if let panic { stop(.panic(panic)) } else { stop(.reset) }
    }

    /// Console output: to the user, and through the scanner that spots panics and power-off.
    func consoleOutput(byte: UInt8, fd: Int32) {
        writeAll(byte: byte, to: fd)  // output closed: the guest keeps running
        scanConsole(CollectionOfOne(byte))
    }

    func scanConsole(_ bytes: some Sequence<UInt8>) {
        let events = consoleState.withLock { state in state.scanner.feed(bytes) }
        for event in events { handle(event) }
    }

    func handle(_ event: ConsoleEvent) {
        switch event {
        case let .panic(reason):
            consoleState.withLock { s in
                if s.panicReason == nil {
                    s.panicReason = reason
                    s.panicSeenAt = Machine.monotonicSeconds()
                }
            }
        case .powerOff, .halted:
            stop(.powerOff)
        case .restarting:
            break
        case let .matched(needle, _) where needle == Machine.halfDoneSyscallWatch:
            consoleState.withLock { $0.syscallLikelyBroken = true }
        case .matched:
            break
        }
    }

    /// True when the guest died the way a stock kernel dies on a host whose KVM leaves
    /// system calls half done (segfault at the kernel's syscall entry, then init killed).
    public var diedAtFirstSystemCall: Bool {
        emulatingHost && consoleState.withLock { $0.syscallLikelyBroken }
    }

    public var instructionsCompleted: Int { fixupCount.load(ordering: .relaxed) }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Late-bound targets for device callbacks, which must exist before the Machine does.
final class ConsoleSink: @unchecked Sendable {
    unowned(unsafe) var machine: Machine?
    func deliver(byte: UInt8, fd: Int32) {
        if let m = machine { m.consoleOutput(byte: byte, fd: fd) } else { writeAll(byte: byte, to: fd) }
    }

    func scan(_ bytes: [UInt8]) { machine?.scanConsole(bytes) }
}

final class ResetSink: @unchecked Sendable {
    unowned(unsafe) var machine: Machine?
    func fire() { machine?.guestReset() }
}
