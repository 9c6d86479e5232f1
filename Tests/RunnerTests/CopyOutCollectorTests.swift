import Glibc
import Host
@testable import Runner
import XCTest

final class CopyOutCollectorTests: XCTestCase {
    func testKeepsWhatArrivesAndLeavesNoFileBehind() throws {
        let dir = try makeTempDir(self)
        let collector = try CopyOutCollector(environment: ["TMPDIR": dir], limit: 10)
        collector.receive(Array("abc".utf8))
        collector.receive(Array("defg".utf8))
        XCTAssertNil(collector.failure)
        var buf = [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(pread(collector.fd, &buf, 16, 0), 7)
        XCTAssertEqual(Array(buf[0..<7]), Array("abcdefg".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "the file has no name")
    }

    /// A guest that sends more than the limit gets nothing applied, and svm stores no more.
    func testMoreThanTheLimitMarksTheArchiveUnusable() throws {
        let dir = try makeTempDir(self)
        let collector = try CopyOutCollector(environment: ["TMPDIR": dir], limit: 10)
        collector.receive(Array(repeating: 1, count: 8))
        collector.receive(Array(repeating: 2, count: 3))
        collector.receive(Array(repeating: 3, count: 1))
        XCTAssertTrue(collector.failure?.contains("copy-out limit") ?? false, "\(collector.failure ?? "nil")")
        var st = stat()
        XCTAssertEqual(fstat(collector.fd, &st), 0)
        XCTAssertEqual(st.st_size, 8)
    }

    /// The file cannot be made: the error names the directory and carries the failed call.
    func testCreationFailureNamesTheDirectoryAndErrno() {
        XCTAssertThrowsError(try CopyOutCollector(environment: ["TMPDIR": "/nonexistent/svm-test"])) { error in
            let e = error as? RunError
            XCTAssertEqual(e?.hostError, HostError("mkstemp", errno: ENOENT))
            XCTAssertEqual(e?.description,
                           "cannot create the copy-out file in /nonexistent/svm-test: mkstemp failed: No such file or directory (errno 2)")
        }
    }
}
