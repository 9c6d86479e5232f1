import XCTest
@testable import Snapshot

final class ManifestTests: XCTestCase {
    func sample() -> Manifest {
        var m = Manifest()
        m.append("svm-version", "svm 0.2.0")
        m.append("disk", "0 rw 1048576 17 42 /tmp/a b.img")
        m.append("disk", "1 ro 2048 18 43 /tmp/c.img")
        m.append("boot-options", #"{"cpus":1,"commandLine":"console=ttyS0 x=\"y\""}"#)
        return m
    }

    func testRoundTripKeepsOrderAndRepeatedKeys() throws {
        let parsed = try Manifest.parse(sample().encoded())
        XCTAssertEqual(parsed, sample())
        XCTAssertEqual(parsed["svm-version"], "svm 0.2.0")
        XCTAssertEqual(parsed.values("disk"), ["0 rw 1048576 17 42 /tmp/a b.img", "1 ro 2048 18 43 /tmp/c.img"])
        XCTAssertNil(parsed["absent"])
        XCTAssertThrowsError(try parsed.required("absent"))
    }

    func testTextIsReadable() {
        let text = String(decoding: sample().encoded(), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("svm-snapshot 1\nsvm-version svm 0.2.0\n"), text)
        XCTAssertTrue(text.split(separator: "\n").last!.hasPrefix("checksum "), text)
    }

    func testAnyChangedByteIsRefused() {
        let bytes = sample().encoded()
        // Every byte of the body and of the checksum itself.
        for i in 0..<(bytes.count - 1) where bytes[i] != UInt8(ascii: "\n") {
            var damaged = bytes
            damaged[i] ^= 0x01
            XCTAssertThrowsError(try Manifest.parse(damaged), "byte \(i) changed and still accepted")
        }
    }

    func testChecksumMismatchIsNamed() {
        var bytes = sample().encoded()
        bytes[20] = UInt8(ascii: "X")
        XCTAssertThrowsError(try Manifest.parse(bytes)) { error in
            XCTAssertEqual(error as? SnapshotError, .checksumMismatch(file: "manifest"))
        }
    }

    func testOtherFormatVersionIsRefusedAsSuch() {
        var m = Array("svm-snapshot 2\ncpus 1\n".utf8)
        m += Array("checksum \(Checksum.of(m).hex)\n".utf8)
        XCTAssertThrowsError(try Manifest.parse(m)) { error in
            XCTAssertEqual(error as? SnapshotError, .formatVersion(found: 2, expected: 1))
        }
    }

    func testNotAManifest() {
        for text in ["", "hello\n", "svm-snapshot 1\n", "svm-snapshot x\nchecksum 0\n", "svm-snapshot 1\ncpus 1"] {
            XCTAssertThrowsError(try Manifest.parse(Array(text.utf8)), text)
        }
        XCTAssertThrowsError(try Manifest.parse([0xff, 0xfe, 0x0a]))
    }
}

final class StateCodingTests: XCTestCase {
    struct Raw: Equatable { var a: UInt32; var b: UInt16; var c: (UInt8, UInt8)
        static func == (x: Raw, y: Raw) -> Bool { x.a == y.a && x.b == y.b && x.c == y.c } }

    func testRoundTripOfEveryKind() throws {
        var w = StateWriter()
        w.put(UInt8(7))
        w.put(UInt64.max - 1)
        w.put(true)
        w.put("grüße")
        w.putRaw(Raw(a: 0xdead_beef, b: 0x1234, c: (1, 2)))
        w.section("inner") { $0.put(UInt16(0xabcd)) }
        var r = StateReader(w.bytes)
        XCTAssertEqual(try r.get(UInt8.self), 7)
        XCTAssertEqual(try r.get(UInt64.self), UInt64.max - 1)
        XCTAssertEqual(try r.getBool(), true)
        XCTAssertEqual(try r.getString(), "grüße")
        XCTAssertEqual(try r.getRaw(Raw.self, "raw"), Raw(a: 0xdead_beef, b: 0x1234, c: (1, 2)))
        var inner = try r.section("inner")
        XCTAssertEqual(try inner.get(UInt16.self), 0xabcd)
        XCTAssertNoThrow(try inner.finish())
        XCTAssertTrue(r.isAtEnd)
    }

    func testTruncationWrongSectionAndWrongSizeAreErrors() {
        var w = StateWriter()
        w.section("vcpus") { $0.put(UInt32(1)); $0.putRaw(UInt64(5)) }
        for cut in 0..<w.bytes.count {
            var r = StateReader(Array(w.bytes[..<cut]))
            XCTAssertThrowsError(try { var s = try r.section("vcpus"); _ = try s.get(UInt32.self); _ = try s.getRaw(UInt64.self, "x") }(), "cut at \(cut)")
        }
        var wrongName = StateReader(w.bytes)
        XCTAssertThrowsError(try wrongName.section("vm"))
        var wrongSize = StateReader(w.bytes)
        XCTAssertThrowsError(try { var s = try wrongSize.section("vcpus"); _ = try s.get(UInt32.self); _ = try s.getRaw(UInt32.self, "x") }())
        var leftover = StateReader(w.bytes)
        XCTAssertThrowsError(try { var s = try leftover.section("vcpus"); _ = try s.get(UInt32.self); try s.finish() }())
        var badBool = StateReader([2])
        XCTAssertThrowsError(try badBool.getBool())
    }
}
