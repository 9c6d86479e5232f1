import Control
@testable import OCI
import Sandbox
import XCTest

/// An exec's process.json: decoded like config.json's process, refused with a line that
/// names the field, and turned into the guest's request.
final class ExecSpecTests: XCTestCase {
    func request(_ json: String) throws -> ExecProcess {
        try ExecSpec.request(for: try ExecSpec.decodeProcess(json: Array(json.utf8)))
    }

    func refusal(_ json: String) -> String {
        do { _ = try request(json); return "accepted" } catch { return "\(error)" }
    }

    func testPodmanLikeProcess() throws {
        let r = try request("""
            {"terminal":false,"user":{"uid":1000,"gid":100,"additionalGids":[4]},"args":["sh","-c","exit 7"],
             "env":["PATH=/bin","TERM=xterm"],"cwd":"/tmp","noNewPrivileges":true,
             "capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"]}}
            """)
        XCTAssertEqual(r.argv, ["sh", "-c", "exit 7"])
        XCTAssertEqual(r.env, ["PATH=/bin", "TERM=xterm"])
        XCTAssertEqual(r.cwd, "/tmp")
        XCTAssertEqual([r.uid, r.gid], [1000, 100])
        XCTAssertEqual(r.additionalGids, [4])
        XCTAssertTrue(r.noNewPrivileges)
        XCTAssertEqual(r.capabilities?.bounding, 1 << 0 | 1 << 5)
        XCTAssertEqual(r.capabilities?.effective, 1)
        XCTAssertEqual(r.capabilities?.ambient, 0)
    }

    func testMinimalProcessDefaults() throws {
        let r = try request(#"{"args":["true"]}"#)
        XCTAssertEqual(r.cwd, "/")
        XCTAssertEqual([r.uid, r.gid], [0, 0])
        XCTAssertNil(r.capabilities)
    }

    func testRefusalsNameTheField() {
        XCTAssertEqual(refusal("[1]"), "exec process: not a JSON object")
        XCTAssertTrue(refusal("{").hasPrefix("exec process: "), refusal("{"))
        XCTAssertEqual(refusal(#"{"args":"sh"}"#), "exec process: args must be an array")
        XCTAssertEqual(refusal(#"{"args":[]}"#), "exec process: args is empty")
        XCTAssertEqual(refusal(#"{"args":["sh"],"cwd":"tmp"}"#), "exec process: cwd tmp is not absolute")
        XCTAssertEqual(refusal(#"{"args":["sh"],"env":["=x"]}"#), #"exec process: env entry "=x" is not KEY=VALUE"#)
        XCTAssertEqual(refusal(#"{"args":["sh"],"user":{"uid":-1}}"#), "exec process: user.uid must be an integer from 0 to 2^64-1")
        XCTAssertEqual(refusal(#"{"args":["sh"],"capabilities":{"effective":["CAP_NOPE"]}}"#),
                       "exec process: capabilities.effective: unknown capability CAP_NOPE")
        XCTAssertTrue(refusal(#"{"args":["sh"],"terminal":true}"#).contains("terminal"), refusal(#"{"args":["sh"],"terminal":true}"#))
    }
}
