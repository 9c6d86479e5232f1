import Glibc
import XCTest

/// A fresh directory under /tmp, removed after the test.
func temporaryDirectory(_ test: XCTestCase) throws -> String {
    var template = Array("/tmp/svm-control-test-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        // A failure, not a skip: a host that cannot make a directory under /tmp is broken.
        let message = "mkdtemp: \(String(cString: strerror(errno)))"
        XCTFail(message)
        throw TemporaryDirectoryFailure(message: message)
    }
    let path = String(cString: made)
    test.addTeardownBlock { _ = runProcess(["/bin/rm", "-rf", path]) }
    return path
}

struct TemporaryDirectoryFailure: Error { let message: String }

/// Runs a command to its end; returns its exit status.
@discardableResult
func runProcess(_ argv: [String]) -> Int32 {
    var pid: pid_t = 0
    let args = argv.map { strdup($0) } + [nil]
    defer { args.forEach { free($0) } }
    guard posix_spawn(&pid, argv[0], nil, nil, args, environ) == 0 else { return -1 }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
}

/// Starts a command and returns its pid without waiting.
func startProcess(_ argv: [String]) -> pid_t {
    var pid: pid_t = 0
    let args = argv.map { strdup($0) } + [nil]
    defer { args.forEach { free($0) } }
    guard posix_spawn(&pid, argv[0], nil, nil, args, environ) == 0 else { return -1 }
    return pid
}
