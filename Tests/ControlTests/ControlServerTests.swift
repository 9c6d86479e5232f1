import Glibc
import Host
import Synchronization
import XCTest
@testable import Control

/// A real server on a socket in a temporary directory, with a handler that records.
final class ControlServerTests: XCTestCase {
    final class Handler: ControlHandler {
        let seen = Mutex<[ControlRequest]>([])
        let attached = Mutex<[Int32]>([])
        func handle(_ request: ControlRequest) -> ControlReply {
            seen.withLock { $0.append(request) }
            if request == .pause { return .failure("not now") }
            return .ok(["state": .string("running")])
        }
        func attach(connection fd: Int32) {
            attached.withLock { $0.append(fd) }
            _ = writeAll(Array("console!".utf8), to: fd)
        }
    }

    func makeServer() throws -> (ControlServer, Handler, String) {
        let dir = try temporaryDirectory(self)
        let path = dir + "/control.sock"
        let handler = Handler()
        let loop = try EventLoop(name: "test-control")
        try loop.start()
        let server = try ControlServer(path: path, handler: handler, loop: loop)
        try server.start()
        addTeardownBlock {
            server.stop()
            loop.stop()
        }
        return (server, handler, path)
    }

    /// Sends raw bytes and returns what comes back until the server closes.
    func exchange(_ path: String, _ bytes: [UInt8]) throws -> String {
        let fd = try UnixSocket.connect(path: path)
        defer { close(fd) }
        UnixSocket.setTimeout(fd, seconds: 5)
        try FileIO.write(fd, bytes)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    func testStatusIsAnsweredAndSocketIsOwnerOnly() throws {
        let (_, handler, path) = try makeServer()
        let (reply, fd) = try ControlClient.send(.status, to: path)
        XCTAssertNil(fd)
        XCTAssertTrue(reply.ok)
        XCTAssertEqual(reply.fields["state"], .string("running"))
        XCTAssertEqual(handler.seen.withLock { $0 }, [.status])
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
    }

    func testBadRequestGetsAnErrorAndTheServerGoesOn() throws {
        let (_, handler, path) = try makeServer()
        let answer = try exchange(path, Array("{nonsense\n".utf8))
        XCTAssertTrue(answer.contains(#""ok":false"#), answer)
        XCTAssertTrue(answer.contains("not a JSON object"), answer)
        let unknown = try exchange(path, Array(#"{"request":"reboot"}"#.utf8) + [10])
        XCTAssertTrue(unknown.contains("unknown request"), unknown)
        let refused = try ControlClient.send(.pause, to: path).0
        XCTAssertFalse(refused.ok)
        XCTAssertEqual(refused.error, "not now")
        XCTAssertTrue(try ControlClient.send(.status, to: path).0.ok)
        XCTAssertEqual(handler.seen.withLock { $0 }, [.pause, .status])
    }

    func testOversizedLineIsRefused() throws {
        let (_, handler, path) = try makeServer()
        let line = [UInt8](repeating: UInt8(ascii: "a"), count: ControlRequest.maximumLineLength + 10) + [10]
        let fd = try UnixSocket.connect(path: path)
        defer { close(fd) }
        UnixSocket.setTimeout(fd, seconds: 5)
        // The server stops reading at the limit; our write may fail once it has closed.
        _ = try? FileIO.write(fd, line)
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        XCTAssertGreaterThan(n, 0)
        XCTAssertTrue(String(decoding: buf[0..<max(0, n)], as: UTF8.self).contains("longer than"))
        XCTAssertTrue(handler.seen.withLock { $0 }.isEmpty)
    }

    func testASilentClientDoesNotBlockOthers() throws {
        let (_, _, path) = try makeServer()
        let silent = try UnixSocket.connect(path: path)
        defer { close(silent) }
        let start = MonotonicClock.now()
        XCTAssertTrue(try ControlClient.send(.status, to: path).0.ok)
        XCTAssertLessThan(MonotonicClock.now() - start, 2, "another client waited for the silent one")
    }

    func testAttachHandsTheConnectionOver() throws {
        let (_, handler, path) = try makeServer()
        let (reply, connection) = try ControlClient.send(.attach, to: path)
        XCTAssertTrue(reply.ok)
        let fd = try XCTUnwrap(connection)
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 64)
        let n = recv(fd, &buf, buf.count, 0)
        XCTAssertEqual(String(decoding: buf[0..<max(0, n)], as: UTF8.self), "console!")
        XCTAssertEqual(handler.attached.withLock { $0.count }, 1)
        handler.attached.withLock { $0.forEach { close($0) } }
    }

    func testAnotherUserIsRefused() throws {
        try XCTSkipUnless(getuid() == 0, "needs root to connect as another user")
        let (_, handler, path) = try makeServer()
        // The socket is 0600: open the directory and the socket to all, so that the peer
        // check (SO_PEERCRED) is what refuses, not the file mode.
        let dir = String(path[..<path.lastIndex(of: "/")!])
        chmod(dir, 0o777)
        chmod(path, 0o777)
        let out = dir + "/out"
        // The server may refuse (reply and close) before the request is even sent: a failed
        // send is no test failure, the reply is what counts.
        let script = """
            import socket
            s = socket.socket(socket.AF_UNIX)
            s.connect('\(path)')
            try:
                s.sendall(b'{"request":"status"}\\n')
            except OSError:
                pass
            open('\(out)', 'wb').write(s.recv(4096))
            """
        let status = runProcess(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 "/usr/bin/python3", "-c", script])
        XCTAssertEqual(status, 0)
        chmod(dir, 0o700)
        let answer = String(decoding: (try? FileIO.readFile(out)) ?? [], as: UTF8.self)
        XCTAssertTrue(answer.contains(#""ok":false"#), answer)
        XCTAssertTrue(answer.contains("permission denied"), answer)
        XCTAssertTrue(handler.seen.withLock { $0 }.isEmpty, "the other user's request reached the VM")
    }

    func testASecondServerOnALiveSocketIsRefusedAndAStaleOneReplaced() throws {
        let (server, _, path) = try makeServer()
        let loop = try EventLoop(name: "test-control")
        XCTAssertThrowsError(try ControlServer(path: path, handler: Handler(), loop: loop)) { error in
            XCTAssertEqual((error as? HostError)?.errno, EADDRINUSE)
        }
        // A socket file nobody listens on is stale: a new server takes its place.
        let stale = try UnixSocket.listen(path: path + "2")
        close(stale)
        let replacement = try ControlServer(path: path + "2", handler: Handler(), loop: loop)
        replacement.stop()
        server.stop()
        XCTAssertNotEqual(access(path, F_OK), 0, "the socket file outlived its server")
    }
}
