import Glibc
import Host

/// Reads the user's input (stdin) on its own thread and hands it to the serial port.
/// On a terminal it watches for Ctrl-A x; on a pipe it passes bytes through unchanged.
final class ConsoleInput: @unchecked Sendable {
    let fd: Int32
    let wake: EventFD
    let thread: HostThread

    init(fd: Int32, wake: EventFD, thread: HostThread) {
        self.fd = fd
        self.wake = wake
        self.thread = thread
    }

    func stop() {
        wake.signal()
        thread.join()
    }
}

extension Machine {
    func startConsoleInput() -> ConsoleInput? {
        guard let fd = config.consoleInputFD, let wake = try? EventFD() else { return nil }
        let interactive = isatty(fd) == 1
        let toVirtio = config.inputToVirtioConsole ? virtio.consoles.first : nil
        let deliver: @Sendable ([UInt8]) -> Void = { [serial] bytes in
            if let console = toVirtio { console.receive(bytes) } else { serial.receive(bytes) }
        }
        let thread = HostThread(name: "svm-console-in") { [self] in
            var escape = ConsoleEscape()
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
            var buffer = [UInt8](repeating: 0, count: 4096)
            var inputOpen = true
            while !isStopping {
                fds[0].fd = inputOpen ? fd : -1
                let r = poll(&fds, 2, -1)
                if r < 0 { if errno == EINTR { continue } else { return } }
                if fds[1].revents != 0 { return }
                guard inputOpen, fds[0].revents != 0 else { continue }
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 { inputOpen = false; continue }  // EOF: the guest keeps running
                let bytes = Array(buffer[0..<n])
                if interactive {
                    switch escape.feed(bytes) {
                    case let .forward(out):
                        if !out.isEmpty { deliver(out) }
                    case let .quit(first):
                        if !first.isEmpty { deliver(first) }
                        stop(.userQuit)
                        return
                    }
                } else {
                    deliver(bytes)
                }
            }
        }
        do { try thread.start() } catch { return nil }
        return ConsoleInput(fd: fd, wake: wake, thread: thread)
    }
}
