import Glibc

/// Puts a terminal into raw mode and restores the saved settings exactly once, however
/// svm ends (normal return, error, signal). The saved state is also registered with
/// `atexit` so that an `exit()` from anywhere still gives the user their terminal back.
public final class TerminalMode: @unchecked Sendable {
    public let fd: Int32
    private var saved: termios
    private var restored = false

    /// Returns nil when `fd` is not a terminal (pipes, files, CI): then bytes pass through.
    public init?(fd: Int32) {
        guard isatty(fd) == 1 else { return nil }
        var t = termios()
        guard tcgetattr(fd, &t) == 0 else { return nil }
        self.fd = fd
        self.saved = t
    }

    /// Raw input (no echo, no line editing, no signals from ^C/^Z: they go to the guest),
    /// output untouched except post-processing off, since the guest sends its own CR LF.
    public func enterRaw() {
        var raw = saved
        cfmakeraw(&raw)
        // Keep reads blocking for one byte at a time.
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        _ = tcsetattr(fd, TCSANOW, &raw)
        TerminalMode.active = self
        atexit { TerminalMode.active?.restore() }
    }

    public func restore() {
        guard !restored else { return }
        restored = true
        var t = saved
        _ = tcsetattr(fd, TCSANOW, &t)
    }

    nonisolated(unsafe) static var active: TerminalMode?
}
