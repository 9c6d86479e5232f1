import Control
import Glibc
import Host
import Machine
import OCI
import Runner
import Sandbox

/// The container's VM process: the pid the engine waits on. Started by `create` with the
/// container's stdio and its state directory's lock; boots the VM, serves the control
/// socket (start, signal, status, pause, resume, kill), passes signals it receives on to
/// the container's process, and exits with that process's status (128+N for signal N).
enum ContainerProcess {
    static let commandName = "_vm"

    /// vCPUs are kicked with a real-time signal, so that SIGUSR1 and SIGUSR2 sent to the
    /// container's pid can be passed on to the process like any other.
    static let kickSignal: Int32 = 40
    /// Forwarded to the container's process when the engine sends them to this pid.
    static let forwarded: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH, SIGCONT]

    static func main(_ global: [String], _ arguments: [String], environment: [String: String]) -> Int32 {
        var log = RuntimeLog()
        let scanned = try? RuntimeCommand.globalScanner.scan(global)
        log.path = scanned?.values["log"]
        log.format = scanned?.values["log-format"].flatMap(RuntimeLog.Format.init(rawValue:)) ?? .text
        let root = scanned?.values["root"] ?? ContainerStore.defaultRoot
        guard arguments.count == 1, let id = arguments.first,
              let readyFD = environment[CreateCommand.readyFDVariable].flatMap(Int32.init),
              let lockFD = environment[CreateCommand.lockFDVariable].flatMap(Int32.init) else {
            log.error("\(commandName) is started by svm-runtime create, not by hand")
            return RuntimeExit.usage.rawValue
        }
        _ = fcntl(readyFD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(lockFD, F_SETFD, FD_CLOEXEC)
        let store = ContainerStore(root: root)
        let claim = VMClaim(name: id, directory: store.directory.path(of: id), lockFD: lockFD)
        func report(_ word: String) {
            writeAll(Array((word + "\n").utf8), to: readyFD)
            close(readyFD)
        }

        // Before any thread: the signals we pass on are blocked and read from a signalfd.
        Signals.block(forwarded)
        signal(SIGPIPE, SIG_IGN)
        let signalFD: Int32
        do { signalFD = try Signals.watch(forwarded) } catch {
            report("error: \(error)")
            return RuntimeExit.failed.rawValue
        }
        let kick = VCPUKick.install(signal: kickSignal)

        let session: ContainerSession
        let server: ControlServer
        var network: ContainerNetwork?
        do throws(RuntimeFailure) {
            guard let bytes = try? FileIO.readFile(claim.directory + "/config.json"),
                  let record = ContainerStore.Record(json: bytes) else {
                throw RuntimeFailure("container \(id): no record in \(claim.directory)")
            }
            let plan = try CreateCommand.loadPlan(bundle: record.bundle)
            let io = try terminalIO(plan: plan, environment: environment) ?? RunIO(input: 0, output: 1, error: 2)
            let consoleLog: ConsoleLog
            do { consoleLog = try ConsoleLog(path: claim.consoleLogPath) } catch { throw RuntimeFailure("\(error)") }
            // Still one thread here: the whole process enters the container's network namespace.
            network = try ContainerNetwork.enter(plan: plan)
            let request = ContainerRequest(
                job: plan.job,
                shares: plan.shares.map { .init(tag: $0.tag, hostPath: $0.hostPath, readOnly: $0.readOnly) },
                files: plan.files.map { .init(initramfsPath: $0.initramfsPath, hostPath: $0.hostPath) },
                memory: plan.memory, cpus: plan.cpus, kernel: environment["SVM_RUNTIME_KERNEL"], directory: claim.directory,
                network: network?.vmNetwork)
            do {
                session = try ContainerSession(request: request, environment: environment, io: io,
                                               serialOutput: { bytes in consoleLog.append(bytes) })
                try session.boot(kick: kick)
            } catch { throw RuntimeFailure("\(error)") }
            do {
                try claim.writePID(getpid())
                guard let loop = session.eventLoop else { throw HostError("control socket: the VM has no event loop", errno: EINVAL) }
                server = try ControlServer(path: claim.controlSocketPath, handler: ContainerHandler(session: session, network: network), loop: loop)
                try server.start()
            } catch {
                // The VM ends before its virtiofsd do, or the device would report their
                // hang-up on the container's stderr after our one line.
                session.end(signal: SIGKILL)
                _ = session.wait(signalFD: signalFD)
                throw RuntimeFailure("\(error)")
            }
        } catch {
            network?.disconnect()
            report("error: \(error.description)")
            return RuntimeExit.failed.rawValue
        }
        report("ok")

        let outcome = session.wait(signalFD: signalFD)
        network?.disconnect()
        let status = exitStatus(for: outcome)
        if let message = outcome.message, !(outcome.isSignalEnd) { log.error(message) }
        try? claim.writeExitRecord(ExitRecord(status: Int(status), reason: outcome.message ?? "exited", endedAt: Double(time(nil))))
        server.stop()
        return status
    }

    /// With `process.terminal`: a host pty whose master goes to the engine over the console
    /// socket (runc's protocol) now, before the guest is up (containerd's shim waits at
    /// most 30 s for it); the replica stands for the guest's terminal. It becomes this
    /// process's controlling terminal, so the engine's resizes arrive as SIGWINCH (passed on
    /// as the guest terminal's new size) and its hang-up as SIGHUP (passed on as a signal).
    static func terminalIO(plan: ContainerPlan, environment: [String: String]) throws(RuntimeFailure) -> RunIO? {
        guard plan.terminal else { return nil }
        guard let socket = environment[CreateCommand.consoleSocketVariable], !socket.isEmpty else {
            throw RuntimeFailure("process.terminal needs --console-socket", .usage)
        }
        do {
            let pty = try PseudoTerminal.open(size: plan.consoleSize)
            setsid()
            guard ioctl(pty.replica, UInt(TIOCSCTTY), 0) == 0 else { throw HostError.last("ioctl TIOCSCTTY \(pty.replicaPath)") }
            try pty.sendMaster(to: socket)
            return RunIO(input: pty.replica, output: pty.replica, error: pty.replica)
        } catch {
            throw RuntimeFailure("terminal: \(error)")
        }
    }

    /// As a shell reports it: the status, or 128 + the signal; 127/126 when the process
    /// could not be executed (not found / not executable), 125 when svm failed.
    static func exitStatus(for outcome: RunOutcome) -> Int32 {
        switch outcome {
        case let .program(.exited(n)): return n & 0xff
        case let .program(.signalled(s)): return 128 + s
        case let .interrupted(signal): return 128 + signal
        case .timedOut: return 124
        case let .failed(reason):
            if reason.contains("execve") { return reason.contains("No such file") ? 127 : 126 }
            return 125
        }
    }
}

extension RunOutcome {
    var isSignalEnd: Bool { if case .interrupted = self { true } else { false } }
}

/// Control requests for a container's VM.
final class ContainerHandler: ControlHandler, @unchecked Sendable {
    // Sendable invariant: the session and the network are thread-safe.
    let session: ContainerSession
    let network: ContainerNetwork?

    init(session: ContainerSession, network: ContainerNetwork?) {
        self.session = session
        self.network = network
    }

    func handle(_ request: ControlRequest) -> ControlReply {
        switch request {
        case .status:
            let phase: String = switch session.currentPhase {
            case .created: "created"
            case .running: session.machineState == "paused" ? "paused" : "running"
            case .stopped: "stopped"
            }
            return .ok(["container": .string(phase), "pid": .int(Int(getpid())), "vm": .string(session.machineState)])
        case .start:
            guard session.currentPhase == .created else { return .failure("cannot start a container that is \(session.currentPhase)") }
            // By now every engine has put its veth in the namespace (see ContainerNetwork).
            let guestNetwork: GuestNetwork?
            do { guestNetwork = try network?.connect() } catch {
                network?.disconnect()
                return .failure("network: \(error.description)")
            }
            return session.start(network: guestNetwork) ? .ok() : .failure("cannot start a container that is \(session.currentPhase)")
        case let .signal(number, all):
            session.signal(number, all: all)
            return .ok()
        case .pause:
            return session.pause() ? .ok() : .failure("cannot pause: the VM is \(session.machineState)")
        case .resume:
            session.resume()
            return .ok()
        case .kill:
            session.end(signal: SIGKILL)
            return .ok()
        case let .stop(timeout):
            session.signal(SIGTERM, all: false)
            _ = timeout
            return .ok()
        case .attach:
            return .failure("attach: a container's streams belong to its engine")
        case let .exec(process):
            return acceptExec(process)
        case .snapshot:
            return .failure("snapshot: containers cannot be saved yet (their shares are virtio-fs)")
        }
    }

    func attach(connection fd: Int32) { close(fd) }
}
