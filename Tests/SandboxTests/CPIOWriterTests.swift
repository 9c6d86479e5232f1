import Foundation
import XCTest
import Host
@testable import Sandbox

final class CPIOWriterTests: XCTestCase {
    /// Runs `build` against a writer on a temp file and returns the archive bytes.
    func archive(mtime: UInt32 = 0, _ build: (inout CPIOWriter) throws -> Void) throws -> [UInt8] {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let path = dir + "/a.cpio"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var w = CPIOWriter(fd: fd, mtime: mtime)
        try build(&w)
        try w.finish()
        let bytes = try readBytes(path)
        XCTAssertEqual(UInt64(bytes.count), w.bytesWritten)
        return bytes
    }

    func testRoundTripOfEveryKind() throws {
        let bytes = try archive(mtime: 1_700_000_000) { w in
            try w.addDirectory("/svm", mode: 0o700)
            try w.addFile("/svm/job", contents: Array("hello".utf8), mode: 0o600)
            try w.addSymlink("lib64", target: "usr/lib64")
            try w.addCharDevice("dev/console", major: 5, minor: 1, mode: 0o600)
            try w.addFile("usr/bin/tool", contents: [1, 2, 3], mode: 0o755, uid: 65534, gid: 65534)
        }
        let e = try parseNewc(bytes)
        XCTAssertEqual(e.map(\.name), ["svm", "svm/job", "lib64", "dev", "dev/console", "usr", "usr/bin", "usr/bin/tool"])
        XCTAssertEqual(e[0].mode, 0o040700)
        XCTAssertEqual(e[0].nlink, 2)
        XCTAssertEqual(e[1].mode, 0o100600)
        XCTAssertEqual(e[1].data, Array("hello".utf8))
        XCTAssertEqual(e[2].mode, 0o120777)
        XCTAssertEqual(e[2].data, Array("usr/lib64".utf8))
        XCTAssertEqual(e[3].mode, 0o040755)  // implicit parent
        XCTAssertEqual(e[4].mode, 0o020600)
        XCTAssertEqual([e[4].rdevMajor, e[4].rdevMinor], [5, 1])
        XCTAssertEqual(e[7].mode, 0o100755)
        XCTAssertEqual([e[7].uid, e[7].gid], [65534, 65534])
        XCTAssertEqual(e[1].uid, 0)
        XCTAssertTrue(e.allSatisfy { $0.mtime == 1_700_000_000 })
        XCTAssertEqual(Set(e.map(\.ino)).count, e.count, "inode numbers must be unique")
        XCTAssertFalse(e.contains { $0.ino == 0 })
    }

    func testPaddingForEveryNameAndDataLengthModFour() throws {
        var expected: [String: [UInt8]] = [:]
        let bytes = try archive { w in
            for nameLen in 1...9 {
                for dataLen in 0...9 {
                    let name = "d/" + String(repeating: "n", count: nameLen) + "\(dataLen)"
                    let data = (0..<dataLen).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ nameLen) }
                    expected[name] = data
                    try w.addFile(name, contents: data)
                }
            }
            for n in 1...8 { try w.addSymlink("s/" + String(repeating: "x", count: n), target: String(repeating: "t", count: n)) }
        }
        let e = try parseNewc(bytes)
        for entry in e where entry.name.hasPrefix("d/") {
            XCTAssertEqual(entry.data, expected[entry.name], entry.name)
        }
        XCTAssertEqual(e.filter { $0.name.hasPrefix("d/") }.count, expected.count)
        XCTAssertEqual(e.filter { $0.name.hasPrefix("s/") }.map { $0.data.count }, Array(1...8))
    }

    func testParentsAreCreatedOnceAndBeforeTheirEntries() throws {
        let e = try parseNewc(try archive { w in
            try w.addFile("a/b/c", contents: [])
            try w.addFile("a/b/d", contents: [])
            try w.addDirectory("a/b")  // already there: no second entry
            try w.addFile("//a/./e", contents: [])
        })
        XCTAssertEqual(e.map(\.name), ["a", "a/b", "a/b/c", "a/b/d", "a/e"])
    }

    func testConflictsAndBadPathsAreRefused() throws {
        _ = try archive { w in
            try w.addFile("x", contents: [])
            XCTAssertThrowsError(try w.addFile("x", contents: [])) {
                XCTAssertEqual($0 as? CPIOError, .conflict(path: "x", existing: "file"))
            }
            XCTAssertThrowsError(try w.addDirectory("x"))
            XCTAssertThrowsError(try w.addFile("x/y", contents: [])) {
                XCTAssertEqual($0 as? CPIOError, .conflict(path: "x", existing: "file"))
            }
            try w.addSymlink("lib", target: "usr/lib")
            XCTAssertThrowsError(try w.addFile("lib/libc.so.6", contents: []))
            XCTAssertThrowsError(try w.addFile("a/../b", contents: [])) { XCTAssertEqual($0 as? CPIOError, .invalidPath("a/../b")) }
            XCTAssertThrowsError(try w.addFile("/", contents: []))
            XCTAssertThrowsError(try w.addFile("", contents: []))
            XCTAssertThrowsError(try w.addSymlink("l", target: ""))
            XCTAssertEqual(w.kind(of: "/lib"), .symlink)
            XCTAssertNil(w.kind(of: "nothing"))
        }
    }

    func testCopyingALargeHostFileStreamsItExactly() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        // Larger than the 64 KiB buffer and not a multiple of 4.
        var data = [UInt8](repeating: 0, count: 300_001)
        var x: UInt32 = 12345
        for i in data.indices { x = x &* 1_103_515_245 &+ 12345; data[i] = UInt8(truncatingIfNeeded: x >> 16) }
        try writeBytes(dir + "/big", data, mode: 0o751)
        let e = try parseNewc(try archive { w in
            try w.addFile("small", contents: [9])
            try w.addFile("bin/big", copyingFrom: dir + "/big")
            try w.addFile("bin/big-ro", copyingFrom: dir + "/big", mode: 0o444)
        })
        XCTAssertEqual(e.first { $0.name == "bin/big" }?.data, data)
        XCTAssertEqual(e.first { $0.name == "bin/big" }?.mode, 0o100751)
        XCTAssertEqual(e.first { $0.name == "bin/big-ro" }?.mode, 0o100444)
    }

    func testCopyErrorsNameTheHostPath() throws {
        _ = try archive { w in
            XCTAssertThrowsError(try w.addFile("x", copyingFrom: "/nonexistent/file")) {
                XCTAssertEqual($0 as? CPIOError, .system(path: "/nonexistent/file", HostError("open", errno: ENOENT)))
                XCTAssertEqual("\($0)", "/nonexistent/file: open failed: No such file or directory (errno 2)")
            }
            XCTAssertThrowsError(try w.addFile("y", copyingFrom: "/tmp")) {
                XCTAssertEqual($0 as? CPIOError, .notRegularFile(path: "/tmp"))
            }
        }
    }

    func testWriteErrorIsReported() throws {
        var w = CPIOWriter(fd: -1)
        XCTAssertThrowsError(try w.finish()) {
            XCTAssertEqual($0 as? CPIOError, .system(path: "TRAILER!!!", HostError("write archive", errno: EBADF)))
        }
    }

    func testSameInputsGiveTheSameBytes() throws {
        let build: (inout CPIOWriter) throws -> Void = { w in
            try w.addFile("etc/a", contents: [1, 2])
            try w.addSymlink("bin", target: "usr/bin")
        }
        XCTAssertEqual(try archive(build), try archive(build))
    }

    /// GNU cpio reads the archive too: listing, symlink targets, contents and modes.
    func testGNUCpioExtractsIt() throws {
        try requireTool("/usr/bin/cpio")
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let bytes = try archive { w in
            try w.addFile("usr/lib/libx.so.1", contents: Array("library".utf8), mode: 0o755)
            try w.addSymlink("lib", target: "usr/lib")
            try w.addSymlink("usr/lib/libx.so", target: "libx.so.1")
            try w.addDirectory("tmp", mode: 0o1777)
            try w.addFile("e", contents: [])
        }
        try writeBytes(dir + "/a.cpio", bytes)
        let (st, list, _) = try runTool("/usr/bin/cpio", ["-t", "-F", dir + "/a.cpio"])
        XCTAssertEqual(st, 0)
        XCTAssertEqual(list.split(separator: "\n").map(String.init),
                       ["usr", "usr/lib", "usr/lib/libx.so.1", "lib", "usr/lib/libx.so", "tmp", "e"])
        let out = dir + "/x"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        let (st2, _, err2) = try runTool("/usr/bin/cpio", ["-i", "-d", "--no-absolute-filenames", "-F", dir + "/a.cpio"], cwd: out)
        XCTAssertEqual(st2, 0, err2)
        XCTAssertEqual(try readBytes(out + "/lib/libx.so"), Array("library".utf8))
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/lib"), "usr/lib")
        var s = stat()
        XCTAssertEqual(stat(out + "/usr/lib/libx.so.1", &s), 0)
        XCTAssertEqual(s.st_mode & 0o7777, 0o755)
        XCTAssertEqual(stat(out + "/tmp", &s), 0)
        XCTAssertEqual(s.st_mode & 0o7777, 0o1777)
    }
}

extension CPIOWriterTests {
    func testRootDirectoryEntryComesFirst() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let path = dir + "/a.cpio"
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        var w = CPIOWriter(fd: fd)
        try w.setRootDirectory(mode: 0o755)
        try w.addFile("x", contents: [1])
        XCTAssertThrowsError(try w.setRootDirectory())
        try w.finish()
        close(fd)
        let entries = try parseNewc(try readBytes(path))
        XCTAssertEqual(entries.map(\.name), [".", "x"])
        XCTAssertEqual(entries[0].mode, UInt32(S_IFDIR) | 0o755)
        XCTAssertEqual([entries[0].uid, entries[0].gid], [0, 0])
    }
}
