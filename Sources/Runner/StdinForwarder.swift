import Glibc
import Host
import Sandbox
import Virtio

/// Forwards svm's stdin to the program: once the init is ready, reads fd 0 and sends
/// `I` frames on the control console, then `E` at end of file (or on a read error).
/// With a terminal (`--tty`), the bytes go as they are to the console that is the
/// program's terminal (hvc0), where the guest's line discipline handles them (echo, ^C);
/// a terminal has no end of file to pass on, so the end of stdin only ends the forwarding.
/// In terminal mode `onReady` runs when the guest is ready (svm makes the terminal raw
/// then: until that moment ^C is still a signal to svm, so a boot can be interrupted),
/// and Ctrl-A x calls `onEscape` (svm stops the VM as for ^C: exit 130), since in raw
/// mode every other key, ^C included, belongs to the program. Ctrl-A Ctrl-A sends one Ctrl-A.
/// The console holds at most `VirtioConsole.inputBufferLimit` bytes for the guest, so the
/// forwarder waits for room instead of letting it drop any: a program that reads slowly
/// slows the reading of stdin, nothing is lost.
final class StdinForwarder: @unchecked Sendable {
    enum Mode {
        /// `I`/`E` frames on the control console.
        case frames
        /// Raw bytes on the program's terminal console, with svm's Ctrl-A keys.
        case terminal
        /// Raw bytes on the program's terminal console, every byte the program's (a
        /// container's terminal: the engine has its own detach keys).
        case passthrough
    }

    /// Whether svm's stdin should be forwarded at all: not when it is closed, and not
    /// from a terminal unless the program has one too (a terminal with stdout redirected:
    /// reading it would take keys the user meant for the shell afterwards).
    static func shouldForward(fd: Int32, tty: Bool) -> Bool {
        guard fcntl(fd, F_GETFL) >= 0 else { return false }
        return tty || isatty(fd) == 0
    }

    static let chunkSize = 32 << 10

    private let fd: Int32
    private let console: VirtioConsole
    private let ready: EventFD
    private let stopEvent: EventFD
    private let thread: HostThread

    init(fd: Int32, console: VirtioConsole, ready: EventFD, mode: Mode = .frames,
         onReady: @escaping @Sendable () -> Void = {}, onEscape: @escaping @Sendable () -> Void = {}) throws(RunError) {
        self.fd = fd
        self.console = console
        self.ready = ready
        do { stopEvent = try EventFD() } catch { throw RunError("\(error)") }
        let (fd, console, ready, stop) = (fd, console, ready, stopEvent)
        thread = HostThread(name: "svm-stdin") {
            StdinForwarder.loop(fd: fd, console: console, ready: ready, stop: stop, mode: mode,
                                onReady: onReady, onEscape: onEscape)
        }
        do { try thread.start() } catch { throw RunError("\(error)") }
    }

    /// Ends the thread (wherever it is waiting) and joins it.
    func stop() {
        stopEvent.signal()
        thread.join()
    }

    private static func loop(fd: Int32, console: VirtioConsole, ready: EventFD, stop: EventFD, mode: Mode,
                             onReady: () -> Void, onEscape: () -> Void) {
        // Nothing before the init's R frame: until then the guest's hvc2 may still echo.
        guard Readiness.waitReadable(ready.fd, orStop: stop) else { return }
        onReady()
        var escape = ConsoleEscape()
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while true {
            guard Readiness.waitReadable(fd, orStop: stop) else { return }
            // nil: a non-blocking stdin with nothing after all; an error ends stdin like EOF.
            let got = buffer.withUnsafeMutableBytes { b in Result { () throws(HostError) in try FileIO.readSome(fd, into: b, what: "read stdin") } }
            guard case let .success(count) = got else {
                if mode == .frames { send(HostFrame.stdinEOF.encoded(), to: console, stop: stop) }
                return
            }
            guard let n = count else { continue }
            if n == 0 {
                if mode == .frames { send(HostFrame.stdinEOF.encoded(), to: console, stop: stop) }
                return
            }
            var data = Array(buffer[0..<n])
            if mode == .terminal {
                switch escape.feed(data) {
                case let .forward(bytes):
                    data = bytes
                case let .quit(forwardFirst), let .detach(forwardFirst):
                    if !forwardFirst.isEmpty { send(forwardFirst, to: console, stop: stop) }
                    onEscape()
                    return
                }
                if data.isEmpty { continue }
            }
            guard send(mode == .frames ? HostFrame.stdin(data).encoded() : data, to: console, stop: stop) else { return }
        }
    }

    /// Waits until the console has room for `frame`, then hands it over; false if stopped.
    @discardableResult
    private static func send(_ frame: [UInt8], to console: VirtioConsole, stop: EventFD) -> Bool {
        while console.pendingInputBytes + frame.count > VirtioConsole.inputBufferLimit {
            // Sleep until the guest takes input (or we are stopped); no polling interval.
            guard let taken = console.inputTaken else { return false }
            guard Readiness.waitReadable(taken.fd, orStop: stop) else { return false }
            taken.drain()
        }
        console.receive(frame)
        return true
    }
}
