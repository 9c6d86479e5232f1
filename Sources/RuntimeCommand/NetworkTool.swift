import Glibc
import Host

/// Runs iproute2's `ip` and `tc` for the container's network, in this process's network
/// namespace (children inherit it). Their stdin is /dev/null and their output is captured:
/// this process's stdio are the container's, so nothing of ours may appear there.
enum NetworkTool {
    struct Result {
        var status: Int32
        var output: [UInt8]
        var errorText: String
    }

    /// iproute2 lives in /usr/sbin or /sbin on Debian; conmon's PATH may lack them.
    static let searchPath = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]

    /// Runs `argv` and returns its standard output; a failure is one line naming the
    /// command and what it said (or the failed call and its errno).
    @discardableResult
    static func run(_ argv: [String]) throws(RuntimeFailure) -> [UInt8] {
        let result = try execute(argv)
        guard result.status == 0 else {
            let said = result.errorText.split(separator: "\n").first.map { ": \($0)" } ?? ""
            throw RuntimeFailure("network: `\(argv.joined(separator: " "))` failed with status \(result.status)\(said)")
        }
        return result.output
    }

    static func execute(_ argv: [String]) throws(RuntimeFailure) -> Result {
        guard let name = argv.first, let executable = locate(name) else {
            throw RuntimeFailure("network: \(argv.first ?? "?") not found in \(searchPath.joined(separator: ":")) (install iproute2)")
        }
        // Close-on-exec at once is enough (pipe2 is not in Glibc's module): the tools run
        // while this process is single-threaded or from its main thread, nothing else execs.
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { throw RuntimeFailure("network: \(HostError.last("pipe"))") }
        guard pipe(&err) == 0 else {
            close(out[0]); close(out[1])
            throw RuntimeFailure("network: \(HostError.last("pipe"))")
        }
        for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        // The container's signals are blocked in this process (read from a signalfd); the
        // tool must not inherit that mask.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))

        var pid: pid_t = 0
        let cArgs = ([executable] + argv.dropFirst()).map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = [strdup("LC_ALL=C"), nil]
        let rc = posix_spawn(&pid, executable, &actions, &attributes, cArgs, cEnv)
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
        close(out[1])
        close(err[1])
        defer { close(out[0]); close(err[0]) }
        guard rc == 0 else { throw RuntimeFailure("network: \(HostError("posix_spawn \(executable)", errno: rc))") }

        let (output, errors) = drain(out[0], err[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw RuntimeFailure("network: \(HostError.last("waitpid \(name)"))") }
        }
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, output: output, errorText: String(decoding: errors, as: UTF8.self))
    }

    /// Both pipes to their end, so that neither child write can block on a full pipe.
    private static func drain(_ outFD: Int32, _ errFD: Int32) -> ([UInt8], [UInt8]) {
        var collected: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: outFD, events: Int16(POLLIN), revents: 0), pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 16384)
        // An interface list is a few KiB; a megabyte is no namespace an engine made.
        let limit = 1 << 20
        while fds.contains(where: { $0.fd >= 0 }) {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { fds[i].fd = -1; continue }
                if collected[i].count < limit { collected[i] += buffer[0..<n] }
            }
        }
        return (collected[0], collected[1])
    }

    private static func locate(_ name: String) -> String? {
        searchPath.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
    }
}
