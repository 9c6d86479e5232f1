import Control
import Glibc
import Host
import OCI
import Runner
import Sandbox
import Synchronization

/// The VM process's side of `exec` (the host process's side is ExecHostProcess): an
/// `exec` request is checked and answered; the connection is then handed over and served
/// on a thread of its own for the exec's life (so execs never hold the control socket's
/// connection slots): three descriptors arrive with SCM_RIGHTS, the process starts,
/// `{"signal":N}` lines are passed on, and one `{"exit":N}` line ends it. A host process
/// that goes away (its connection closes) takes its exec'd process with it (SIGKILL).
extension ContainerHandler {
    func acceptExec(_ process: ControlValue) -> ControlReply {
        switch session.currentPhase {
        case .created: return .failure("cannot exec in a container that is created: start it first")
        case .stopped: return .failure("cannot exec in a container that has stopped")
        case .running: break
        }
        do { _ = try ExecSpec.request(for: try ExecSpec.decodeProcess(process)) } catch { return .failure("\(error)") }
        guard let execs = session.execs else { return .failure("the container's VM never started") }
        guard execs.count < ContainerExecs.maximum else {
            return .failure("too many processes started by exec (\(ContainerExecs.maximum) at once)")
        }
        return .ok()
    }

    func takeOver(connection fd: Int32, after request: ControlRequest) {
        guard case let .exec(process) = request else {
            if request == .attach { attach(connection: fd) } else { close(fd) }
            return
        }
        let session = self.session
        let thread = HostThread(name: "svm-exec-conn") { ExecConnection.serve(fd, process: process, session: session) }
        do { try thread.start() } catch {
            ExecConnection.reply(to: fd, .notStarted("\(error)"))
            close(fd)
        }
    }
}

enum ExecConnection {
    /// How long the host process may take to send its descriptors after the ok reply.
    static let handOverTimeout = 5.0

    static func serve(_ fd: Int32, process value: ControlValue, session: ContainerSession) {
        defer { close(fd) }
        UnixSocket.setTimeout(fd, seconds: handOverTimeout)
        var received: [Int32] = []
        for _ in 0..<3 {
            guard let d = try? UnixSocket.receiveDescriptor(over: fd) else { break }
            received.append(d)
        }
        UnixSocket.setTimeout(fd, seconds: 0)
        guard received.count == 3 else {
            for d in received { close(d) }
            reply(to: fd, .notStarted("exec: the host process did not hand over its stdin, stdout and stderr"))
            return
        }
        let streams = ContainerExecs.Streams(stdin: received[0], stdout: received[1], stderr: received[2])
        func refuse(_ why: String) {
            for d in received { close(d) }
            reply(to: fd, .notStarted(why))
        }
        let request: ExecProcess
        do { request = try ExecSpec.request(for: try ExecSpec.decodeProcess(value)) } catch { return refuse("\(error)") }
        guard let execs = session.execs, let ended = try? EventFD() else { return refuse("the container's VM never started") }
        let outcome = Mutex<ExecOutcome?>(nil)
        let started = execs.start(request, streams: streams) { result in
            outcome.withLock { $0 = result }
            ended.signal()
        }
        guard case let .success(id) = started else {
            if case let .failure(error) = started { refuse(error.description) }
            return
        }
        // Signal lines until the exec ends; a closed connection kills the exec'd process.
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: ended.fd, events: Int16(POLLIN), revents: 0)]
        while outcome.withLock({ $0 }) == nil {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            guard fds[0].revents != 0 else { continue }
            switch ControlLineReader.readLine(fd, limit: 256) {
            case let .line(bytes):
                if let n = (try? JSONParser.parse(bytes))?["signal"]?.int, (1...64).contains(n) { execs.signal(id, Int32(n)) }
            case .closed, .tooLong:
                execs.signal(id, SIGKILL)
                fds[0].fd = -1
            }
        }
        if let result = outcome.withLock({ $0 }) { reply(to: fd, result) }
    }

    /// The last line: `{"exit":N}`, with `"error"` when the process did not run to its end.
    static func reply(to fd: Int32, _ outcome: ExecOutcome) {
        var object: [String: ControlValue] = ["exit": .int(Int(outcome.status))]
        if let message = outcome.message { object["error"] = .string(message) }
        let line = JSONText.encode(.object(object)) + [0x0A]
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}
