import CKVM
import Glibc
import Host

/// One virtiofsd serving one shared folder: QEMU's C virtiofsd from Debian's
/// qemu-system-common, run with its namespace sandbox (it pivots into the shared
/// directory, in its own mount, pid and network namespaces). A read-only share is a
/// read-only bind mount in a mount namespace made for the daemon before it starts, so the
/// host refuses writes whatever the guest's mount flags say.
///
/// The daemon dies with svm on every way out: `stop()` on a normal end, PR_SET_PDEATHSIG
/// when svm is killed (see `ckvm_spawn_daemon`), and it leaves by itself when the
/// vhost-user connection closes.
public final class Virtiofsd: @unchecked Sendable {
    public static let defaultPath = "/usr/lib/qemu/virtiofsd"
    public static let package = "qemu-system-common"

    public let tag: String
    public let source: String
    public let readOnly: Bool
    public let socketPath: String
    public let logPath: String
    public private(set) var pid: pid_t

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case missing(String)
        case notADirectory(String, HostError)
        case needsRoot
        case spawn(HostError)
        case exited(status: Int32, lastLine: String)
        case noSocket(seconds: Double)
        public var description: String {
            switch self {
            case let .missing(path): "\(path) not found: virtiofsd is in Debian's \(Virtiofsd.package) package (apt-get install \(Virtiofsd.package))"
            // The caller names the path (svm: "--share PATH:TAG: …").
            case let .notADirectory(_, e): e.errno == ENOTDIR ? "not a directory" : "\(e)"
            case .needsRoot: "shared folders need root: virtiofsd's sandbox makes namespaces and bind mounts"
            case let .spawn(e): "starting virtiofsd: \(e)"
            case let .exited(status, line): "virtiofsd exited (status \(status))\(line.isEmpty ? "" : ": \(line)")"
            case let .noSocket(s): "virtiofsd did not open its socket within \(s) s"
            }
        }
    }

    /// Starts the daemon for `source` with its socket and log in `directory` and waits
    /// (up to `timeout` seconds) until it accepts connections.
    /// Files are named by `index` (the share's place on the command line), not by tag: a
    /// Unix socket path holds at most 107 bytes, and tags may be 36 bytes of anything.
    public init(index: Int, tag: String, source: String, readOnly: Bool, directory: String, executable: String = Virtiofsd.defaultPath,
                timeout: Double = 10) throws(Failure) {
        guard access(executable, X_OK) == 0 else { throw .missing(executable) }
        guard geteuid() == 0 else { throw .needsRoot }
        var st = stat()
        guard stat(source, &st) == 0 else { throw .notADirectory(source, .last("stat")) }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .notADirectory(source, HostError("stat", errno: ENOTDIR)) }
        // Resolved, so the bind mount and virtiofsd see the directory the user meant even
        // if a component is a symlink someone swaps later.
        guard let resolved = realpath(source, nil) else { throw .notADirectory(source, .last("realpath")) }
        self.source = String(cString: resolved)
        free(resolved)
        self.tag = tag
        self.readOnly = readOnly
        let name = Self.filePrefix + String(index)
        socketPath = directory + "/" + name + ".sock"
        logPath = directory + "/" + name + ".log"
        unlink(socketPath)
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw .spawn(.last("open \(logPath)")) }
        defer { close(log) }
        let arguments = [executable, "--socket-path=\(Self.socketArgument(directory: directory, name: name + ".sock"))",
                         "-o", "source=\(self.source)",
                         "-o", "sandbox=namespace", "-o", "cache=auto", "-o", "no_posix_lock", "-o", "no_xattr",
                         // Even a guest's root makes no device nodes and sets no file
                         // capabilities on the host (docs/security.md).
                         "-o", "modcaps=-mknod:-setfcap"]
        // virtiofsd's sandbox forks its server into a new pid namespace; when svm ends the
        // first process, that child would be re-parented to the host's init. As a
        // subreaper svm gets it instead and `reapOrphans` waits for it, so no virtiofsd
        // is still running when svm exits.
        _ = ckvm_become_subreaper()
        pid = Self.spawn(executable, arguments, log: log, readOnlySource: readOnly ? self.source : nil, workdir: directory)
        guard pid > 0 else { throw .spawn(.last("fork")) }
        do { try waitForSocket(timeout: timeout) } catch {
            stop()
            throw error
        }
    }

    /// The socket path virtiofsd is given. The absolute path when it fits a sockaddr_un
    /// (107 bytes). An engine's state directory can be longer (containerd's shim: 64-character
    /// IDs under `--root /run/docker/runtime-runc/moby`): then a path relative to the daemon's
    /// working directory (the state directory) that still names that directory
    /// (`../ID/virtiofsd-0.sock`), because virtiofsd derives the pid file it locks from the
    /// path's text (`/run/virtiofsd/<path with / as .>.pid`): a bare `virtiofsd-0.sock`
    /// would be the same lock for every VM's first share, and a second VM's virtiofsd would
    /// refuse to start ("Cannot lock pid file"). svm connects through UnixSocket, which
    /// handles long paths itself.
    static func socketArgument(directory: String, name: String) -> String {
        let absolute = directory + "/" + name
        if absolute.utf8.count <= 107 { return absolute }
        let last = directory.split(separator: "/").last.map(String.init) ?? ""
        let relative = "../" + last + "/" + name
        // A last component too long even so: the bare name (its lock is then shared).
        return relative.utf8.count <= 107 ? relative : name
    }

    /// What the state directory's cleanup looks for (Control's `VMClaim.shareFilePrefix`).
    public static let filePrefix = "virtiofsd-"

    private static func spawn(_ path: String, _ arguments: [String], log: Int32, readOnlySource: String?, workdir: String) -> pid_t {
        // The argv is built before fork: the child only calls async-signal-safe functions.
        var cArguments = arguments.map { strdup($0) } + [nil]
        defer { for p in cArguments { free(p) } }
        return cArguments.withUnsafeMutableBufferPointer { argv in
            workdir.withCString { dir in
                if let readOnlySource {
                    return readOnlySource.withCString { ckvm_spawn_daemon(path, argv.baseAddress, log, $0, dir) }
                }
                return ckvm_spawn_daemon(path, argv.baseAddress, log, nil, dir)
            }
        }
    }

    private func waitForSocket(timeout: Double) throws(Failure) {
        let deadline = MonotonicClock.now() + timeout
        while MonotonicClock.now() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw .exited(status: (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), lastLine: lastLogLine())
            }
            if access(socketPath, F_OK) == 0 { return }
            usleep(10_000)
        }
        throw .noSocket(seconds: timeout)
    }

    /// virtiofsd's last line of output, for the one line svm prints when it fails.
    public func lastLogLine() -> String {
        guard let bytes = try? FileIO.readFile(logPath, limit: 64 << 10) else { return "" }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        return lines.last.map(String.init) ?? ""
    }

    /// True while the daemon runs (reaps it when it has exited).
    public var isRunning: Bool {
        guard pid > 0 else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { pid = 0; return false }
        return true
    }

    /// SIGTERM, up to a second's grace, then SIGKILL; always reaps. Removes the socket.
    public func stop() {
        defer { unlink(socketPath) }
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid { pid = 0; return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        pid = 0
    }

    /// After every daemon's `stop()`: waits (up to `timeout` s) for their re-parented
    /// server processes, which die of PR_SET_PDEATHSIG once their parent is gone. Only for
    /// a process whose other children are all gone too (svm's VM process has none).
    public static func reapOrphans(timeout: Double = 2) {
        let deadline = MonotonicClock.now() + timeout
        var status: Int32 = 0
        while MonotonicClock.now() < deadline {
            let r = waitpid(-1, &status, WNOHANG)
            if r < 0 && errno == ECHILD { return }
            if r <= 0 { usleep(5_000) }
        }
    }

    deinit { stop() }
}

/// The virtiofsd of every share of one VM: started in order, ended together. Both users
/// (a managed VM's `--share`s, `svm run`'s live volumes) need the same two things: if one
/// share cannot start, the ones already running go; at the end, every daemon is stopped and
/// their sandboxed servers are reaped.
public final class VirtiofsdGroup: @unchecked Sendable {
    public struct Share: Sendable {
        public let tag: String
        public let source: String
        public let readOnly: Bool
        public init(tag: String, source: String, readOnly: Bool) {
            self.tag = tag
            self.source = source
            self.readOnly = readOnly
        }
    }

    /// Which share (by its place in the list) could not start, and why.
    public struct Failure: Error {
        public let index: Int
        public let reason: Virtiofsd.Failure
    }

    public private(set) var daemons: [Virtiofsd] = []

    /// Starts a virtiofsd per share, sockets and logs in `directory`.
    public init(_ shares: [Share], directory: String) throws(Failure) {
        for (index, share) in shares.enumerated() {
            do {
                daemons.append(try Virtiofsd(index: index, tag: share.tag, source: share.source,
                                             readOnly: share.readOnly, directory: directory))
            } catch {
                stop()
                throw Failure(index: index, reason: error)
            }
        }
    }

    /// Ends every daemon and waits for their sandboxed servers; idempotent.
    public func stop() {
        guard !daemons.isEmpty else { return }
        for daemon in daemons { daemon.stop() }
        Virtiofsd.reapOrphans()
        daemons = []
    }
}
