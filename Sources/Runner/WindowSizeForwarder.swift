import Glibc
import Host
import Sandbox
import Virtio

/// With a terminal (`--tty`): when svm's terminal is resized (SIGWINCH), sends its new size
/// as a `W` frame, and the init sets it on the guest terminal (the program gets SIGWINCH).
/// SIGWINCH must be blocked in every thread first (`blockSignal`), so that only this
/// thread's signalfd sees it.
final class WindowSizeForwarder: @unchecked Sendable {
    private let signalFD: Int32
    private let stopEvent: EventFD
    private let thread: HostThread

    /// Call before any thread is started: threads inherit the mask.
    static func blockSignal() {
        Signals.block([SIGWINCH])
    }

    /// - Parameter terminalFD: the terminal whose size is sent.
    init(terminalFD: Int32, console: VirtioConsole, ready: EventFD) throws(RunError) {
        do { signalFD = try Signals.watch([SIGWINCH]) } catch { throw RunError("SIGWINCH: \(error)") }
        do { stopEvent = try EventFD() } catch {
            close(signalFD)
            throw RunError("\(error)")
        }
        let (fd, stop, signals) = (terminalFD, stopEvent, signalFD)
        thread = HostThread(name: "svm-winsize") {
            // Nothing before the init's R frame: until then hvc2 may still echo.
            guard Readiness.waitReadable(ready.fd, orStop: stop) else { return }
            while Readiness.waitReadable(signals, orStop: stop) {
                while Signals.readSignal(from: signals) != nil {}
                if let size = TerminalSize.of(fd: fd) {
                    console.receive(HostFrame.windowSize(rows: size.rows, columns: size.columns).encoded())
                }
            }
        }
        do { try thread.start() } catch { throw RunError("\(error)") }
    }

    func stop() {
        stopEvent.signal()
        thread.join()
        close(signalFD)
    }
}
