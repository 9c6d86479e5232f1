import Glibc
import Host
import Machine
import Sandbox
import VhostUser

/// One `svm run`: packs the program into an initramfs, boots a throwaway VM on it with
/// three virtio consoles (hvc0 → our stdout, hvc1 → our stderr, hvc2 ↔ the control
/// channel), forwards stdin, and turns the end into an outcome. The temporary directory
/// is gone as soon as the VM has read the image, and on every way out before that.
public final class RunSession {
    public let request: RunRequest
    public let environment: [String: String]
    public let io: RunIO
    public private(set) var timings: RunTimings
    private let kick: VCPUKick

    /// - Parameters:
    ///   - io: where the program's streams come from and go (svm's own 0, 1, 2 for the CLI).
    ///   - kick: the vCPU kick signal the program installed (`VCPUKick.install`).
    public init(request: RunRequest, environment: [String: String], io: RunIO, kick: VCPUKick,
                start: Double = MonotonicClock.now()) {
        self.request = request
        self.environment = environment
        self.io = io
        self.kick = kick
        timings = RunTimings(start: start)
    }

    /// Runs the program and returns how it ended; prints only notes about skipped
    /// volume entries (and, with --verbose, the guest's console) on `io.error`.
    /// The terminating signals and SIGWINCH must be blocked by the caller (threads inherit
    /// the mask); `signalFD` reports the terminating ones.
    public func run(signalFD: Int32) -> RunOutcome {
        var caught: Int32?
        let interrupted: () -> Int32? = {
            if caught == nil { caught = Signals.readSignal(from: signalFD) }
            return caught
        }
        do {
            return try boot(signalFD: signalFD, interrupted: interrupted)
        } catch let error {
            timings.ended = MonotonicClock.now()
            if let signal = error.signal ?? caught { return .interrupted(signal: signal) }
            return .failed(error.description)
        }
    }

    private func boot(signalFD: Int32, interrupted: () -> Int32?) throws(RunError) -> RunOutcome {
        let cache = DefaultGuest.cacheDirectory(environment: environment)
        guard let initBinary = DefaultGuest.initBinary(environment: environment) else {
            throw RunError("no guest init in \(cache)/default/svm-init: run scripts/build-init")
        }
        guard let kernel = request.kernel ?? DefaultGuest.kernel(environment: environment) else {
            throw RunError("no --kernel given and no project-built kernel in \(cache)/default: run scripts/build-guest-kernel")
        }
        // A terminal when asked for, or when the user is at one: stdin and stdout both
        // terminals (with stdout redirected, the program's output must stay binary-exact).
        let tty = request.tty || (isatty(io.input) == 1 && isatty(io.output) == 1)
        let forwardStdin = StdinForwarder.shouldForward(fd: io.input, tty: tty)
        let terminal = tty ? TerminalSize.of(fd: io.input) ?? TerminalSize.of(fd: io.output) ?? (0, 0) : nil
        let live = LiveVolumes.possible(for: request)
        let image = try SandboxImage.build(request: request, initBinary: initBinary, forwardStdin: forwardStdin && !tty,
                                           terminal: terminal, liveVolumes: live,
                                           environment: environment,
                                           note: { [io] in io.message("note: \($0)") }, interrupted: interrupted)
        defer { image.directory.remove() }
        if let signal = interrupted() { throw RunError.interrupted(signal: signal) }

        let consoleTail = request.verbose ? nil : try ConsoleTail()
        defer { consoleTail?.close() }
        let control = try ControlChannel()
        let copyOut = !live && request.volumes.contains { !$0.readOnly } ? try CopyOutCollector(environment: environment) : nil
        // Live volumes: a virtiofsd each, until the VM is gone (the defer runs on every way
        // out of here, after the Machine has ended).
        let shares = live ? try LiveVolumes(request.volumes, environment: environment) : nil
        defer { shares?.stop() }
        var config = MachineConfig(kernelPath: kernel)
        config.initrdPath = image.initrdPath
        config.memorySize = request.memory
        config.cpuCount = request.cpus
        config.commandLine = "console=ttyS0 quiet"
        let serialFD = consoleTail?.writeFD ?? io.error
        config.serialOutput = { bytes in writeAll(bytes, to: serialFD) }
        config.networks = request.networks
        if let shares {
            config.sharedFolders = shares.folders
            config.deviceFailure = { [io] line in io.message(line) }
        }
        let (outFD, errFD) = (io.output, io.error)
        config.virtioConsoles = [
            VirtioConsoleConfig(role: .programOutput) { bytes in writeAll(bytes, to: outFD) },
            VirtioConsoleConfig(role: .programError) { bytes in writeAll(bytes, to: errFD) },
            VirtioConsoleConfig(role: .control) { bytes in control.receive(bytes) },
        ]
        // Only with read-write volumes: every device costs guest boot time. The init sends
        // the copy-out archive on it (hvc3) after the program's exit frame.
        if let copyOut { config.virtioConsoles.append(VirtioConsoleConfig(role: .copyOut) { bytes in copyOut.receive(bytes) }) }
        // The limit counts from svm's start, as the user sees it.
        if let limit = request.timeout { config.timeout = max(0.001, limit - (MonotonicClock.now() - timings.start)) }

        let machine: Machine
        do { machine = try Machine(config: config) } catch { throw RunError("\(error)") }
        image.directory.remove()  // the Machine holds the initrd in guest memory now

        // Raw once the guest is ready (the forwarder does it on the init's R frame), to the end
        // of the run: keys (^C included) then go to the guest's terminal, which echoes and
        // edits; during the boot ^C still interrupts svm. Ctrl-A x ends the VM as ^C would
        // have (as interrupted by SIGINT: status 130). Restored on every way out:
        // the run returns here on signals and timeouts too, and TerminalMode registers atexit.
        let terminalMode = tty ? TerminalMode(fd: io.input) : nil
        defer { terminalMode?.restore() }
        let inputConsole = machine.console(role: tty ? .programOutput : .control)!
        let controlConsole = machine.console(role: .control)!
        let forwarder = forwardStdin
            ? try StdinForwarder(fd: io.input, console: inputConsole, ready: control.readyEvent,
                                 mode: tty ? .terminal : .frames,
                                 onReady: { terminalMode?.enterRaw() },
                                 onEscape: { machine.end(.interrupted(signal: SIGINT)) }) : nil
        let resizes = tty ? try WindowSizeForwarder(terminalFD: terminalMode?.fd ?? io.output, console: controlConsole,
                                                     ready: control.readyEvent) : nil
        timings.vmStarted = MonotonicClock.now()
        do { try machine.start(kick: kick) } catch { throw RunError("\(error)") }
        let exit = Self.waitForEnd(of: machine, signalFD: signalFD)
        timings.ended = MonotonicClock.now()
        forwarder?.stop()
        resizes?.stop()
        terminalMode?.restore()

        let report = control.report
        timings.ready = report.readyAt
        timings.exited = report.exitAt
        var hint: String
        if let tail = consoleTail {
            hint = ConsoleTail.lastInitMessage(in: tail.drain()) ?? "run with --verbose to see the guest's console"
        } else {
            hint = "the guest's console is above"
        }
        if machine.diedAtFirstSystemCall {
            hint = "the guest kernel lacks svm's system-call fix for this host: use the kernel from scripts/build-guest-kernel"
        }
        let outcome = RunOutcome.decide(machineExit: exit, report: report, timeout: request.timeout, consoleHint: hint)
        // Changes come back only from a program that ended by itself: after a timeout or a
        // signal the archive is incomplete, and nothing of it is used.
        guard case .program = outcome, let copyOut else { return outcome }
        // Stopped while the guest was still sending (Ctrl-C, --timeout): that is how the run
        // ended, as far as the user is concerned, and nothing comes back.
        if case let .interrupted(signal) = exit { return .interrupted(signal: signal) }
        if case .timedOut = exit { return .timedOut(seconds: request.timeout ?? 0) }
        if let problem = VolumeCopyOut.apply(collector: copyOut, volumes: request.volumes, copiedIn: image.copiedIn,
                                             guestFailure: report.failure, note: { [io] in io.message("note: \($0)") }) {
            return .failed("\(problem) (the program's exit status was \(outcome.programStatusText))")
        }
        return outcome
    }

    /// Waits for the VM to end; a terminating signal on `signalFD` ends it as interrupted.
    static func waitForEnd(of machine: Machine, signalFD: Int32) -> MachineExit {
        var fds = [pollfd(fd: machine.endedDescriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
        while !machine.hasEnded {
            if poll(&fds, 2, -1) < 0 && errno != EINTR { break }
            if fds[1].revents != 0, let signo = Signals.readSignal(from: signalFD) {
                machine.end(.interrupted(signal: signo))
            }
        }
        return machine.wait()
    }
}
