import CKVM
import Glibc

/// Signals svm handles itself. They are blocked in every thread (threads inherit the mask
/// from the thread that creates them) and read synchronously from a signalfd by the thread
/// that supervises the VM, so no async-signal-unsafe code ever runs in a handler.
public enum Signals {
    /// SIGINT/SIGTERM/SIGHUP/SIGQUIT end svm cleanly; SIGPIPE is handled as an EPIPE error.
    public static let terminating: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

    /// Blocks the terminating signals in the calling thread (call before starting threads)
    /// and returns a signalfd that reports them.
    public static func blockTerminatingSignals() throws(HostError) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for s in terminating { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
        let fd = signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        guard fd >= 0 else { throw HostError("signalfd", errno: errno) }
        return fd
    }

    /// Blocks `signals` in the calling thread, and so in threads it starts afterwards: a
    /// signal then reaches only the signalfd that `watch` gives (SIGWINCH for `--tty`).
    public static func block(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// A non-blocking signalfd for `signals` (which must be blocked everywhere).
    public static func watch(_ signals: [Int32]) throws(HostError) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        let fd = signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        guard fd >= 0 else { throw HostError("signalfd", errno: errno) }
        return fd
    }

    /// Installs a handler that does nothing, without SA_RESTART, so that a blocking call in
    /// the thread the signal is sent to returns EINTR (how a vCPU is kicked out of KVM_RUN).
    /// Process-wide: only the program's main code calls this, never a library on its own.
    public static func installNoOpHandler(_ signo: Int32) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(signo, &action, nil)
    }

    /// Reads one pending signal number from a signalfd, or nil.
    public static func readSignal(from fd: Int32) -> Int32? {
        var info = signalfd_siginfo()
        let n = read(fd, &info, MemoryLayout<signalfd_siginfo>.size)
        return n == MemoryLayout<signalfd_siginfo>.size ? Int32(info.ssi_signo) : nil
    }
}
