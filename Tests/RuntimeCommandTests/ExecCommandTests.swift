import Control
import XCTest
@testable import RuntimeCommand

/// `svm-runtime exec`'s command line (runc's) and the process object it makes.
final class ExecCommandTests: XCTestCase {
    func failure(_ args: [String]) -> String {
        do { _ = try ExecCommand.parse(args); return "accepted" } catch { return error.description }
    }

    func testPodmansFormAndTheCommandForm() throws {
        let podman = try ExecCommand.parse(["--pid-file", "/p", "--process", "/f.json", "--detach", "--console-socket=/s", "abc"])
        XCTAssertEqual(podman, .init(id: "abc", processFile: "/f.json", detach: true, pidFile: "/p"))
        let cli = try ExecCommand.parse(["-e", "A=1", "--env=B=2", "-u", "1000:100", "--cwd", "/tmp", "-g", "5", "--cap", "CAP_KILL",
                                         "--no-new-privs", "-t", "abc", "sh", "-c", "echo --env X=1"])
        XCTAssertEqual(cli.id, "abc")
        XCTAssertEqual(cli.command, ["sh", "-c", "echo --env X=1"], "flags after the command are the command's")
        XCTAssertEqual(cli.env, ["A=1", "B=2"])
        XCTAssertEqual(cli.user?.uid, 1000)
        XCTAssertEqual(cli.user?.gid, 100)
        XCTAssertEqual(cli.cwd, "/tmp")
        XCTAssertEqual(cli.additionalGids, [5])
        XCTAssertEqual(cli.capabilities, ["CAP_KILL"])
        XCTAssertTrue(cli.noNewPrivileges && cli.tty && !cli.detach)
        XCTAssertNil(try ExecCommand.parse(["-u", "7", "x", "id"]).user?.gid)
    }

    func testBadCommandLinesAreOneLine() {
        XCTAssertEqual(failure([]), "exec needs a container ID")
        XCTAssertEqual(failure(["abc"]), "exec needs --process FILE or a command after the container ID")
        XCTAssertEqual(failure(["-u", "root", "abc", "id"]), "--user root: not uid[:gid] in numbers")
        XCTAssertEqual(failure(["-u", "1:2:3", "abc", "id"]), "--user 1:2:3: not uid[:gid] in numbers")
        XCTAssertEqual(failure(["-e", "NOEQUALS", "abc", "id"]), "--env NOEQUALS: not KEY=VALUE")
        XCTAssertEqual(failure(["-g", "x", "abc", "id"]), "--additional-gids x: not a gid")
        XCTAssertEqual(failure(["--bogus", "abc", "id"]), "unknown flag --bogus")
        XCTAssertEqual(failure(["abc", "--process"]).contains("accepted"), true, "after the ID it is the command")
    }

    func testCommandFormStartsFromTheContainersProcess() throws {
        let base = try JSONParser.parse(Array("""
            {"args":["sleep","1000"],"env":["PATH=/bin","A=old"],"cwd":"/","user":{"uid":0,"gid":0},
             "capabilities":{"bounding":["CAP_CHOWN"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"]}}
            """.utf8))
        let o = try ExecCommand.parse(["-e", "A=new", "--cwd", "/tmp", "-u", "5:6", "--cap", "CAP_KILL", "abc", "ls", "-l"])
        let p = try ExecCommand.processObject(o, base: base)
        XCTAssertEqual(p["args"], .array([.string("ls"), .string("-l")]))
        XCTAssertEqual(p["env"], .array([.string("PATH=/bin"), .string("A=new")]))
        XCTAssertEqual(p["cwd"], .string("/tmp"))
        XCTAssertEqual(p["user"]?["uid"], .int(5))
        XCTAssertEqual(p["user"]?["gid"], .int(6))
        XCTAssertEqual(p["capabilities"]?["effective"], .array([.string("CAP_CHOWN"), .string("CAP_KILL")]))
        XCTAssertThrowsError(try ExecCommand.processObject(try ExecCommand.parse(["-t", "abc", "sh"]), base: base)) {
            XCTAssertTrue("\($0)".contains("terminal"), "\($0)")
        }
    }

    func testProcessFileIsReadAndChecked() throws {
        let dir = NSTemporaryDirectory() + "svm-exec-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"args":["cat"],"cwd":"/","env":["PATH=/bin"]}"#.write(toFile: dir + "/ok.json", atomically: true, encoding: .utf8)
        try #"{"args":"cat"}"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        let ok = try ExecCommand.processObject(try ExecCommand.parse(["-p", dir + "/ok.json", "abc"]), base: nil)
        XCTAssertEqual(ok["args"], .array([.string("cat")]))
        XCTAssertThrowsError(try ExecCommand.processObject(try ExecCommand.parse(["-p", dir + "/bad.json", "abc"]), base: nil)) {
            XCTAssertEqual("\($0)", "exec process: args must be an array")
        }
        XCTAssertThrowsError(try ExecCommand.processObject(try ExecCommand.parse(["-p", dir + "/missing", "abc"]), base: nil)) {
            XCTAssertTrue("\($0)".hasPrefix("--process \(dir)/missing: "), "\($0)")
        }
    }
}
