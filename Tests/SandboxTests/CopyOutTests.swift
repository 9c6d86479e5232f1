import Foundation
import Sandbox
import TestSupport
import XCTest

/// Builds newc archives as a hostile guest could: any name, any mode, any size field.
struct RawArchive {
    var bytes: [UInt8] = []

    mutating func entry(_ name: String, mode: UInt32, data: [UInt8] = [], sizeField: UInt32? = nil,
                        nameSizeField: UInt32? = nil, check: UInt32 = 0) {
        let nameBytes = Array(name.utf8) + [0]
        let fields: [UInt32] = [1, mode, 0, 0, 1, 0, sizeField ?? UInt32(data.count), 0, 0, 0, 0,
                                nameSizeField ?? UInt32(nameBytes.count), check]
        bytes += Array("070701".utf8)
        for f in fields { bytes += Array(String(format: "%08X", f).utf8) }
        bytes += nameBytes
        pad()
        bytes += data
        pad()
    }

    mutating func file(_ name: String, _ text: String, mode: UInt32 = 0o644) {
        entry(name, mode: 0o100000 | mode, data: Array(text.utf8))
    }
    mutating func directory(_ name: String, mode: UInt32 = 0o755) { entry(name, mode: 0o040000 | mode) }
    mutating func symlink(_ name: String, to target: String) {
        entry(name, mode: 0o120777, data: Array(target.utf8))
    }
    mutating func trailer() { entry("TRAILER!!!", mode: 0) }
    private mutating func pad() { while bytes.count % 4 != 0 { bytes.append(0) } }
}

final class CopyOutTests: XCTestCase {
    var dir = ""
    var volume: String { dir + "/vol" }
    var outside: String { dir + "/outside" }

    override func setUpWithError() throws {
        dir = try makeTempDir("copyout")
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "secret\n".write(toFile: outside + "/target.txt", atomically: false, encoding: .utf8)
    }

    override func tearDown() { removeTree(dir) }

    func archiveFile(_ bytes: [UInt8]) throws -> Int32 {
        let path = dir + "/archive.\(UUID().uuidString)"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw TestFailure("open \(path)") }
        unlink(path)
        XCTAssertEqual(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, bytes.count)
        return fd
    }

    /// Parses and applies to volume 0; returns the applier's notes.
    @discardableResult
    func apply(_ a: RawArchive, copiedIn: Set<String> = [], volumes: Set<Int> = [0]) throws -> [String] {
        let fd = try archiveFile(a.bytes)
        defer { close(fd) }
        let archive = try CopyOutArchive(fd: fd, volumes: volumes)
        var applier = CopyOutApplier(archiveFD: fd)
        try applier.apply(archive.entries.filter { $0.volume == 0 }, copiedIn: copiedIn, hostRoot: volume)
        return applier.notes
    }

    func refused(_ a: RawArchive, volumes: Set<Int> = [0], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let fd = try archiveFile(a.bytes)
        defer { close(fd) }
        do {
            _ = try CopyOutArchive(fd: fd, volumes: volumes)
            XCTFail("archive accepted", file: file, line: line)
            return ""
        } catch { return error.description }
    }

    func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    func assertOutsideUntouched(_ context: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(read(outside + "/target.txt"), "secret\n", context(), file: file, line: line)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), ["target.txt"], context(),
                       file: file, line: line)
    }

    func mode(_ path: String) -> UInt32 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        return UInt32(st.st_mode)
    }

    // MARK: - What a well-behaved guest sends

    func testCreatesChangesAndDeletes() throws {
        try "old\n".write(toFile: volume + "/mod.txt", atomically: false, encoding: .utf8)
        try "bye\n".write(toFile: volume + "/del.txt", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: volume + "/sub", withIntermediateDirectories: true)
        try "x\n".write(toFile: volume + "/sub/gone.txt", atomically: false, encoding: .utf8)
        var a = RawArchive()
        a.file("0/mod.txt", "changed\n", mode: 0o600)
        a.directory("0/d1", mode: 0o750)
        a.directory("0/d1/d2", mode: 0o500)  // read-only: still filled, its mode set last
        a.file("0/d1/d2/f", "deep\n", mode: 0o6755)  // setuid/setgid dropped
        a.symlink("0/link", to: "d1/d2/f")
        a.trailer()
        let notes = try apply(a, copiedIn: ["mod.txt", "del.txt", "sub", "sub/gone.txt"])
        XCTAssertEqual(notes, [])
        XCTAssertEqual(read(volume + "/mod.txt"), "changed\n")
        XCTAssertEqual(mode(volume + "/mod.txt") & 0o7777, 0o600)
        XCTAssertEqual(read(volume + "/d1/d2/f"), "deep\n")
        XCTAssertEqual(mode(volume + "/d1/d2/f") & 0o7777, 0o755)
        XCTAssertEqual(mode(volume + "/d1/d2") & 0o7777, 0o500)
        XCTAssertEqual(mode(volume + "/d1") & 0o7777, 0o750)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: volume + "/link"), "d1/d2/f")
        XCTAssertNil(read(volume + "/del.txt"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: volume + "/sub"))
        let left = try FileManager.default.contentsOfDirectory(atPath: volume).sorted()
        XCTAssertEqual(left, ["d1", "link", "mod.txt"], "no temporary files left")
    }

    func testHostFilesNotCopiedInAreKept() throws {
        try "host\n".write(toFile: volume + "/host-only.txt", atomically: false, encoding: .utf8)
        var a = RawArchive()
        a.trailer()
        try apply(a, copiedIn: [])
        XCTAssertEqual(read(volume + "/host-only.txt"), "host\n")
    }

    func testTypeChangesReplaceWhatWasThere() throws {
        try FileManager.default.createDirectory(atPath: volume + "/was-dir", withIntermediateDirectories: true)
        try "f\n".write(toFile: volume + "/was-dir/f", atomically: false, encoding: .utf8)
        try "f\n".write(toFile: volume + "/was-file", atomically: false, encoding: .utf8)
        var a = RawArchive()
        a.file("0/was-dir", "now a file\n")
        a.directory("0/was-file")
        a.trailer()
        XCTAssertEqual(try apply(a, copiedIn: ["was-dir", "was-dir/f", "was-file"]), [])
        XCTAssertEqual(read(volume + "/was-dir"), "now a file\n")
        XCTAssertEqual(mode(volume + "/was-file") & S_IFMT, S_IFDIR)
    }

    // MARK: - Hostile archives

    func testSymlinkThenWriteThroughIsNeverFollowed() throws {
        var a = RawArchive()
        a.symlink("0/evil", to: outside)
        a.file("0/evil/target.txt", "pwned\n")
        a.file("0/evil/new.txt", "pwned\n")
        a.directory("0/evil/newdir")
        a.symlink("0/evil/link", to: "/")
        a.symlink("0/evil2", to: outside + "/target.txt")
        a.file("0/evil2", "replaces the link, not its target\n")
        a.symlink("0/evil3", to: outside)
        a.directory("0/evil3")  // a directory where the link is: replaces the link
        a.trailer()
        let notes = try apply(a)
        XCTAssertEqual(notes.count, 4, "\(notes)")
        XCTAssertTrue(notes.allSatisfy { $0.contains("symlinks are never followed") }, "\(notes)")
        assertOutsideUntouched()
        XCTAssertEqual(read(volume + "/evil2"), "replaces the link, not its target\n")
        XCTAssertEqual(mode(volume + "/evil2") & S_IFMT, S_IFREG)
        XCTAssertEqual(mode(volume + "/evil3") & S_IFMT, S_IFDIR)
    }

    func testDeletionDoesNotFollowASymlinkTheHostHas() throws {
        // The host volume itself has a symlink to the outside; a copied-in path below it
        // that the guest "deleted" must not delete the outside file.
        symlink(outside, volume + "/hostlink")
        var a = RawArchive()
        a.trailer()
        try apply(a, copiedIn: ["hostlink/target.txt"])
        assertOutsideUntouched()
    }

    func testTraversalAndAbsoluteNamesRefuseTheArchive() throws {
        for name in ["0/../outside/target.txt", "0/a/../../x", "/0/x", "0//x", "0/./x", "0/x/", "0",
                     "../0/x", "00/x", "+0/x", "1/x", "0/" + String(repeating: "n", count: 256)] {
            var a = RawArchive()
            a.file(name, "pwned\n")
            a.trailer()
            let error = try refused(a)
            XCTAssertFalse(error.isEmpty, name)
        }
        assertOutsideUntouched()
    }

    func testDevicesAndFIFOsRefuseTheArchive() throws {
        for mode: UInt32 in [0o020666, 0o060666, 0o010666, 0o140666, 0] {
            var a = RawArchive()
            a.entry("0/dev", mode: mode)
            a.trailer()
            XCTAssertTrue(try refused(a).contains("not a directory, file or symlink"))
        }
    }

    func testHugeAndInconsistentSizesRefuseTheArchive() throws {
        var a = RawArchive()
        a.entry("0/big", mode: 0o100644, data: Array("abc".utf8), sizeField: 0xFFFF_FFFF)
        a.trailer()
        XCTAssertTrue(try refused(a).contains("archive ends first"))

        var b = RawArchive()
        b.entry("0/name", mode: 0o100644, nameSizeField: 0xFFFF_FFFF)
        b.trailer()
        XCTAssertTrue(try refused(b).contains("name size"))

        var c = RawArchive()
        c.entry("0/link", mode: 0o120777, data: Array(repeating: UInt8(ascii: "a"), count: 5000))
        c.trailer()
        XCTAssertTrue(try refused(c).contains("symlink target"))

        var d = RawArchive()
        d.entry("0/dir", mode: 0o040755, data: [1, 2, 3, 4])
        d.trailer()
        XCTAssertTrue(try refused(d).contains("directory with data"))

        var e = RawArchive()
        e.file("0/a\u{0}b", "x")
        e.trailer()
        XCTAssertTrue(try refused(e).contains("NUL"))
    }

    func testEveryTruncationIsRefused() throws {
        var a = RawArchive()
        a.directory("0/d")
        a.file("0/d/f", "some data\n")
        a.symlink("0/l", to: "d/f")
        a.trailer()
        for length in 0..<a.bytes.count {
            var cut = RawArchive()
            cut.bytes = Array(a.bytes[0..<length])
            XCTAssertFalse(try refused(cut).isEmpty, "prefix of \(length) bytes")
        }
        var extra = a
        extra.bytes += [0, 0, 0, 0]
        XCTAssertTrue(try refused(extra).contains("after the trailer"))
    }

    /// Random corruptions of a valid archive: the reader never crashes, and whatever it
    /// accepts, applying it never touches anything outside the volume. Seeded (default or
    /// $SVM_FUZZ_SEED), so a failure replays.
    func testFuzzedArchivesStayInsideTheVolume() throws {
        var base = RawArchive()
        base.symlink("0/evil", to: outside)
        base.file("0/evil/target.txt", "pwned\n")
        base.directory("0/d")
        base.file("0/d/f", "data\n")
        base.symlink("0/d/up", to: "../../outside")
        base.file("0/d/up/target.txt", "pwned\n")
        base.trailer()
        let seed = fuzzSeed(default: 0x5356_4D63_6F70_7921)  // "SVMcopy!"
        var rng = SplitMix64(seed: seed)
        var accepted = 0
        let alphabet = Array("0123456789ABCDEF/.\u{0}7x".utf8)
        for iteration in 0..<2000 {
            var a = base
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<a.bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: a.bytes[i] = alphabet.randomElement(using: &rng)!
                case 1: a.bytes[i] = UInt8.random(in: 0...255, using: &rng)
                default: a.bytes.removeSubrange(i..<min(a.bytes.count, i + Int.random(in: 1...8, using: &rng)))
                }
                if a.bytes.isEmpty { break }
            }
            let fd = try archiveFile(a.bytes)
            defer { close(fd) }
            guard let archive = try? CopyOutArchive(fd: fd, volumes: [0]) else { continue }
            accepted += 1
            var applier = CopyOutApplier(archiveFD: fd)
            try? applier.apply(archive.entries.filter { $0.volume == 0 }, copiedIn: ["d", "d/f"], hostRoot: volume)
            assertOutsideUntouched("SVM_FUZZ_SEED=\(seed), iteration \(iteration)")
        }
        XCTAssertLessThan(accepted, 2000, "SVM_FUZZ_SEED=\(seed)")
    }
}

extension CopyOutTests {
    /// Unchanged files stay the same inode (and mtime); a changed mode is still applied.
    func testUnchangedFilesAreLeftInPlace() throws {
        try "same\n".write(toFile: volume + "/same.txt", atomically: false, encoding: .utf8)
        try "same\n".write(toFile: volume + "/chmod.txt", atomically: false, encoding: .utf8)
        var before = stat(), beforeChmod = stat()
        lstat(volume + "/same.txt", &before)
        lstat(volume + "/chmod.txt", &beforeChmod)
        var a = RawArchive()
        a.file("0/same.txt", "same\n", mode: UInt32(before.st_mode) & 0o777)
        a.file("0/chmod.txt", "same\n", mode: 0o600)
        a.trailer()
        try apply(a, copiedIn: ["same.txt", "chmod.txt"])
        var after = stat(), afterChmod = stat()
        lstat(volume + "/same.txt", &after)
        lstat(volume + "/chmod.txt", &afterChmod)
        XCTAssertEqual(after.st_ino, before.st_ino)
        XCTAssertEqual(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec)
        XCTAssertEqual(afterChmod.st_ino, beforeChmod.st_ino)
        XCTAssertEqual(afterChmod.st_mode & 0o7777, 0o600)
    }

    /// A host file with a second link (say, to a file outside the volume) is replaced, not
    /// changed in place, even when only its mode differs.
    func testHardLinkedFilesAreNeverChangedInPlace() throws {
        link(outside + "/target.txt", volume + "/linked.txt")
        var a = RawArchive()
        a.file("0/linked.txt", "secret\n", mode: 0o600)
        a.trailer()
        try apply(a, copiedIn: ["linked.txt"])
        assertOutsideUntouched()
        XCTAssertNotEqual(mode(outside + "/target.txt") & 0o7777, 0o600)
        XCTAssertEqual(mode(volume + "/linked.txt") & 0o7777, 0o600)
    }
}

extension CopyOutTests {
    /// A file reported unchanged keeps the host's copy and is not deleted; the check field
    /// means nothing else.
    func testUnchangedFilesAreKeptAndTheCheckFieldIsStrict() throws {
        try "host\n".write(toFile: volume + "/kept.txt", atomically: false, encoding: .utf8)
        var a = RawArchive()
        a.entry("0/kept.txt", mode: 0o100600, check: 1)
        a.entry("0/not-there.txt", mode: 0o100600, check: 1)
        a.trailer()
        XCTAssertEqual(try apply(a, copiedIn: ["kept.txt"]), [])
        XCTAssertEqual(read(volume + "/kept.txt"), "host\n")
        XCTAssertNil(read(volume + "/not-there.txt"))

        for (mode, data, check) in [(UInt32(0o100644), [UInt8]([1]), UInt32(1)), (0o040755, [], 1), (0o120777, [0x61], 1),
                                    (0o100644, [], 2)] {
            var b = RawArchive()
            b.entry("0/x", mode: mode, data: data, check: check)
            b.trailer()
            XCTAssertTrue(try refused(b).contains("check field"), "mode \(String(mode, radix: 8)) check \(check)")
        }
    }
}
