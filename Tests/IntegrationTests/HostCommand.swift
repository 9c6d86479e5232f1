import Glibc
import XCTest

/// Runs a host command to completion (test set-up: images, network namespaces).
@discardableResult
func hostCommand(_ argv: [String], file: StaticString = #filePath, line: UInt = #line) -> (status: Int32, output: String) {
    var out: [Int32] = [0, 0]
    guard pipe(&out) == 0 else { return (-1, "pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, out[1], 1)
    posix_spawn_file_actions_adddup2(&actions, out[1], 2)
    posix_spawn_file_actions_addclose(&actions, out[0])
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
    while true {
        let n = read(out[0], &buf, buf.count)
        if n <= 0 { break }
        bytes += buf[0..<n]
    }
    close(out[0])
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    return (code, String(decoding: bytes, as: UTF8.self))
}

/// Like hostCommand, but fails the test when the command does.
func mustRun(_ argv: [String], file: StaticString = #filePath, line: UInt = #line) {
    let r = hostCommand(argv)
    XCTAssertEqual(r.status, 0, "\(argv.joined(separator: " ")): \(r.output)", file: file, line: line)
}
