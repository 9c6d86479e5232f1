import Glibc
import Host
import XCTest
@testable import Control

final class StateDirectoryTests: XCTestCase {
    func testClaimCreatesAPrivateDirectoryAndAClashIsRefused() throws {
        let root = try temporaryDirectory(self) + "/run"
        let dirs = StateDirectory(root: root)
        let claim = try dirs.claim("web")
        var st = stat()
        XCTAssertEqual(stat(root, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)
        XCTAssertEqual(stat(root + "/web", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)
        XCTAssertThrowsError(try dirs.claim("web")) { error in
            XCTAssertEqual(error as? StateDirectory.Failure, .nameInUse("web"))
        }
        XCTAssertTrue(dirs.record(of: "web")?.live == true)
        claim.release()
        XCTAssertTrue(dirs.record(of: "web")?.live == false)
        let again = try dirs.claim("web")
        again.release()
    }

    func testALockHeldByAnotherProcessMeansLive() throws {
        let root = try temporaryDirectory(self)
        let dirs = StateDirectory(root: root)
        let claim = try dirs.claim("vm")
        claim.release()
        // flock(1) holds the lock in another process for a while.
        let holder = startProcess(["/usr/bin/flock", root + "/vm/lock", "/bin/sleep", "30"])
        defer {
            kill(holder, SIGKILL)
            var s: Int32 = 0
            waitpid(holder, &s, 0)
        }
        var live = false
        for _ in 0..<100 where !live {
            live = dirs.record(of: "vm")?.live == true
            usleep(20_000)
        }
        XCTAssertTrue(live)
        XCTAssertThrowsError(try dirs.claim("vm"))
        XCTAssertThrowsError(try dirs.remove("vm")) { error in
            XCTAssertEqual(error as? StateDirectory.Failure, .running("vm"))
        }
    }

    func testStaleAndExitedDirectories() throws {
        let root = try temporaryDirectory(self)
        let dirs = StateDirectory(root: root)
        let stale = try dirs.claim("stale")
        try stale.writePID(999_999)
        stale.release()
        let record = try XCTUnwrap(dirs.record(of: "stale"))
        XCTAssertFalse(record.live, "a stale directory showed as live")
        XCTAssertNil(record.exit)
        XCTAssertEqual(record.pid, 999_999)

        let done = try dirs.claim("done")
        try done.writeConfig(Array("{}".utf8))
        try done.writeExitRecord(ExitRecord(status: 137, reason: "VM killed", endedAt: 1))
        done.release()
        let exited = try XCTUnwrap(dirs.record(of: "done"))
        XCTAssertEqual(exited.exit?.status, 137)
        XCTAssertEqual(exited.config, Array("{}".utf8))
        XCTAssertEqual(dirs.list().map(\.name), ["done", "stale"])

        // Claiming an exited VM's name clears its old files.
        let reused = try dirs.claim("done")
        XCTAssertNil(dirs.record(of: "done")?.exit)
        reused.release()
        try dirs.remove("done")
        XCTAssertNil(dirs.record(of: "done"))
        XCTAssertThrowsError(try dirs.remove("done"))
    }

    func testDiscardLeavesNothing() throws {
        let root = try temporaryDirectory(self)
        let dirs = StateDirectory(root: root)
        let claim = try dirs.claim("x")
        try claim.writeConfig([1])
        claim.discard()
        XCTAssertNotEqual(access(root + "/x", F_OK), 0)
    }

    func testInvalidNamesAndUnsafeDirectories() throws {
        let root = try temporaryDirectory(self)
        let dirs = StateDirectory(root: root)
        for bad in ["../x", "a/b", "", "-x"] {
            XCTAssertThrowsError(try dirs.claim(bad), bad)
        }
        chmod(root, 0o777)
        XCTAssertThrowsError(try dirs.claim("ok")) { error in
            guard case .unsafe = error as? StateDirectory.Failure else { return XCTFail("\(error)") }
        }
        chmod(root, 0o700)
    }

    func testRootFollowsTheEnvironment() {
        XCTAssertEqual(StateDirectory.root(environment: ["SVM_RUN_DIR": "/x"], euid: 0), "/x")
        XCTAssertEqual(StateDirectory.root(environment: [:], euid: 0), "/run/svm")
        XCTAssertEqual(StateDirectory.root(environment: ["XDG_RUNTIME_DIR": "/run/user/5"], euid: 5), "/run/user/5/svm")
        XCTAssertEqual(StateDirectory.root(environment: [:], euid: 5), "/tmp/svm-5")
    }
}
