import Glibc

/// Waiting for one descriptor with a way to be called off, for threads that forward a
/// stream (stdin to the guest, window sizes) and must end promptly when the VM does.
public enum Readiness {
    /// Waits until `fd` is readable (or hung up); false when `stop` is signalled first.
    public static func waitReadable(_ fd: Int32, orStop stop: EventFD) -> Bool {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stop.fd, events: Int16(POLLIN), revents: 0)]
        while true {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                return false
            }
            if fds[1].revents != 0 { return false }
            if fds[0].revents != 0 { return true }
        }
    }
}
