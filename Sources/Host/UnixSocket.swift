import CKVM
import Glibc

/// Unix stream sockets: a listener at a path (mode 0600), connections, the peer's
/// credentials (SO_PEERCRED), and descriptors passed with SCM_RIGHTS.
public enum UnixSocket {
    /// The longest path a sockaddr_un holds (107 bytes and the NUL).
    public static let maximumPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    static func address(_ path: String) throws(HostError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumPathLength else {
            throw HostError("socket path \(path) (longer than \(maximumPathLength) bytes)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return addr
    }

    /// Calls `body` with an address that reaches `path` even when the path is longer than
    /// a sockaddr_un holds: then through the directory opened (O_DIRECTORY) as
    /// `/proc/self/fd/N/NAME`, which bind and connect resolve like any path. Engines'
    /// state directories are that long: containerd's shim passes
    /// `--root /run/docker/runtime-runc/moby`, and IDs are 64 characters.
    static func withAddress<T>(_ path: String, _ body: (inout sockaddr_un) -> T) throws(HostError) -> T {
        if path.utf8.count <= maximumPathLength {
            var addr = try address(path)
            return body(&addr)
        }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw .last("open \(directory) for the socket \(name)") }
        defer { close(dirFD) }
        var addr = try address("/proc/self/fd/\(dirFD)/\(name)")
        return body(&addr)
    }

    /// Listens at `path`, which must not exist or be a socket nobody answers on (a stale
    /// one is removed); the socket file is 0600 before anyone can connect.
    public static func listen(path: String, backlog: Int32 = 16) throws(HostError) -> Int32 {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw HostError("listen on \(path) (exists and is not a socket)", errno: EEXIST) }
            if let fd = try? connect(path: path) {
                close(fd)
                throw HostError("listen on \(path) (another process answers there)", errno: EADDRINUSE)
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .last("socket") }
        // Bind under a umask that leaves only the owner's bits, then fix the mode exactly.
        let old = umask(0o177)
        let bound: Int32
        do {
            bound = try withAddress(path) { addr in
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
        } catch {
            umask(old)
            close(fd)
            throw error
        }
        umask(old)
        guard bound == 0 else {
            let e = HostError.last("bind \(path)")
            close(fd)
            throw e
        }
        guard chmod(path, 0o600) == 0, Glibc.listen(fd, backlog) == 0 else {
            let e = HostError.last("listen on \(path)")
            close(fd)
            unlink(path)
            throw e
        }
        return fd
    }

    public static func connect(path: String) throws(HostError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .last("socket") }
        let r: Int32
        do {
            r = try withAddress(path) { addr in
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
        } catch {
            close(fd)
            throw error
        }
        guard r == 0 else {
            let e = HostError.last("connect to \(path)")
            close(fd)
            throw e
        }
        return fd
    }

    /// Accepts one connection (close-on-exec); nil when none is waiting on a non-blocking listener.
    public static func accept(_ listener: Int32) throws(HostError) -> Int32? {
        while true {
            let fd = ckvm_accept_cloexec(listener)
            if fd >= 0 { return fd }
            if errno == EINTR || errno == ECONNABORTED { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
            throw .last("accept")
        }
    }

    public struct Credentials: Equatable, Sendable {
        public let pid: pid_t
        public let uid: uid_t
        public let gid: gid_t
    }

    /// Who is at the other end, as the kernel recorded it at connect time.
    public static func peerCredentials(_ fd: Int32) throws(HostError) -> Credentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        guard ckvm_peer_credentials(fd, &pid, &uid, &gid) == 0 else { throw .last("getsockopt SO_PEERCRED") }
        return Credentials(pid: pid, uid: uid, gid: gid)
    }

    /// Bounds how long reads and writes on `fd` may block.
    public static func setTimeout(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends `descriptor` with one byte of data (SCM_RIGHTS).
    public static func sendDescriptor(_ descriptor: Int32, over fd: Int32) throws(HostError) {
        guard ckvm_send_fd(fd, descriptor) == 0 else { throw .last("sendmsg SCM_RIGHTS") }
    }

    /// Receives one descriptor sent with SCM_RIGHTS (close-on-exec).
    public static func receiveDescriptor(over fd: Int32) throws(HostError) -> Int32 {
        let r = ckvm_recv_fd(fd)
        guard r >= 0 else { throw .last("recvmsg SCM_RIGHTS") }
        return r
    }
}
