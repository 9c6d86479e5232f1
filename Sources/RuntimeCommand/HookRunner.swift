import Control
import Glibc
import Host
import OCI

/// The bundle's host hooks, as runc runs them: in the runtime's namespaces, one after the
/// other, each with the container's state JSON on its stdin. `prestart` and
/// `createRuntime` run at the end of `create` (the VM process is the state's pid: Docker's
/// `libnetwork-setkey` moves the container's veth into that process's network namespace),
/// `poststart` after `start`, `poststop` after `delete`.
enum HookRunner {
    /// What a hook printed that is kept for the error message.
    static let outputLimit = 4096

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs each hook of `name` in order; the first that fails (non-zero, killed, timed
    /// out, not startable) ends the run with why.
    static func run(_ name: String, of hooks: [String: [OCISpec.Hook]], state: ContainerStore.State) throws(Failure) {
        let input = JSONText.encode(state.json)
        for (i, hook) in (hooks[name] ?? []).enumerated() {
            do { try run(hook, input: input) } catch {
                throw Failure(description: "hooks.\(name)[\(i)] \(hook.path): \(error.description)")
            }
        }
    }

    static func run(_ hook: OCISpec.Hook, input: [UInt8]) throws(Failure) {
        var stdinPipe: [Int32] = [-1, -1], outputPipe: [Int32] = [-1, -1]
        guard pipe(&stdinPipe) == 0 else { throw Failure(description: "\(HostError.last("pipe"))") }
        guard pipe(&outputPipe) == 0 else {
            close(stdinPipe[0]); close(stdinPipe[1])
            throw Failure(description: "\(HostError.last("pipe"))")
        }
        // Only the dup2'd copies reach the hook (no other hook or VM process inherits them).
        for fd in stdinPipe + outputPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 2)
        let argv = (hook.args.isEmpty ? [hook.path] : hook.args).map { strdup($0) } + [nil]
        let env = hook.env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            env.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, hook.path, &actions, nil, argv, env)
        close(stdinPipe[0])
        close(outputPipe[1])
        guard rc == 0 else {
            close(stdinPipe[1]); close(outputPipe[0])
            throw Failure(description: "\(HostError("posix_spawn", errno: rc))")
        }
        // The state is small (a few hundred bytes): it fits in the pipe, so this does not
        // wait on a hook that never reads its stdin. A hook that exited already is EPIPE.
        signal(SIGPIPE, SIG_IGN)
        _ = try? FileIO.write(stdinPipe[1], input)
        close(stdinPipe[1])

        let deadline = hook.timeout.map { MonotonicClock.now() + Double($0) }
        var output: [UInt8] = []
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var pfd = pollfd(fd: outputPipe[0], events: Int16(POLLIN), revents: 0)
            let wait = deadline.map { Int32(max(0, min(($0 - MonotonicClock.now()) * 1000, 60_000))) } ?? -1
            let r = poll(&pfd, 1, wait)
            if r < 0 && errno == EINTR { continue }
            if r == 0 {
                timedOut = true
                kill(pid, SIGKILL)
                break
            }
            let n = read(outputPipe[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if output.count < outputLimit { output += buffer[0..<min(n, outputLimit - output.count)] }
        }
        close(outputPipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let printed = String(decoding: output, as: UTF8.self).trimmingTrailingNewlines
        let said = printed.isEmpty ? "" : ": \(printed.split(separator: "\n").last.map(String.init) ?? printed)"
        if timedOut { throw Failure(description: "timed out after \(hook.timeout ?? 0) s\(said)") }
        let signalled = status & 0x7f
        if signalled != 0 { throw Failure(description: "killed by signal \(signalled)\(said)") }
        let code = (status >> 8) & 0xff
        if code != 0 { throw Failure(description: "exit status \(code)\(said)") }
    }
}
