import CKVM
import Glibc
import XCTest
@testable import Host

/// The pty svm-runtime makes for a container's terminal: raw replica, the size given,
/// and the master handed over a console socket as runc does (SCM_RIGHTS).
final class PseudoTerminalTests: XCTestCase {
    func testReplicaIsRawAndSizedAndBytesPassUnchanged() throws {
        let pty = try PseudoTerminal.open(size: (rows: 33, columns: 101))
        defer {
            close(pty.master)
            close(pty.replica)
        }
        XCTAssertTrue(pty.replicaPath.hasPrefix("/dev/pts/"), pty.replicaPath)
        var t = termios()
        XCTAssertEqual(tcgetattr(pty.replica, &t), 0)
        XCTAssertEqual(t.c_lflag & tcflag_t(ECHO | ICANON | ISIG), 0, "raw: no echo, no line editing, no signals")
        XCTAssertEqual(TerminalSize.of(fd: pty.replica)?.rows, 33)
        XCTAssertEqual(TerminalSize.of(fd: pty.replica)?.columns, 101)
        XCTAssertEqual(fcntl(pty.master, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        XCTAssertEqual(fcntl(pty.replica, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        // A ^C and a CR typed on the master arrive as bytes, not as a signal or a newline.
        try FileIO.write(pty.master, [0x03, 0x0D, 0x41])
        var got = [UInt8](repeating: 0, count: 16)
        let n = read(pty.replica, &got, got.count)
        XCTAssertEqual(Array(got.prefix(max(n, 0))), [0x03, 0x0D, 0x41])
    }

    func testMasterGoesOverTheConsoleSocket() throws {
        var template = Array("/tmp/svm-console-XXXXXX".utf8CString)
        let dir = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        let path = dir + "/console.sock"
        defer {
            unlink(path)
            rmdir(dir)
        }
        let listener = try UnixSocket.listen(path: path)
        defer { close(listener) }
        let pty = try PseudoTerminal.open()
        defer { close(pty.replica) }
        try pty.sendMaster(to: path)
        XCTAssertEqual(fcntl(pty.master, F_GETFD), -1, "our copy of the master is closed once sent")
        guard let connection = try UnixSocket.accept(listener) else { return XCTFail("no connection") }
        defer { close(connection) }
        var message = [UInt8](repeating: 0, count: 256)
        var fds = [Int32](repeating: -1, count: 2)
        var count: Int32 = 0
        let n = ckvm_recv_with_fds(connection, &message, message.count, &fds, 2, &count)
        XCTAssertEqual(count, 1, "one descriptor")
        XCTAssertEqual(String(decoding: message.prefix(max(n, 0)), as: UTF8.self), pty.replicaPath, "runc sends the pty's name")
        defer { close(fds[0]) }
        // The received master drives the replica.
        try FileIO.write(fds[0], Array("hi".utf8))
        var got = [UInt8](repeating: 0, count: 8)
        XCTAssertEqual(read(pty.replica, &got, got.count), 2)
        XCTAssertEqual(Array(got.prefix(2)), Array("hi".utf8))
    }
}
