import Boot
import Devices
import Glibc
import Host
import KVM
import Memory
import Synchronization
import Virtio

/// One virtual machine, as a library: `init(config:)` builds it (MachineBuilder: devices,
/// KVM objects, guest RAM, the loaded kernel, vCPUs) without running anything; `start`
/// runs it; `pause`, `resume`, `requestShutdown` and `end` steer it from any thread;
/// `endedDescriptor` becomes readable when it has ended, and `wait` joins its threads and
/// says how it ended.
///
/// Threads of a running VM: one per vCPU (KVM_RUN and exit handling) and one event loop
/// (queue notifications, TAP input, the timeout and grace-period timers). The caller's
/// thread is free: it polls `endedDescriptor` with whatever else it serves (a terminal, a
/// signalfd, a control socket). The library never touches fds 0-2, never installs a
/// signal handler and never signals its own process.
///
/// Sendable invariant: what is mutable after `init` is behind a Mutex or an Atomic, or is
/// owned by one vCPU thread (its VCPU), or is set in `start` before any thread exists.
public final class Machine: @unchecked Sendable {
    public let config: MachineConfig
    public let emulatingHost: Bool
    /// The whole kernel command line the guest got.
    public let commandLine: String
    public let memory: GuestMemory
    let system: KVMSystem
    let vm: VirtualMachine
    let vcpus: [VCPU]
    let devices: DeviceManager
    let serial: Serial16550
    let monitor: ConsoleMonitor
    let loop: EventLoop
    let parking: DeviceLoopParking
    let legacy: LegacyDeviceSet
    let cpuidSetup: CPUIDSetup

    // Lifecycle.
    private let exitState = Mutex<MachineExit?>(nil)
    private let lifecycle = Mutex(Lifecycle())
    private let ended: EventFD
    let pauseGate = Gate()
    private let timers: Timers
    private var threads: [HostThread] = []
    private var kick: VCPUKick?

    let fixupCount = Atomic<Int>(0)
    let portExitCount = Atomic<UInt64>(0)
    let mmioExitCount = Atomic<UInt64>(0)

    struct Lifecycle {
        var started = false
        var paused = false
        var stopping = false
        var startedAt: Double?
        var observer: (@Sendable (MachineState) -> Void)?
    }

    static let panicGraceSeconds = 10.0

    init(parts: MachineParts) {
        config = parts.config
        emulatingHost = parts.emulatingHost
        commandLine = parts.commandLine
        memory = parts.memory
        system = parts.system
        vm = parts.vm
        vcpus = parts.vcpus
        devices = parts.devices
        serial = parts.serial
        monitor = parts.monitor
        loop = parts.loop
        parking = parts.parking
        legacy = parts.legacy
        cpuidSetup = parts.cpuidSetup
        ended = parts.ended
        timers = parts.timers
        // The devices' callbacks and the timers reach this VM through these links.
        parts.hook.machine = self
        timers.machine = self
    }

    /// Builds a VM from `config`, ready to `start`.
    public convenience init(config: MachineConfig) throws(MachineError) {
        self.init(parts: try MachineBuilder.build(config))
    }

    // MARK: Running

    /// Starts the event loop and one thread per vCPU. Once this returns the guest runs.
    public func start(kick: VCPUKick) throws(MachineError) {
        let first = lifecycle.withLock { l -> Bool in
            guard !l.started else { return false }
            l.started = true
            l.startedAt = MonotonicClock.now()
            return true
        }
        guard first else { throw .badInput("the VM was already started") }
        self.kick = kick
        do { try loop.start() } catch { throw .host(error) }
        if let t = config.timeout { timers.timeout.arm(after: t) }
        for vcpu in vcpus {
            let t = HostThread(name: "svm-vcpu\(vcpu.id)") { [self] in self.vcpuLoop(vcpu, kick: kick) }
            do { try t.start() } catch {
                end(.hostFailure("\(error)"))
                break
            }
            threads.append(t)
        }
        notify(.running)
    }

    /// The VM's device event loop (thread `svm-devices`), for a caller's own sources that
    /// must not block it (a control socket's listener): one thread and one epoll serve
    /// both. It runs from `start` until the VM has ended and `wait` returned.
    public var eventLoop: EventLoop { loop }

    /// A descriptor that becomes readable once the VM has ended (it stays readable).
    public var endedDescriptor: Int32 { ended.fd }

    public var hasEnded: Bool { exitState.withLock { $0 != nil } }

    /// Waits for the VM to end, stops its threads and returns how it ended.
    public func wait() -> MachineExit {
        var p = pollfd(fd: ended.fd, events: Int16(POLLIN), revents: 0)
        while !hasEnded { _ = poll(&p, 1, -1) }
        for t in threads { t.join() }
        threads = []
        loop.stop()
        return exitState.withLock { $0 } ?? .hostFailure("VM stopped without a reason")
    }

    /// Ends the VM with `exit` unless another ending was recorded first: every vCPU is
    /// kicked out of KVM_RUN (paused ones are woken) and the threads wind down.
    public func end(_ exit: MachineExit) {
        let first = exitState.withLock { state -> Bool in
            guard state == nil else { return false }
            state = exit
            return true
        }
        guard first else { return }
        for vcpu in vcpus { vcpu.requestStop() }
        if let kick { for t in threads { t.signal(kick.signal) } }
        pauseGate.wake()
        ended.signal()
        notify(.ended(exit))
    }

    /// Every vCPU leaves KVM_RUN and waits outside it; returns once all of them have (false
    /// if the VM ended first or is not running). The guest executes nothing meanwhile;
    /// its clocks go on (see docs/control.md).
    @discardableResult
    public func pause() -> Bool {
        let go = lifecycle.withLock { l -> Bool in
            guard l.started, !l.paused, !hasEnded else { return false }
            l.paused = true
            return true
        }
        guard go else { return lifecycle.withLock { $0.paused } && !hasEnded }
        pauseGate.close()
        for vcpu in vcpus { vcpu.requestStop() }
        if let kick { for t in threads { t.signal(kick.signal) } }
        let parked = pauseGate.waitForWaiters(vcpus.count, abandon: { self.hasEnded })
        if parked { notify(.paused) }
        return parked
    }

    public func resume() {
        let go = lifecycle.withLock { l -> Bool in
            guard l.paused else { return false }
            l.paused = false
            return true
        }
        guard go else { return }
        pauseGate.reopen()
        notify(lifecycle.withLock { $0.stopping } ? .stopping : .running)
    }

    /// Asks the guest to shut down through the agent port (its init stops its program and
    /// powers off) and ends the VM as `.killed` if it has not ended after `grace` seconds.
    /// Without an agent port, or while paused, there is nobody to ask: the VM ends now.
    public func requestShutdown(grace: Double) {
        guard !hasEnded else { return }
        let paused = lifecycle.withLock { l -> Bool in
            l.stopping = true
            return l.paused
        }
        guard let agent = devices.console(role: .agent), !paused, grace > 0 else {
            end(.killed)
            return
        }
        agent.receive(Array("stop\n".utf8))
        timers.shutdown.arm(after: grace)
        notify(.stopping)
    }

    public var state: MachineState {
        if let exit = exitState.withLock({ $0 }) { return .ended(exit) }
        return lifecycle.withLock { l in
            if !l.started { return .created }
            if l.paused { return .paused }
            return l.stopping ? .stopping : .running
        }
    }

    /// Seconds since `start`, or nil before it.
    public var uptime: Double? { lifecycle.withLock { $0.startedAt }.map { MonotonicClock.now() - $0 } }

    /// Called with each new state, on the thread that caused it. Set before `start`.
    public func observe(_ observer: @escaping @Sendable (MachineState) -> Void) {
        lifecycle.withLock { $0.observer = observer }
    }

    private func notify(_ state: MachineState) {
        lifecycle.withLock { $0.observer }?(state)
    }

    // MARK: Console

    /// Host input for the guest's console: the serial port, or the virtio console whose
    /// role `config.consoleInput` names.
    public func sendConsoleInput(_ bytes: [UInt8]) {
        if let role = config.consoleInput, let console = devices.console(role: role) {
            console.receive(bytes)
        } else {
            _ = serial.receive(bytes)
        }
    }

    /// The virtio console with `role`, for callers that feed or watch one.
    public func console(role: ConsoleRole) -> VirtioConsole? { devices.console(role: role) }

    /// How the virtio-fs device of the shared folder `tag` is doing ("running", "waiting
    /// for the driver", "failed: …"); nil if there is none.
    public func sharedFolderHealth(tag: String) -> String? {
        devices.sharedFolders.first { $0.tag == tag }?.health.description
    }

    /// Console output seen by the kernel-console scanner (serial port, and virtio consoles
    /// configured with `scanForGuestEvents`).
    func scanConsole(_ bytes: some Sequence<UInt8>) {
        for verdict in monitor.scan(bytes) {
            switch verdict {
            case .panicSeen:
                // Linux resets after a panic (panic=-1); if it never does (stuck CPUs,
                // panic=N overridden), the panic still ends the VM after a grace period.
                timers.panic.arm(after: Self.panicGraceSeconds)
            case .poweredOff:
                end(.powerOff)
            }
        }
    }

    /// The guest wrote 0xFE to the i8042: a reboot, or the last act of a panic.
    func guestReset() {
        if let panic = monitor.panicReason { end(.panic(panic)) } else { end(.reset) }
    }

    func timerFired(_ which: Timers.Kind) {
        switch which {
        case .timeout: end(.timedOut)
        case .panic: end(.panic(monitor.panicReason ?? "unknown"))
        case .shutdown: end(.killed)
        }
    }

    var isStopping: Bool { hasEnded }

    // MARK: Facts for callers and tests

    /// True when the guest died the way a stock kernel dies on a host whose KVM leaves
    /// system calls half done (segfault at the kernel's syscall entry, then init killed).
    public var diedAtFirstSystemCall: Bool { emulatingHost && monitor.syscallLikelyBroken }

    public var instructionsCompleted: Int { fixupCount.load(ordering: .relaxed) }

    /// How many exits of each kind svm handled (for tests and benchmarks).
    public struct ExitCounts: Equatable, Sendable {
        public var portIO: UInt64
        public var mmio: UInt64
    }

    public var exitCounts: ExitCounts {
        ExitCounts(portIO: portExitCount.load(ordering: .relaxed), mmio: mmioExitCount.load(ordering: .relaxed))
    }
}

/// The VM's deadlines as timerfds on its event loop.
final class Timers: @unchecked Sendable {
    // Sendable invariant: TimerFD is thread-safe; `machine` is set once before start.
    enum Kind { case timeout, panic, shutdown }
    let timeout: TimerFD
    let panic: TimerFD
    let shutdown: TimerFD
    unowned(unsafe) var machine: Machine?

    init() throws(HostError) {
        timeout = try TimerFD()
        panic = try TimerFD()
        shutdown = try TimerFD()
    }

    func register(with loop: EventLoop) throws(HostError) {
        for (timer, kind) in [(timeout, Kind.timeout), (panic, .panic), (shutdown, .shutdown)] {
            try loop.add(fd: timer.fd, source: EventHandler { [self] _, _ in
                timer.acknowledge()
                machine?.timerFired(kind)
            })
        }
    }
}
