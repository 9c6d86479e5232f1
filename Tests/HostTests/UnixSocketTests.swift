import Glibc
import XCTest
@testable import Host

/// Sockets at paths longer than a sockaddr_un holds (107 bytes): containerd's shim puts
/// svm-runtime's state under `--root /run/docker/runtime-runc/moby` with 64-character IDs.
final class UnixSocketTests: XCTestCase {
    /// A fresh directory whose path is `length` bytes or more, and the top one to remove.
    static func longDirectory(length: Int = 140) throws -> (top: String, path: String) {
        var template = Array("/tmp/svm-sock.XXXXXX".utf8CString)
        let top = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        var path = top
        while path.utf8.count < length {
            path += "/" + String(repeating: "d", count: 60)
            guard mkdir(path, 0o700) == 0 else { throw HostError.last("mkdir \(path)") }
        }
        return (top, path)
    }

    func testListenAndConnectAtAPathLongerThanASockaddrHolds() throws {
        let (top, dir) = try Self.longDirectory()
        defer { system("rm -rf '\(top)'") }
        let path = dir + "/control.sock"
        XCTAssertGreaterThan(path.utf8.count, UnixSocket.maximumPathLength)
        let listener = try UnixSocket.listen(path: path)
        defer { close(listener) }
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0, "the socket is at the long path itself")
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let client = try UnixSocket.connect(path: path)
        defer { close(client) }
        guard let server = try UnixSocket.accept(listener) else { return XCTFail("no connection to accept") }
        defer { close(server) }
        XCTAssertEqual(write(client, "x", 1), 1)
        var byte: UInt8 = 0
        XCTAssertEqual(read(server, &byte, 1), 1)
        XCTAssertEqual(byte, UInt8(ascii: "x"))
        // A second listener finds the first one answering there.
        XCTAssertThrowsError(try UnixSocket.listen(path: path)) { XCTAssertEqual(($0 as? HostError)?.errno, EADDRINUSE) }
    }

    func testAMissingLongPathIsNamedWithItsErrno() throws {
        let (top, dir) = try Self.longDirectory()
        defer { system("rm -rf '\(top)'") }
        XCTAssertThrowsError(try UnixSocket.connect(path: dir + "/nobody.sock")) {
            XCTAssertEqual(($0 as? HostError)?.errno, ENOENT, "\($0)")
        }
        XCTAssertThrowsError(try UnixSocket.connect(path: dir + "/missing/x.sock")) {
            XCTAssertTrue("\($0)".contains("open \(dir)/missing"), "\($0)")
        }
    }
}
