import Glibc
import Host
import Machine
import Sandbox

/// One `svm run`: packs the program into an initramfs, boots a throwaway VM on it with
/// three virtio consoles (hvc0 → our stdout, hvc1 → our stderr, hvc2 ↔ the control
/// channel), forwards stdin, and turns the end into an outcome. The temporary directory
/// is gone as soon as the VM has read the image, and on every way out before that.
public final class RunSession {
    public let request: RunRequest
    public let environment: [String: String]
    public private(set) var timings: RunTimings

    public init(request: RunRequest, environment: [String: String], start: Double = RunTimings.now()) {
        self.request = request
        self.environment = environment
        timings = RunTimings(start: start)
    }

    /// Runs the program, prints what there is to say on stderr (the reason for a failure;
    /// with --verbose the timings too) and returns svm's exit status.
    public func execute() -> Int32 {
        let outcome = run()
        if let message = outcome.message { FDWriter.message(message) }
        if request.verbose { FDWriter.message("timings: \(timings.summary)") }
        return outcome.exitStatus
    }

    /// Runs the program and returns how it ended; prints only notes about skipped
    /// volume entries (and, with --verbose, the guest's console).
    public func run() -> RunOutcome {
        Self.fillStandardDescriptors()
        WindowSizeForwarder.blockSignal()
        let signalFD: Int32
        do { signalFD = try Signals.blockTerminatingSignals() } catch { return .failed("\(error)") }
        defer { close(signalFD) }
        var caught: Int32?
        let interrupted: () -> Int32? = {
            if caught == nil { caught = Signals.readSignal(from: signalFD) }
            return caught
        }
        do {
            return try boot(signalFD: signalFD, interrupted: interrupted)
        } catch let error {
            timings.ended = RunTimings.now()
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
        let tty = request.tty || (isatty(0) == 1 && isatty(1) == 1)
        let forwardStdin = StdinForwarder.shouldForward(fd: 0, tty: tty)
        let terminal = tty ? TerminalSize.of(fd: 0) ?? TerminalSize.of(fd: 1) ?? (0, 0) : nil
        let image = try SandboxImage.build(request: request, initBinary: initBinary, forwardStdin: forwardStdin && !tty,
                                           terminal: terminal,
                                           environment: environment,
                                           note: { FDWriter.message("note: \($0)") }, interrupted: interrupted)
        defer { image.directory.remove() }
        if let signal = interrupted() { throw RunError.interrupted(signal: signal) }

        let consoleTail = request.verbose ? nil : try ConsoleTail()
        defer { consoleTail?.close() }
        let control = try ControlChannel()
        let copyOut = request.volumes.contains { !$0.readOnly } ? try CopyOutCollector(environment: environment) : nil
        var config = MachineConfig(kernelPath: kernel)
        config.initrdPath = image.initrdPath
        config.memorySize = request.memory
        config.cpuCount = request.cpus
        config.commandLine = "console=ttyS0 quiet"
        config.consoleOutputFD = consoleTail?.writeFD ?? 2
        config.consoleInputFD = nil
        config.networks = request.networks
        config.virtioConsoles = [
            VirtioConsoleConfig { bytes in writeAll(bytes, to: 1) },
            VirtioConsoleConfig { bytes in writeAll(bytes, to: 2) },
            VirtioConsoleConfig { bytes in control.receive(bytes) },
        ]
        // Only with read-write volumes: every device costs guest boot time. The init sends
        // the copy-out archive on it (hvc3) after the program's exit frame.
        if let copyOut { config.virtioConsoles.append(VirtioConsoleConfig { bytes in copyOut.receive(bytes) }) }
        // The limit counts from svm's start, as the user sees it.
        if let limit = request.timeout { config.timeout = max(0.001, limit - (RunTimings.now() - timings.start)) }

        let machine: Machine
        do { machine = try Machine(config: config) } catch { throw RunError("\(error)") }
        image.directory.remove()  // the Machine holds the initrd in guest memory now

        // Raw once the guest is ready (the forwarder does it on the init's R frame), to the end
        // of the run: keys (^C included) then go to the guest's terminal, which echoes and
        // edits; during the boot ^C still interrupts svm. Ctrl-A x stops the VM as ^C would
        // have (a SIGINT to ourselves, read from the signalfd). Restored on every way out:
        // the run returns here on signals and timeouts too, and TerminalMode registers atexit.
        let terminalMode = tty ? TerminalMode(fd: 0) : nil
        defer { terminalMode?.restore() }
        let forwarder = forwardStdin
            ? try StdinForwarder(fd: 0, console: machine.virtioConsoles[tty ? 0 : 2], ready: control.readyEvent,
                                 mode: tty ? .terminal : .frames,
                                 onReady: { terminalMode?.enterRaw() },
                                 onEscape: { _ = kill(getpid(), SIGINT) }) : nil
        let resizes = tty ? try WindowSizeForwarder(terminalFD: terminalMode?.fd ?? 1, console: machine.virtioConsoles[2],
                                                     ready: control.readyEvent) : nil
        timings.vmStarted = RunTimings.now()
        let exit = machine.run(signalFD: signalFD)
        timings.ended = RunTimings.now()
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
                                             guestFailure: report.failure, note: { FDWriter.message("note: \($0)") }) {
            return .failed("\(problem) (the program's exit status was \(outcome.exitStatus))")
        }
        return outcome
    }

    /// A closed stdin, stdout or stderr would be reused by the next open(), and program
    /// output could land in a file svm opened: point closed ones at /dev/null.
    static func fillStandardDescriptors() {
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) < 0 && errno == EBADF {
            let n = open("/dev/null", O_RDWR)
            if n >= 0 && n != fd {
                dup2(n, fd)
                close(n)
            }
        }
    }
}
