import CKVM
import Glibc

/// A host pseudo-terminal pair: the master for whoever shows the terminal to the user
/// (a container engine's console socket), the replica for the side that speaks for the
/// program (svm-runtime bridges it to the guest's terminal).
public struct PseudoTerminal: Sendable {
    public let master: Int32
    public let replica: Int32
    /// The replica's path (/dev/pts/N): runc sends it as the console socket's message.
    public let replicaPath: String

    /// Opens a pair, both ends close-on-exec; the replica is raw (the guest's terminal
    /// does echo, line editing and signals: the host's must pass bytes unchanged) and has
    /// `size` when given.
    public static func open(size: (rows: UInt16, columns: UInt16)? = nil) throws(HostError) -> PseudoTerminal {
        var name = [CChar](repeating: 0, count: 128)
        var replica: Int32 = -1
        let master = ckvm_open_pty(&replica, &name, name.count)
        guard master >= 0 else { throw .last("open a pseudo-terminal (/dev/ptmx)") }
        let path = String(cString: name)
        var t = termios()
        if tcgetattr(replica, &t) == 0 {
            cfmakeraw(&t)
            _ = tcsetattr(replica, TCSANOW, &t)
        }
        if let size, size.rows > 0 || size.columns > 0 {
            var ws = winsize(ws_row: size.rows, ws_col: size.columns, ws_xpixel: 0, ws_ypixel: 0)
            _ = ckvm_ioctl_ptr(master, UInt(TIOCSWINSZ), &ws)
        }
        return PseudoTerminal(master: master, replica: replica, replicaPath: path)
    }

    /// Sends the master over the Unix socket at `socketPath` as runc does (SCM_RIGHTS,
    /// the replica's path as the message), then closes our copy of it.
    public func sendMaster(to socketPath: String) throws(HostError) {
        defer { close(master) }
        let fd = try UnixSocket.connect(path: socketPath)
        defer { close(fd) }
        let message = Array(replicaPath.utf8)
        var descriptor = master
        let sent = message.withUnsafeBytes { bytes in ckvm_send_with_fds(fd, bytes.baseAddress, bytes.count, &descriptor, 1) }
        guard sent >= 0 else { throw .last("sendmsg SCM_RIGHTS to console socket \(socketPath)") }
    }
}
