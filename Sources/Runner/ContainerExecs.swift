import Glibc
import Host
import Sandbox
import Synchronization
import Virtio

/// How an exec'd process ended, as the exec's host process reports it.
public enum ExecOutcome: Equatable, Sendable {
    case ended(ExitStatus)
    /// The guest could not start it (the init's message, e.g. "execve x: No such file or directory").
    case notStarted(String)
    /// The container's VM ended first (or the guest broke the protocol).
    case vmEnded(String)

    /// As a shell reports it: the status, 128 + N for signal N; 127 when the command was
    /// not found, 126 when it could not be run, 125 when svm failed, 137 when the VM ended
    /// (everything in it was killed).
    public var status: Int32 {
        switch self {
        case let .ended(.exited(n)): return n & 0xff
        case let .ended(.signalled(s)): return 128 + s
        case let .notStarted(why):
            if why.hasPrefix("execve") { return why.contains("No such file") ? 127 : 126 }
            return why.hasPrefix("chdir") || why.hasPrefix("set") || why.hasPrefix("cap") ? 126 : 125
        case .vmEnded: return 137
        }
    }

    public var message: String? {
        switch self {
        case .ended: nil
        case let .notStarted(why): why
        case let .vmEnded(why): why
        }
    }
}

/// The processes `svm-runtime exec` runs in a started container: each gets an id, a `P`
/// frame, its stdin as `i`/`e` frames (read from the descriptor its host process handed
/// over, on a thread of its own), its output written to the handed-over stdout/stderr as
/// `o` frames arrive, and its end (`x` or `f`) reported once through `onEnd`. All end
/// when the VM does. At most `maximum` at once.
public final class ContainerExecs: @unchecked Sendable {
    // Sendable invariant: the table is behind `state`; console and events are thread-safe.
    public static let maximum = 64

    /// The descriptors an exec's host process handed over; closed here when it ends.
    public struct Streams: Sendable {
        public var stdin: Int32
        public var stdout: Int32
        public var stderr: Int32
        public init(stdin: Int32, stdout: Int32, stderr: Int32) {
            self.stdin = stdin
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    private struct Exec {
        var streams: Streams
        var onEnd: @Sendable (ExecOutcome) -> Void
        var stop: EventFD
        /// The stdin thread owns (and closes) the stdin descriptor; decided before it starts,
        /// so an exec that ends at once never closes it twice.
        var stdinByThread: Bool
        var stdinThread: HostThread?
    }

    private struct State {
        var nextID: UInt32 = 1
        var table: [UInt32: Exec] = [:]
        var ended: String?
        /// Stdin threads of ended execs, joined later from a thread that may block.
        var finished: [HostThread] = []
    }

    private let state = Mutex(State())
    private let sender: ExecFrameSender

    /// - Parameter started: signalled once the start frame went to the guest: nothing of
    ///   an exec may precede it (the init skips every frame until `G`).
    init(started: EventFD) {
        sender = ExecFrameSender(started: started)
    }

    /// The control console (hvc2), once the machine exists; before any exec can start.
    func connect(console: VirtioConsole) { sender.console = console }

    public var count: Int { state.withLock { $0.table.count } }

    /// Starts `process` (its id is chosen here) with `streams`; `onEnd` runs once, on
    /// another thread, after its output has been written. Refused with a reason when the
    /// VM has ended or `maximum` execs are running; the streams are then the caller's.
    public func start(_ process: ExecProcess, streams: Streams,
                      onEnd: @escaping @Sendable (ExecOutcome) -> Void) -> Result<UInt32, RunError> {
        joinFinished()
        let stop: EventFD
        do { stop = try EventFD() } catch { return .failure(RunError("exec: \(error)")) }
        var process = process
        process.hasStdin = StdinForwarder.shouldForward(fd: streams.stdin, tty: false)
        let admitted = state.withLock { s -> Result<UInt32, RunError> in
            if let why = s.ended { return .failure(RunError("the container's VM has ended (\(why))")) }
            guard s.table.count < Self.maximum else {
                return .failure(RunError("too many processes started by exec (\(Self.maximum) at once)"))
            }
            while s.table[s.nextID] != nil || s.nextID == 0 { s.nextID &+= 1 }
            let id = s.nextID
            s.nextID &+= 1
            s.table[id] = Exec(streams: streams, onEnd: onEnd, stop: stop, stdinByThread: process.hasStdin)
            return .success(id)
        }
        guard case let .success(id) = admitted else { return admitted }
        process.id = id
        sender.send(HostFrame.execStart(process).encoded(), orStop: stop)
        guard process.hasStdin else { return .success(id) }
        let (input, sender) = (streams.stdin, sender)
        let thread = HostThread(name: "svm-exec-stdin") {
            Self.forwardStdin(from: input, id: id, sender: sender, stop: stop)
        }
        do {
            try thread.start()
            state.withLock { s in
                if s.table[id] != nil { s.table[id]?.stdinThread = thread } else { s.finished.append(thread) }
            }
        } catch {
            close(input)
            sender.send(HostFrame.execStdinEOF(id: id).encoded(), orStop: stop)
        }
        return .success(id)
    }

    /// Delivers a signal to exec `id` (nothing if it has ended).
    public func signal(_ id: UInt32, _ number: Int32) {
        guard let stop = state.withLock({ $0.table[id]?.stop }) else { return }
        sender.send(HostFrame.execSignal(id: id, number).encoded(), orStop: stop)
    }

    /// The guest's exec frames, in order, from the control console's thread.
    func receive(_ frame: GuestFrame) {
        switch frame {
        case let .execOutput(id, stream, bytes):
            guard let streams = state.withLock({ $0.table[id]?.streams }) else { return }
            writeAll(bytes, to: stream == .stdout ? streams.stdout : streams.stderr)
        case let .execExit(id, status):
            finish(id, .ended(status))
        case let .execFailure(id, message):
            finish(id, .notStarted(message))
        default:
            break
        }
    }

    /// The VM ended (or its control channel broke): every exec ends with `reason`, and
    /// later requests are refused.
    public func endAll(_ reason: String) {
        let ids = state.withLock { s -> [UInt32] in
            if s.ended == nil { s.ended = reason }
            return Array(s.table.keys)
        }
        sender.end()
        for id in ids { finish(id, .vmEnded(reason)) }
        joinFinished()
    }

    private func finish(_ id: UInt32, _ outcome: ExecOutcome) {
        guard let exec = state.withLock({ s -> Exec? in
            guard let e = s.table.removeValue(forKey: id) else { return nil }
            if let t = e.stdinThread { s.finished.append(t) }
            return e
        }) else { return }
        exec.stop.signal()
        // stdout/stderr closed before the status goes out: the caller's readers see end
        // of file by the time its host process exits. stdin is closed by its thread.
        close(exec.streams.stdout)
        close(exec.streams.stderr)
        if !exec.stdinByThread { close(exec.streams.stdin) }
        exec.onEnd(outcome)
    }

    private func joinFinished() {
        let threads = state.withLock { s -> [HostThread] in
            let t = s.finished
            s.finished = []
            return t
        }
        for t in threads { t.join() }
    }

    private static func forwardStdin(from fd: Int32, id: UInt32, sender: ExecFrameSender, stop: EventFD) {
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: ExecProcess.maximumStdinChunk)
        while Readiness.waitReadable(fd, orStop: stop) {
            let got = buffer.withUnsafeMutableBytes { b in Result { () throws(HostError) in try FileIO.readSome(fd, into: b, what: "read exec stdin") } }
            guard case let .success(count) = got, count != 0 else { break }
            guard let n = count else { continue }
            guard sender.send(HostFrame.execStdin(id: id, Array(buffer[0..<n])).encoded(), orStop: stop) else { return }
        }
        sender.send(HostFrame.execStdinEOF(id: id).encoded(), orStop: stop)
    }
}

/// Puts exec frames on the control console without ever overfilling it (the console drops
/// what does not fit, which would cut a frame): one sender at a time, and each waits until
/// the frame fits below the limit less a reserve for the container's own stdin forwarder
/// and command frames, which check for room without this lock.
final class ExecFrameSender: @unchecked Sendable {
    // Sendable invariant: `lock` serialises the senders; the console is thread-safe and
    // set once, before the session can start an exec.
    var console: VirtioConsole?
    private let started: EventFD
    private let lock = Mutex(())
    private let ended = Atomic<Bool>(false)
    static let reserve = StdinForwarder.chunkSize + 1024

    init(started: EventFD) {
        self.started = started
    }

    /// False when stopped (by `orStop` or the end of the VM) before the frame went out.
    @discardableResult
    func send(_ frame: [UInt8], orStop stop: EventFD) -> Bool {
        guard let console, Readiness.waitReadable(started.fd, orStop: stop) else { return false }
        return lock.withLock { _ in
            // Polled, not waited on `inputTaken`: the stdin forwarder drains that event.
            while console.pendingInputBytes + frame.count > VirtioConsole.inputBufferLimit - Self.reserve {
                if ended.load(ordering: .relaxed) || Self.isSignalled(stop) { return false }
                usleep(2_000)
            }
            if ended.load(ordering: .relaxed) { return false }
            console.receive(frame)
            return true
        }
    }

    func end() { ended.store(true, ordering: .relaxed) }

    private static func isSignalled(_ event: EventFD) -> Bool {
        var p = pollfd(fd: event.fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) > 0
    }
}
