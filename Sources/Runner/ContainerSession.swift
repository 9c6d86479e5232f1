import Glibc
import Host
import Machine
import Sandbox
import Synchronization
import VhostUser
import Virtio

/// What an OCI container needs from a VM: the job (process, root and mounts, mapped to
/// guest terms by svm-runtime), the host side of its shares and files, and the VM's size.
public struct ContainerRequest: Sendable {
    /// A host directory behind a virtio-fs tag (the root is `ContainerJob.rootTag`).
    public struct Share: Sendable, Equatable {
        public var tag: String
        public var hostPath: String
        public var readOnly: Bool
        public init(tag: String, hostPath: String, readOnly: Bool) {
            self.tag = tag
            self.hostPath = hostPath
            self.readOnly = readOnly
        }
    }

    /// A host file copied into the initramfs (the init bind-mounts it in the container).
    public struct File: Sendable, Equatable {
        public var initramfsPath: String
        public var hostPath: String
        public init(initramfsPath: String, hostPath: String) {
            self.initramfsPath = initramfsPath
            self.hostPath = hostPath
        }
    }

    /// The guest's network: a virtio-net on a TAP the caller connects at start
    /// (svm-runtime's ContainerNetwork), which also gives the address for eth0 then.
    public struct Network: Sendable, Equatable {
        public var tapName: String
        public var mac: String
        public init(tapName: String, mac: String) {
            self.tapName = tapName
            self.mac = mac
        }
    }

    public var job: SandboxJob
    public var shares: [Share]
    public var files: [File]
    public var memory: UInt64
    public var cpus: Int
    /// nil: the kernel built by scripts/build-guest-kernel.
    public var kernel: String?
    /// Where the virtiofsd sockets and logs go (the container's state directory).
    public var directory: String
    /// nil: loopback only.
    public var network: Network?

    public init(job: SandboxJob, shares: [Share], files: [File], memory: UInt64, cpus: Int, kernel: String?,
                directory: String, network: Network? = nil) {
        self.job = job
        self.shares = shares
        self.files = files
        self.memory = memory
        self.cpus = cpus
        self.kernel = kernel
        self.directory = directory
        self.network = network
    }
}

/// One container's VM: booted at `create` (a boot is about a minute on our hosts, so it
/// starts at once and the process waits in the guest for `start`), the process's streams
/// through `io` as for `svm run`, signals and the start request as control frames.
public final class ContainerSession: @unchecked Sendable {
    // Sendable invariant: `machine` and the helpers are set in `boot` before any other
    // thread sees the session; the lifecycle flags are behind `phase`.
    public enum Phase: Equatable, Sendable { case created, running, stopped }

    public let request: ContainerRequest
    private let environment: [String: String]
    private let io: RunIO
    private let serialOutput: @Sendable (UnsafeRawBufferPointer) -> Void
    private let phase = Mutex(Phase.created)
    private var machine: Machine?
    private var control: ControlChannel?
    private var commands: GuestCommandSender?
    private var forwarder: StdinForwarder?
    private var daemons: VirtiofsdGroup?
    private let started: EventFD
    /// Processes `svm-runtime exec` runs in the container (ContainerExecs.swift); nil until boot.
    public private(set) var execs: ContainerExecs?
    /// The VM's device event loop, for the caller's control socket; nil until boot.
    public var eventLoop: EventLoop? { machine?.eventLoop }

    public init(request: ContainerRequest, environment: [String: String], io: RunIO,
                serialOutput: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws(RunError) {
        self.request = request
        self.environment = environment
        self.io = io
        self.serialOutput = serialOutput
        do { started = try EventFD() } catch { throw RunError("\(error)") }
    }

    deinit { stopShares() }

    public var currentPhase: Phase { phase.withLock { $0 } }

    /// Builds the image, starts a virtiofsd per share and the VM; returns once the vCPUs run.
    public func boot(kick: VCPUKick) throws(RunError) {
        let cache = DefaultGuest.cacheDirectory(environment: environment)
        guard let initBinary = DefaultGuest.initBinary(environment: environment) else {
            throw RunError("no guest init in \(cache)/default/svm-init: run scripts/build-init")
        }
        guard let kernel = request.kernel ?? DefaultGuest.kernel(environment: environment) else {
            throw RunError("no guest kernel in \(cache)/default: run scripts/build-guest-kernel")
        }
        var job = request.job
        // With a terminal, io.input is its replica: bytes go raw to hvc0, the guest's
        // terminal, as keys; without one, stdin is framed (and has an end).
        job.hasStdin = !job.tty && StdinForwarder.shouldForward(fd: io.input, tty: false)
        let image = try ContainerImage.build(job: job, files: request.files, initBinary: initBinary, environment: environment)
        defer { image.remove() }

        let groupShares = request.shares.map { VirtiofsdGroup.Share(tag: $0.tag, source: $0.hostPath, readOnly: $0.readOnly) }
        do { daemons = try VirtiofsdGroup(groupShares, directory: request.directory) } catch {
            let share = request.shares[error.index]
            throw RunError("\(share.tag == ContainerJob.rootTag ? "root.path" : "mount") \(share.hostPath): \(error.reason)")
        }
        let execs = ContainerExecs(started: started)
        self.execs = execs
        let control = try ControlChannel(execs: execs)
        self.control = control
        var config = MachineConfig(kernelPath: kernel)
        config.initrdPath = image.path
        config.memorySize = request.memory
        config.cpuCount = request.cpus
        config.commandLine = "console=ttyS0 quiet"
        if let network = request.network {
            config.networks = [NetworkConfig(tapName: network.tapName, mac: network.mac)]
        }
        config.serialOutput = serialOutput
        config.sharedFolders = (daemons?.daemons ?? []).map { SharedFolderConfig(tag: $0.tag, socketPath: $0.socketPath) }
        config.deviceFailure = { [io] line in io.message(line) }
        let (outFD, errFD) = (io.output, io.error)
        config.virtioConsoles = [
            VirtioConsoleConfig(role: .programOutput) { bytes in writeAll(bytes, to: outFD) },
            VirtioConsoleConfig(role: .programError) { bytes in writeAll(bytes, to: errFD) },
            VirtioConsoleConfig(role: .control) { bytes in control.receive(bytes) },
        ]
        let machine: Machine
        do { machine = try Machine(config: config) } catch {
            stopShares()
            throw RunError("\(error)")
        }
        self.machine = machine
        let console = machine.console(role: .control)!
        execs.connect(console: console)
        do {
            commands = try GuestCommandSender(console: console, ready: control.readyEvent)
            // stdin goes to the process only once it is started: the init reads nothing
            // but the start frame before that.
            if job.tty {
                forwarder = try StdinForwarder(fd: io.input, console: machine.console(role: .programOutput)!, ready: started,
                                               mode: .passthrough)
            } else if job.hasStdin {
                forwarder = try StdinForwarder(fd: io.input, console: console, ready: started)
            }
            try machine.start(kick: kick)
        } catch {
            machine.end(.hostFailure("\(error)"))
            _ = machine.wait()
            commands?.stop()
            forwarder?.stop()
            stopShares()
            throw RunError("\(error)")
        }
    }

    /// The engine's `start`: the process runs once the guest is ready, after the guest's
    /// eth0 got `network` (when given). False unless created.
    public func start(network: GuestNetwork? = nil) -> Bool {
        guard phase.withLock({ p -> Bool in
            guard p == .created else { return false }
            p = .running
            return true
        }) else { return false }
        let started = self.started
        if let network { commands?.send(.network(network)) }
        commands?.send(.start) { started.signal() }
        // The engine may have sized the terminal since create.
        if request.job.tty, let size = TerminalSize.of(fd: io.input) {
            commands?.send(.windowSize(rows: size.rows, columns: size.columns))
        }
        return true
    }

    /// The engine's `kill`: to the process once started; before that a signal whose
    /// default is to terminate ends the VM (the process never ran: 128 + signal).
    public func signal(_ number: Int32, all: Bool) {
        switch currentPhase {
        case .running where number == SIGWINCH && request.job.tty:
            // The engine resized the terminal (its master): the guest's terminal follows,
            // and the guest kernel sends the program its own SIGWINCH.
            if let size = TerminalSize.of(fd: io.input) {
                commands?.send(.windowSize(rows: size.rows, columns: size.columns))
            }
        case .running:
            commands?.send(.signal(number, all: all))
        case .created:
            if Self.terminatesByDefault(number) { machine?.end(.interrupted(signal: number)) }
        case .stopped:
            break
        }
    }

    /// Ends the VM at once, as if the process had been killed by `signal`.
    public func end(signal: Int32) { machine?.end(.interrupted(signal: signal)) }

    public func pause() -> Bool { machine?.pause() ?? false }
    public func resume() { machine?.resume() }
    public var machineState: String { machine?.state.name ?? "created" }

    /// Waits for the VM to end; a terminating signal on `signalFD` is passed on to the
    /// process (the engine signals this, the container's pid). Returns how it ended.
    public func wait(signalFD: Int32) -> RunOutcome {
        guard let machine, let control else { return .failed("the container's VM never started") }
        var fds = [pollfd(fd: machine.endedDescriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
        while !machine.hasEnded {
            if poll(&fds, 2, -1) < 0 && errno != EINTR { break }
            if fds[1].revents != 0, let signo = Signals.readSignal(from: signalFD) { signal(signo, all: false) }
        }
        let exit = machine.wait()
        phase.withLock { $0 = .stopped }
        execs?.endAll("the container's VM ended")
        forwarder?.stop()
        commands?.stop()
        stopShares()
        return RunOutcome.decide(machineExit: exit, report: control.report, timeout: nil,
                                 consoleHint: "the guest's console is in the container's console.log")
    }

    private func stopShares() {
        daemons?.stop()
        daemons = nil
    }

    /// SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGTERM, SIGUSR1/2, SIGPIPE, SIGALRM and the
    /// real-time signals end a process that has no handler; SIGCHLD, SIGCONT, SIGWINCH,
    /// SIGURG and the stop signals do not.
    static func terminatesByDefault(_ signal: Int32) -> Bool {
        ![SIGCHLD, SIGCONT, SIGWINCH, SIGURG, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].contains(signal) && signal > 0
    }
}

/// Frames for the guest init that may be asked for before it is ready: held until its
/// `R` frame (the console would echo them before that), then delivered in order.
final class GuestCommandSender: @unchecked Sendable {
    // Sendable invariant: the queue and the ready flag are behind `state`.
    private struct State {
        var ready = false
        var queue: [(bytes: [UInt8], then: (@Sendable () -> Void)?)] = []
    }

    private let console: VirtioConsole
    private let state = Mutex(State())
    private let stopEvent: EventFD
    private var thread: HostThread?

    init(console: VirtioConsole, ready: EventFD) throws(HostError) {
        self.console = console
        stopEvent = try EventFD()
        let stop = stopEvent
        let thread = HostThread(name: "svm-guest-cmds") { [self] in
            guard Readiness.waitReadable(ready.fd, orStop: stop) else { return }
            let queued = state.withLock { s -> [(bytes: [UInt8], then: (@Sendable () -> Void)?)] in
                s.ready = true
                let q = s.queue
                s.queue = []
                for item in q { console.receive(item.bytes) }
                return q
            }
            for item in queued { item.then?() }
        }
        try thread.start()
        self.thread = thread
    }

    /// Sends `frame` now if the guest is ready, else once it is; `then` runs after.
    func send(_ frame: HostFrame, then: (@Sendable () -> Void)? = nil) {
        let bytes = frame.encoded()
        let now = state.withLock { s -> Bool in
            guard s.ready else {
                s.queue.append((bytes, then))
                return false
            }
            console.receive(bytes)
            return true
        }
        if now { then?() }
    }

    func stop() {
        stopEvent.signal()
        thread?.join()
        thread = nil
    }
}
