import Glibc
import XCTest

/// Runs a host command to completion (test set-up: images, network namespaces), for at most
/// `timeout` seconds: a command still running then is killed and the test fails, so one
/// stuck command cannot hang the whole run.
@discardableResult
func hostCommand(_ argv: [String], timeout: Double = 300, file: StaticString = #filePath, line: UInt = #line) -> (status: Int32, output: String) {
    var out: [Int32] = [0, 0]
    guard pipe(&out) == 0 else { return (-1, "pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, out[1], 1)
    posix_spawn_file_actions_adddup2(&actions, out[1], 2)
    posix_spawn_file_actions_addclose(&actions, out[0])
    // And the write end under its own number: a daemon the command leaves behind (conmon,
    // a container's VM process) would hold it, and this would wait for that daemon's end.
    posix_spawn_file_actions_addclose(&actions, out[1])
    let cargs = argv.map { strdup($0) } + [nil]
    defer { cargs.forEach { free($0) } }
    var pid: pid_t = 0
    let r = posix_spawnp(&pid, argv[0], &actions, nil, cargs, environ)
    posix_spawn_file_actions_destroy(&actions)
    close(out[1])
    guard r == 0 else {
        close(out[0])
        return (-1, "\(argv[0]): \(String(cString: strerror(r)))")
    }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    let deadline = SVMProcess.now() + timeout
    var timedOut = false
    while true {
        let left = deadline - SVMProcess.now()
        if left <= 0 { timedOut = true; break }
        var p = pollfd(fd: out[0], events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(min(left, 1) * 1000))
        if r < 0 { if errno == EINTR { continue } else { break } }
        if r == 0 { continue }
        let n = read(out[0], &buf, buf.count)
        if n <= 0 { break }
        bytes += buf[0..<n]
    }
    close(out[0])
    if timedOut {
        kill(pid, SIGKILL)
        XCTFail("\(argv.joined(separator: " ")) still ran after \(timeout) s: killed", file: file, line: line)
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    return (code, String(decoding: bytes, as: UTF8.self))
}

/// Like hostCommand, but fails the test when the command does.
func mustRun(_ argv: [String], file: StaticString = #filePath, line: UInt = #line) {
    let r = hostCommand(argv)
    XCTAssertEqual(r.status, 0, "\(argv.joined(separator: " ")): \(r.output)", file: file, line: line)
}
