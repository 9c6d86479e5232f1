import Control
import Glibc
import Host

/// The host process of one exec'd command: the pid `exec --pid-file` names and the
/// engine waits on. It has handed its stdin, stdout and stderr to the container's VM
/// process (which passes them to and from the guest byte for byte); it passes the signals
/// it gets on to the exec'd process and exits with that process's status (128+N for
/// signal N). Without --detach it is `svm-runtime exec` itself; with --detach a child,
/// `svm-runtime [global flags] _exec ID`, started with the connection.
enum ExecHostProcess {
    static let commandName = "_exec"
    static let connectionFDVariable = "SVM_RUNTIME_EXEC_FD"
    /// Passed on to the exec'd process when the engine sends them to this pid.
    static let forwarded: [Int32] = ContainerProcess.forwarded

    /// Sends the `exec` request and, once accepted, this process's fds 0-2 (a closed one
    /// as /dev/null). Returns the connection that then carries signals and the status.
    static func connect(process: ControlValue, socket: String, id: String) throws(RuntimeFailure) -> Int32 {
        let (reply, connection): (ControlReply, Int32?)
        do { (reply, connection) = try ControlClient.send(.exec(process: process), to: socket) } catch {
            throw RuntimeFailure("container \(id): \(error)")
        }
        guard reply.ok, let connection else {
            throw RuntimeFailure("container \(id): \(reply.error ?? "exec refused")", .wrongState)
        }
        for fd: Int32 in 0...2 {
            let closed = fcntl(fd, F_GETFD) < 0
            let handed = closed ? open("/dev/null", O_RDWR | O_CLOEXEC) : fd
            defer { if closed && handed >= 0 { close(handed) } }
            do { try UnixSocket.sendDescriptor(handed, over: connection) } catch {
                close(connection)
                throw RuntimeFailure("exec: hand over fd \(fd): \(error)")
            }
        }
        return connection
    }

    /// Starts the detached host process with the connection; returns its pid.
    static func spawnDetached(connection: Int32, context: RuntimeCommand.Context, id: String) throws(RuntimeFailure) -> pid_t {
        _ = fcntl(connection, F_SETFD, 0) // crosses the exec; everything else of ours is close-on-exec
        var environment = context.environment
        environment[connectionFDVariable] = String(connection)
        let argv = ["svm-runtime"] + context.globalArguments + [commandName, id]
        switch CreateCommand.spawn(executable: "/proc/self/exe", argv: argv, environment: environment) {
        case let .success(pid): return pid
        case let .failure(error): throw RuntimeFailure("start the exec's host process: \(error)")
        }
    }

    /// `_exec ID`: the detached host process.
    static func main(_ global: [String], _ arguments: [String], environment: [String: String]) -> Int32 {
        var log = RuntimeLog()
        let scanned = try? RuntimeCommand.globalScanner.scan(global)
        log.path = scanned?.values["log"]
        log.format = scanned?.values["log-format"].flatMap(RuntimeLog.Format.init(rawValue:)) ?? .text
        guard arguments.count == 1, let fd = environment[connectionFDVariable].flatMap(Int32.init), fcntl(fd, F_GETFD) >= 0 else {
            log.error("\(commandName) is started by svm-runtime exec --detach, not by hand")
            return RuntimeExit.usage.rawValue
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        Signals.block(forwarded) // already blocked by the parent; harmless again
        return relay(fd, log: log)
    }

    /// Passes signals on as `{"signal":N}` lines until the `{"exit":N}` line comes;
    /// returns N. An `"error"` in it (the process did not run, or the VM ended) is the
    /// one line this process prints.
    static func relay(_ connection: Int32, log: RuntimeLog) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let signalFD: Int32
        do { signalFD = try Signals.watch(forwarded) } catch {
            log.error("exec: \(error)")
            _ = writeLine(["signal": .int(Int(SIGKILL))], to: connection)
            return 125
        }
        var fds = [pollfd(fd: connection, events: Int16(POLLIN), revents: 0), pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
        while true {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                log.error("exec: \(HostError("poll", errno: errno))")
                return 125
            }
            if fds[1].revents != 0, let signo = Signals.readSignal(from: signalFD) {
                _ = writeLine(["signal": .int(Int(signo))], to: connection)
            }
            guard fds[0].revents != 0 else { continue }
            guard case let .line(bytes) = ControlLineReader.readLine(connection, limit: ControlRequest.maximumLineLength),
                  let reply = try? JSONParser.parse(bytes), let status = reply["exit"]?.int else {
                log.error("exec: the container's VM process went away before the process ended")
                return 137
            }
            if let message = reply["error"]?.string { log.error("exec: \(message)") }
            return Int32(truncatingIfNeeded: status)
        }
    }

    private static func writeLine(_ object: [String: ControlValue], to fd: Int32) -> Bool {
        let line = JSONText.encode(.object(object)) + [0x0A]
        return line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == line.count
    }
}
