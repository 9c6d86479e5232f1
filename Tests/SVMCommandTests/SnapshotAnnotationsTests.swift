import XCTest
import Machine
import Snapshot
@testable import SVMCommand

/// What the command line keeps in a snapshot's manifest, and how `svm restore` reads it.
final class SnapshotAnnotationsTests: XCTestCase {
    func manifest(_ entries: [(key: String, value: String)]) throws -> Manifest {
        var m = Manifest()
        for e in entries { m.append(e.key, e.value) }
        return try Manifest.parse(m.encoded())
    }

    func testOptionsRoundTripWithoutNameOrDetach() throws {
        var o = try BootOptions.parse(["--mem", "256M", "--disk", "/tmp/a b.img", "--cmdline", "console=ttyS0 x=\"q\"",
                                       "--name", "web", "-d", "--net", "tap=t0,mac=52:54:00:00:00:01"])
        let m = try manifest(SnapshotAnnotations.make(options: o))
        guard case let .success(back) = SnapshotAnnotations.options(from: m, directory: "d") else { return XCTFail("refused") }
        o.name = nil
        o.detach = false
        XCTAssertEqual(back, o)
    }

    func testAnotherVersionIsRefusedWithStatus4() throws {
        var entries = SnapshotAnnotations.make(options: BootOptions())
        entries[0].value = "svm 0.1.9"
        guard case let .failure(f) = SnapshotAnnotations.options(from: try manifest(entries), directory: "snap") else {
            return XCTFail("another version was accepted")
        }
        XCTAssertEqual(f.status, .snapshotRefused)
        XCTAssertTrue(f.message.contains("svm 0.1.9") && f.message.contains(SVMCommand.version), f.message)
    }

    func testMissingOrBadOptionsAreRefused() throws {
        let version = (SnapshotAnnotations.versionKey, SVMCommand.version)
        for entries in [[version], [version, (SnapshotAnnotations.optionsKey, "{not json")], [(SnapshotAnnotations.optionsKey, "{}")]] {
            guard case let .failure(f) = SnapshotAnnotations.options(from: try manifest(entries), directory: "d") else {
                return XCTFail("accepted \(entries)")
            }
            XCTAssertEqual(f.status, .snapshotRefused)
        }
    }

    func testSnapshotErrorsMapToTheirStatuses() {
        XCTAssertEqual(BootConfiguration.status(for: .snapshot(.checksumMismatch(file: "memory"))), 4)
        XCTAssertEqual(BootConfiguration.status(for: .snapshot(.incompatible("cpu"))), 4)
        XCTAssertEqual(BootConfiguration.status(for: .snapshot(.formatVersion(found: 2, expected: 1))), 4)
        XCTAssertEqual(BootConfiguration.status(for: .snapshot(.io(operation: "write", errno: 28))), 3)
        XCTAssertEqual(BootConfiguration.status(for: .snapshot(.unsupported("shares"))), 2)
        XCTAssertEqual(ExitCode.status(for: .savedToSnapshot), 0)
    }
}
