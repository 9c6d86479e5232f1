import Control
import Glibc
import Host
import Machine

/// `svm boot -d`: the VM runs in a new process of its own session (this executable again,
/// as `svm __vm-process NAME`), with no terminal, its console going to its log. This
/// process hands it the lock on the state directory (fd 3: the claim travels with the
/// descriptor, so no other boot can take the name in between) and a pipe (fd 4) on which
/// the VM process says `ready` once its vCPUs run, or `fail STATUS MESSAGE`; then this
/// process prints the name and exits 0, or prints the message and exits with that status.
enum Detach {
    static let lockDescriptor: Int32 = 3
    static let readyDescriptor: Int32 = 4

    /// With `restoring`, the VM process continues the VM from that snapshot directory.
    static func start(claim: VMClaim, root: String, restoring: String? = nil) -> Int32 {
        var ready: [Int32] = [0, 0]
        guard pipe(&ready) == 0, fcntl(ready[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(ready[1], F_SETFD, FD_CLOEXEC) == 0 else {
            claim.discard()
            return CommandFailure("pipe: \(String(cString: strerror(errno)))", status: .hostFailure).report()
        }
        defer { close(ready[0]) }
        let child: pid_t
        do { child = try spawn(name: claim.name, root: root, lockFD: claim.lockFD, readyFD: ready[1], restoring: restoring) } catch {
            close(ready[1])
            claim.discard()
            return CommandFailure("cannot start the VM process: \(error)", status: .hostFailure).report()
        }
        close(ready[1])
        claim.release()  // the child holds the lock now

        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(ready[0], &byte, 1) == 1 || errno == EINTR {
            if byte == UInt8(ascii: "\n") { break }
            if line.count < 4096 { line.append(byte) }
        }
        let text = String(decoding: line, as: UTF8.self)
        if text == "ready" {
            print(claim.name)
            return 0
        }
        if text.hasPrefix("fail "), let space = text.dropFirst(5).firstIndex(of: " "),
           let status = Int32(text[text.index(text.startIndex, offsetBy: 5)..<space]) {
            var status32: Int32 = 0
            _ = waitpid(child, &status32, 0)
            SVMCommand.printErr(String(text[text.index(after: space)...]))
            return status
        }
        var status: Int32 = 0
        _ = waitpid(child, &status, 0)
        let how = (status & 0x7F) == 0 ? "exit status \((status >> 8) & 0xFF)" : "signal \(status & 0x7F)"
        return CommandFailure("the VM process ended before the VM ran (\(how))", status: .hostFailure).report()
    }

    /// Starts `svm __vm-process NAME` in a new session: stdin, stdout and stderr on
    /// /dev/null, the lock as fd 3, the ready pipe as fd 4, nothing else inherited.
    static func spawn(name: String, root: String, lockFD: Int32, readyFD: Int32, restoring: String? = nil) throws(HostError) -> pid_t {
        var exe = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &exe, exe.count - 1)
        guard n > 0 else { throw .last("readlink /proc/self/exe") }
        let path = String(decoding: exe[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // dup2 clears close-on-exec on the copy: fds 3 and 4 reach the child, nothing else.
        posix_spawn_file_actions_adddup2(&actions, lockFD, lockDescriptor)
        posix_spawn_file_actions_adddup2(&actions, readyFD, readyDescriptor)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A new session (POSIX_SPAWN_SETSID, 0x80 in glibc, hidden from Swift behind
        // _GNU_SOURCE), no blocked signals, and default dispositions for those svm handles.
        let setsid: Int32 = 0x80
        posix_spawnattr_setflags(&attributes, Int16(setsid | Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)))
        var none = sigset_t(), handled = sigset_t()
        sigemptyset(&none)
        sigemptyset(&handled)
        for s in Signals.terminating + [SIGPIPE, SIGUSR1, SIGWINCH] { sigaddset(&handled, s) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &handled)

        var environment: [String] = []
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if !text.hasPrefix("SVM_RUN_DIR=") { environment.append(text) }
            p += 1
        }
        environment.append("SVM_RUN_DIR=\(root)")
        let words: [String] = [path, VMProcessCommand.name, name] + (restoring.map { [$0] } ?? [])
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let r = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard r == 0 else { throw HostError("posix_spawn \(path)", errno: r) }
        return pid
    }
}
