import Machine
import Runner
@testable import SVMCommand
import XCTest

final class RunOptionsTests: XCTestCase {
    func parse(_ args: [String]) throws -> RunRequest { try RunOptions.parse(args).request }

    func usageError(_ args: [String]) -> String? {
        do { _ = try RunOptions.parse(args); return nil } catch { return error.description }
    }

    func testDefaults() throws {
        let r = try parse(["--", "/bin/echo", "hello", "world"])
        XCTAssertEqual(r, RunRequest(program: "/bin/echo", arguments: ["hello", "world"]))
        XCTAssertEqual(r.memory, 256 << 20)
        XCTAssertEqual(r.cpus, 1)
        XCTAssertEqual(r.workdir, "/tmp")
        XCTAssertNil(r.timeout)
        XCTAssertNil(r.kernel)
        XCTAssertFalse(r.root)
        XCTAssertFalse(r.verbose)
        XCTAssertFalse(r.tty)
        XCTAssertEqual(r.networks, [])
    }

    func testEveryFlag() throws {
        let r = try parse(["--mem", "1G", "--cpus", "2", "--timeout", "90", "--env", "A=1", "-e", "B=", "--env=C=x=y",
                           "--workdir", "/work", "--volume", "/src:/data:ro", "-v", "rel:/out", "--net", "tap=tap0",
                           "--kernel", "/k/vmlinux", "--root", "--verbose", "--tty", "--", "prog", "-x", "--", "--mem"])
        XCTAssertEqual(r.memory, 1 << 30)
        XCTAssertEqual(r.cpus, 2)
        XCTAssertEqual(r.timeout, 90)
        XCTAssertEqual(r.environment, ["A=1", "B=", "C=x=y"])
        XCTAssertEqual(r.workdir, "/work")
        XCTAssertEqual(r.volumes, [.init(hostPath: "/src", guestPath: "/data", readOnly: true),
                                   .init(hostPath: "rel", guestPath: "/out", readOnly: false)])
        XCTAssertEqual(r.networks, [NetworkConfig(tapName: "tap0")])
        XCTAssertEqual(r.kernel, "/k/vmlinux")
        XCTAssertTrue(r.root)
        XCTAssertTrue(r.verbose)
        XCTAssertTrue(r.tty)
        // Everything after the program is the program's, flags and "--" included.
        XCTAssertEqual(r.program, "prog")
        XCTAssertEqual(r.arguments, ["-x", "--", "--mem"])
    }

    func testProgramStartsAtFirstNonOption() throws {
        let r = try parse(["-m", "512", "ls", "-l", "--root"])
        XCTAssertEqual(r.memory, 512 << 20)
        XCTAssertEqual(r.program, "ls")
        XCTAssertEqual(r.arguments, ["-l", "--root"])
        XCTAssertFalse(r.root)
    }

    func testUserAndCopyVolumes() throws {
        let o = try RunOptions.parse(["--user", "1000:100", "--copy-volumes", "--", "p"])
        XCTAssertEqual(o.request.userID, 1000)
        XCTAssertEqual(o.request.groupID, 100)
        XCTAssertTrue(o.request.copyVolumes)
        let u = try RunOptions.parse(["-u", "7", "p"])
        XCTAssertEqual(u.request.userID, 7)
        XCTAssertNil(u.request.groupID)
        XCTAssertFalse(u.request.copyVolumes)
    }

    func testNetNoneClears() throws {
        XCTAssertEqual(try parse(["--net", "tap=t0", "--net", "none", "p"]).networks, [])
        XCTAssertEqual(try parse(["--net", "tap=t0,mac=52:54:00:00:00:01", "p"]).networks,
                       [NetworkConfig(tapName: "t0", mac: "52:54:00:00:00:01")])
    }

    func testHelp() throws {
        XCTAssertTrue(try RunOptions.parse(["--help"]).help)
        XCTAssertTrue(try RunOptions.parse(["-m", "1G", "-h"]).help)
    }

    func testUsageErrors() {
        let cases: [([String], String)] = [
            ([], "no program given"),
            (["--"], "no program given"),
            (["--mem", "1G"], "no program given"),
            (["--frob", "p"], "unknown option --frob"),
            (["--mem"], "--mem needs a value"),
            (["--mem", "lots", "p"], "not a size"),
            (["--mem", "8M", "p"], "at least 16M"),
            (["--cpus", "0", "p"], "--cpus 0"),
            (["--cpus", "many", "p"], "--cpus many"),
            (["--timeout", "-1", "p"], "positive"),
            (["--timeout", "inf", "p"], "positive"),
            (["--env", "NOEQUALS", "p"], "KEY=VALUE"),
            (["-e", "=v", "p"], "KEY=VALUE"),
            (["--workdir", "rel", "p"], "absolute"),
            (["--volume", "/a", "p"], "HOST:GUEST"),
            (["--volume", ":/a", "p"], "HOST:GUEST"),
            (["--volume", "/a:rel", "p"], "absolute"),
            (["--volume", "/a:/", "p"], "cannot be a volume"),
            (["--volume", "/a:/x/../y", "p"], "cannot be a volume"),
            (["--volume", "/a:/b:rx", "p"], "unknown mode"),
            (["--volume", "/a:/svm/x", "p"], "/svm"),
            (["--net", "bridge", "p"], "--net bridge"),
            (["--root=yes", "p"], "takes no value"),
            (["--user", "bob", "p"], "--user bob: must be UID or UID:GID"),
            (["--user", "1:2:3", "p"], "must be UID or UID:GID"),
            (["--user", "1:", "p"], "must be UID or UID:GID"),
            (["--user", "1", "--root", "p"], "cannot be combined"),
        ]
        for (args, expected) in cases {
            guard let message = usageError(args) else {
                XCTFail("\(args) parsed")
                continue
            }
            XCTAssertTrue(message.contains(expected), "\(args): \(message)")
            XCTAssertFalse(message.contains("\n"), message)
        }
    }
}
