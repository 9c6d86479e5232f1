import Glibc
import XCTest

/// An `svm` child process with pipes on stdin, stdout and stderr, for tests that drive a
/// real guest: wait for a line, type a command, wait for the exit status.
final class SVMProcess {
    let pid: pid_t
    let stdinFD: Int32
    let stdoutFD: Int32
    let stderrFD: Int32
    private(set) var stdout: [UInt8] = []
    private(set) var stderr: [UInt8] = []
    private(set) var exitStatus: Int32?
    /// True when the process was killed by a signal rather than exiting (its status is then
    /// 128 + N, as a shell reports it).
    private(set) var diedOfSignal = false

    /// The package root, from this file's path (Tests/IntegrationTests/SVMProcess.swift).
    static var packageRoot: String {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    /// $SVM_BINARY, else the svm built beside this test executable (so that
    /// `swift test --scratch-path DIR` tests DIR's svm), else .build/debug/svm.
    static var binary: String {
        if let b = getenv("SVM_BINARY") { return String(cString: b) }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 {
            let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let slash = exe.lastIndex(of: "/") {
                let sibling = String(exe[..<slash]) + "/svm"
                if access(sibling, X_OK) == 0 { return sibling }
            }
        }
        return packageRoot + "/.build/debug/svm"
    }

    /// `prefix` runs svm under another command, e.g. `ip netns exec NS`; `environment`
    /// adds to (or replaces in) this process's environment for svm.
    /// `binary` overrides which svm executable runs (default: `SVMProcess.binary`).
    init(arguments: [String], prefix: [String] = [], environment: [String: String] = [:],
         binary: String = SVMProcess.binary) throws {
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            let message = "pipe failed: \(String(cString: strerror(errno)))"
            XCTFail(message)
            throw SetupFailure(message)
        }
        // Only the dup2'd copies may reach the child.
        for fd in inPipe + outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let command = prefix + [binary] + arguments
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envp: [UnsafeMutablePointer<CChar>?] = []
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            let key = String(text.prefix { $0 != "=" })
            if environment[key] == nil { envp.append(strdup(text)) }
            p += 1
        }
        for (key, value) in environment { envp.append(strdup("\(key)=\(value)")) }
        envp.append(nil)
        defer { envp.forEach { free($0) } }
        var child: pid_t = 0
        let r = posix_spawnp(&child, command[0], &actions, nil, argv, envp)
        posix_spawn_file_actions_destroy(&actions)
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard r == 0 else {
            XCTFail("cannot start \(binary): \(String(cString: strerror(r))) (build it with swift build)")
            throw XCTSkip("no svm binary")
        }
        pid = child
        stdinFD = inPipe[1]
        stdoutFD = outPipe[0]
        stderrFD = errPipe[0]
        _ = fcntl(stdoutFD, F_SETFL, fcntl(stdoutFD, F_GETFL) | O_NONBLOCK)
        _ = fcntl(stderrFD, F_SETFL, fcntl(stderrFD, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        close(stdinFD); close(stdoutFD); close(stderrFD)
    }

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Reads whatever is available, waiting up to `milliseconds`.
    private func pump(milliseconds: Int32) {
        var fds = [pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)]
        guard poll(&fds, 2, milliseconds) > 0 else { return }
        var buf = [UInt8](repeating: 0, count: 65536)
        for (i, fd) in [stdoutFD, stderrFD].enumerated() where fds[i].revents != 0 {
            let n = read(fd, &buf, buf.count)
            if n > 0 {
                if i == 0 { stdout += buf[0..<n] } else { stderr += buf[0..<n] }
            }
        }
    }

    /// Complete lines of stdout so far (a line still being written is not one yet).
    var completeLines: [Substring] {
        guard let end = stdout.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
        let text = String(decoding: stdout[...end], as: UTF8.self)
        return text.split(whereSeparator: { $0.isNewline })
    }

    /// Waits until a complete stdout line contains `text` (returns that line) or the time runs out.
    func waitForLine(containing text: String, timeout: Double) -> String? {
        let deadline = Self.now() + timeout
        while Self.now() < deadline {
            if let line = completeLines.first(where: { $0.contains(text) }) {
                return String(line)
            }
            if exitStatus != nil || reap() != nil {
                pump(milliseconds: 0)
                return completeLines.first(where: { $0.contains(text) }).map(String.init)
            }
            pump(milliseconds: 200)
        }
        return nil
    }

    /// Waits until stdout holds `text` anywhere (no need for a whole line: a shell prompt).
    func waitForText(_ text: String, timeout: Double) -> Bool {
        let deadline = Self.now() + timeout
        while Self.now() < deadline {
            if stdoutText.contains(text) { return true }
            if reap() != nil { pump(milliseconds: 0); return stdoutText.contains(text) }
            pump(milliseconds: 200)
        }
        return false
    }

    /// The test initramfs's shell prompt. Input sent before the shell has started may be
    /// discarded when it sets up the terminal, so tests wait for it before typing.
    static let shellPrompt = "svm# "

    func send(_ text: String) {
        _ = text.withCString { write(stdinFD, $0, strlen($0)) }
    }

    /// Ends the child's stdin (its pipe's write end becomes /dev/null, so deinit's close stays right).
    func closeStdin() {
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        _ = dup2(null, stdinFD)
        _ = fcntl(stdinFD, F_SETFD, FD_CLOEXEC)
        close(null)
    }

    /// Non-blocking check for the exit status.
    @discardableResult
    func reap() -> Int32? {
        if let s = exitStatus { return s }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            diedOfSignal = (status & 0x7F) != 0
            let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            exitStatus = code
        }
        return exitStatus
    }

    /// Waits for svm to exit, reading its output meanwhile; nil on timeout.
    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Self.now() + timeout
        while Self.now() < deadline {
            if let s = reap() {
                pump(milliseconds: 50)
                pump(milliseconds: 0)
                return s
            }
            pump(milliseconds: 200)
        }
        return nil
    }
}

/// Thrown (after an XCTFail) when the test's own set-up fails: a failure, not a skip.
struct SetupFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
