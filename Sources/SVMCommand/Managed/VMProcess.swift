import Control
import Glibc
import Host
import Machine
import Synchronization
import VhostUser

/// The process a managed VM lives in, foreground or detached: it holds the VM's claim on
/// its state directory (the lock), serves its control socket, keeps its bounded console
/// log, feeds attached consoles, and records how the VM ended.
final class VMProcess: ControlHandler, @unchecked Sendable {
    // Sendable invariant: set up before the control server starts; the Machine and the
    // helpers it uses are thread-safe.
    let name: String
    let claim: VMClaim
    let options: BootOptions
    let log: ConsoleLog
    private(set) var machine: Machine!
    private var attached: AttachedClients?
    private var server: ControlServer?
    /// One virtiofsd per `--share`, in share order; ended in `finish` (and by their deinit
    /// on any other way out).
    private var shareDaemons: VirtiofsdGroup?
    private let startedAt = time(nil)

    init(name: String, claim: VMClaim, options: BootOptions) throws(HostError) {
        self.name = name
        self.claim = claim
        self.options = options
        log = try ConsoleLog(path: claim.consoleLogPath)
    }

    /// Builds the VM with its console going to the log, to attached clients and to
    /// `echo` (the terminal of a foreground VM); from the snapshot in `restoring` if given.
    func build(echo: Int32?, restoring: String? = nil) throws(MachineError) {
        let log = self.log
        let fanOut = FanOut()
        var config = BootConfiguration.machineConfig(options) { bytes in
            if let echo { writeAll(bytes, to: echo) }
            log.append(bytes)
            fanOut.clients?.broadcast(bytes)
        }
        if !options.shares.isEmpty {
            let shares = options.shares.map { VirtiofsdGroup.Share(tag: $0.tag, source: $0.source, readOnly: $0.readOnly) }
            do { shareDaemons = try VirtiofsdGroup(shares, directory: claim.directory) } catch {
                let share = options.shares[error.index]
                throw .sharedFolder(tag: share.tag, reason: "\(share.source):\(share.tag): \(error.reason)")
            }
        }
        config.sharedFolders = (shareDaemons?.daemons ?? []).map { SharedFolderConfig(tag: $0.tag, socketPath: $0.socketPath) }
        config.deviceFailure = { line in
            // On stderr for whoever watches svm, and in the log for `svm logs`.
            SVMCommand.printErr(line)
            log.append(Array("\r\nsvm: \(line)\r\n".utf8))
        }
        do {
            if let restoring {
                machine = try Machine(restoring: restoring, config: config)
            } else {
                machine = try Machine(config: config)
            }
        } catch {
            stopShares()
            if case let .sharedFolder(tag, reason) = error, let share = options.shares.first(where: { $0.tag == tag }) {
                throw .sharedFolder(tag: tag, reason: "\(share.source):\(tag): \(reason)")
            }
            throw error
        }
        let clients = AttachedClients(machine: machine)
        fanOut.clients = clients
        attached = clients
    }

    /// Serves the control socket and starts the guest.
    func start(kick: VCPUKick) throws(MachineError) {
        do {
            try claim.writePID(getpid())
            let server = try ControlServer(path: claim.controlSocketPath, handler: self, loop: machine.eventLoop)
            try server.start()
            self.server = server
        } catch { throw .host(error) }
        try machine.start(kick: kick)
    }

    /// After the VM ended: the exit record (unless the caller discards the directory next:
    /// an unnamed foreground VM), then the socket and attached consoles go.
    func finish(_ exit: MachineExit, recordExit: Bool = true) {
        if recordExit {
            let status = ExitCode.status(for: exit)
            try? claim.writeExitRecord(ExitRecord(status: Int(status), reason: BootConfiguration.message(for: exit, timeout: options.timeout) ?? "exited", endedAt: Double(time(nil))))
        }
        server?.stop()
        attached?.stop()
        stopShares()
    }

    func stopShares() { shareDaemons?.stop() }

    // MARK: ControlHandler

    func handle(_ request: ControlRequest) -> ControlReply {
        switch request {
        case .status:
            return .ok(statusFields())
        case .pause:
            return machine.pause() ? .ok([:]) : .failure("cannot pause: the VM is \(machine.state.name)")
        case .resume:
            machine.resume()
            return .ok([:])
        case let .stop(timeout):
            machine.requestShutdown(grace: timeout)
            return .ok([:])
        case .kill:
            machine.end(.killed)
            return .ok([:])
        case .attach:
            return .ok([:])
        case let .snapshot(path, resume):
            return snapshot(to: path, resume: resume)
        case .start, .signal, .exec:
            return .failure("\(request.name) is a container request (svm-runtime); this VM is not a container")
        }
    }

    /// Saves the VM; without `resume` it stays paused and ends once the reply is sent
    /// (`didReply`: status 0, "saved to a snapshot"), never running another instruction
    /// here: it goes on where it is restored.
    func snapshot(to path: String, resume: Bool) -> ControlReply {
        let annotations = SnapshotAnnotations.make(options: options)
        do {
            let summary = try machine.snapshot(to: path, annotations: annotations, resume: resume)
            return .ok(["memory": .int(Int(summary.memorySize)), "memoryData": .int(Int(summary.memoryData)),
                        "seconds": .double(summary.seconds)])
        } catch {
            return .failure("snapshot \(path): \(error)")
        }
    }

    func didReply(to request: ControlRequest, with reply: ControlReply) {
        if case .snapshot(_, resume: false) = request, reply.ok { machine.end(.savedToSnapshot) }
    }

    func attach(connection fd: Int32) {
        if let attached { attached.add(fd) } else { close(fd) }
    }

    func statusFields() -> [String: ControlValue] {
        var fields: [String: ControlValue] = [
            "name": .string(name),
            "state": .string(machine.state.name),
            "pid": .int(Int(getpid())),
            "cpus": .int(options.cpus),
            "memory": .int(Int(options.memory)),
            "kernel": .string(options.firmware ?? options.kernel ?? ""),
            "startedAt": .int(startedAt),
            "uptime": .double(machine.uptime ?? 0),
            "attached": .int(attached?.count ?? 0),
            "shares": .array(zip(options.shares, shareDaemons?.daemons ?? []).map { share, daemon in
                .object(["tag": .string(share.tag), "source": .string(daemon.source), "readOnly": .bool(share.readOnly),
                         "virtiofsd": .string(daemon.isRunning ? "running" : "exited"),
                         "device": .string(machine.sharedFolderHealth(tag: share.tag) ?? "absent")])
            }),
        ]
        if let c = options.commandLine { fields["cmdline"] = .string(c) }
        return fields
    }
}

/// Console output reaches attached clients through this, set once they exist.
private final class FanOut: @unchecked Sendable {
    // Sendable invariant: written once before the VM starts, read by output callbacks after.
    var clients: AttachedClients?
}
