import Glibc
import XCTest
@testable import Host

/// FileIO is every module's read/write loop now, so its short-transfer and end-of-file
/// behaviour is pinned here once.
final class FileIOTests: XCTestCase {
    private var paths: [String] = []

    override func tearDown() {
        for p in paths { unlink(p) }
        paths = []
    }

    /// A temporary file holding `bytes`, open read-write.
    private func file(_ bytes: [UInt8]) throws -> Int32 {
        var template = Array("/tmp/svm-fileio-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else {
            XCTFail("mkstemp: \(HostError.last("mkstemp"))")
            throw HostError.last("mkstemp")
        }
        paths.append(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        try FileIO.write(fd, bytes)
        return fd
    }

    func testPreadReturnsFewerBytesOnlyAtEndOfFile() throws {
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let fd = try file(bytes)
        defer { close(fd) }
        XCTAssertEqual(try FileIO.pread(fd, count: 100, at: 50), Array(bytes[50..<150]))
        XCTAssertEqual(try FileIO.pread(fd, count: 100, at: 9_950), Array(bytes[9_950...]))
        XCTAssertEqual(try FileIO.pread(fd, count: 100, at: 20_000), [])
    }

    func testPwriteWritesAtTheOffsetWithoutMovingTheFilePosition() throws {
        let fd = try file([UInt8](repeating: 0, count: 8))
        defer { close(fd) }
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try FileIO.pwrite(fd, $0, at: 2) }
        XCTAssertEqual(try FileIO.pread(fd, count: 8, at: 0), [0, 0, 1, 2, 3, 0, 0, 0])
        XCTAssertEqual(lseek(fd, 0, SEEK_CUR), 8)
    }

    /// A pipe hands out what its writer wrote in pieces: readFully keeps reading until the
    /// count or end of file.
    func testReadFullyJoinsShortReadsUntilEndOfFile() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            XCTFail("pipe: \(HostError.last("pipe"))")
            throw HostError.last("pipe")
        }
        defer { close(fds[0]) }
        try FileIO.write(fds[1], [1, 2, 3])
        try FileIO.write(fds[1], [4, 5])
        close(fds[1])
        XCTAssertEqual(try FileIO.readFully(fds[0], count: 4), [1, 2, 3, 4])
        XCTAssertEqual(try FileIO.readFully(fds[0], count: 4), [5])
        XCTAssertEqual(try FileIO.readFully(fds[0], count: 4), [])
    }

    /// On a non-blocking descriptor, readFully waits for the rest instead of returning
    /// early or spinning (EAGAIN), and write waits for room.
    func testNonBlockingDescriptorsAreWaitedOn() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            XCTFail("pipe: \(HostError.last("pipe"))")
            throw HostError.last("pipe")
        }
        defer { close(fds[0]) }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let (reader, writer) = (fds[0], fds[1])
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13) }  // more than a pipe holds
        let thread = HostThread(name: "fileio-test") {
            try? FileIO.write(writer, big)
            close(writer)
        }
        try thread.start()
        let got = try FileIO.readFully(reader, count: big.count + 1)
        thread.join()
        XCTAssertEqual(got.count, big.count)
        XCTAssertTrue(got == big)
    }

    func testFailuresCarryTheOperationAndErrno() {
        XCTAssertThrowsError(try FileIO.pread(-1, count: 4, at: 0, what: "read /some/file")) { error in
            XCTAssertEqual(error as? HostError, HostError("read /some/file", errno: EBADF))
            XCTAssertEqual("\(error)", "read /some/file failed: \(String(cString: strerror(EBADF))) (errno \(EBADF))")
        }
        XCTAssertThrowsError(try FileIO.write(-1, [1], what: "write x")) { error in
            XCTAssertEqual(error as? HostError, HostError("write x", errno: EBADF))
        }
    }

    func testReadFileAndWriteFileAtomically() throws {
        let fd = try file([])
        close(fd)
        let path = paths[0]
        let bytes = (0..<40_000).map { UInt8(truncatingIfNeeded: $0) }
        try FileIO.writeFileAtomically(path, bytes)
        XCTAssertEqual(try FileIO.readFile(path), bytes)
        XCTAssertThrowsError(try FileIO.readFile(path, limit: 1000)) { error in
            XCTAssertEqual((error as? HostError)?.errno, EFBIG)
        }
    }
}
