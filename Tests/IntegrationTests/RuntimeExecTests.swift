import Glibc
import XCTest

/// `podman exec` into a container running in an svm VM: one boot, then several execs
/// (streams apart, status, stdin, a missing file, a missing program, a signal death),
/// then kill and rm: nothing of it is left. Needs root, /dev/kvm and podman. Names are
/// this test's own (other podman tests may run on the machine at the same time).
/// With SVM_CACHE_DIR set, the runtime is called through a wrapper that passes it on
/// (podman does not pass its environment to the runtime), so a test can use its own init.
final class RuntimeExecTests: XCTestCase {
    func testPodmanExecInARunningContainer() throws {
        try RuntimeTests.requirePodman()
        let tag = "\(getpid())"
        let name = "svm-exec-test-\(tag)"
        let image = "localhost/svm-exec-test-busybox:\(tag)"
        // Short: ROOT/<64-hex id>/virtiofsd-N.sock must fit a socket address (107 bytes).
        let root = "/run/svmx-\(tag)"
        var template = Array("/tmp/svm-exec-test.XXXXXX".utf8CString)
        let work = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { _ = hostCommand(["rm", "-rf", work]) }
        var runtime = RuntimeTests.runtime
        if let cache = ProcessInfo.processInfo.environment["SVM_CACHE_DIR"], !cache.isEmpty {
            runtime = work + "/runtime"
            mustRun(["sh", "-c", "printf '#!/bin/sh\\nSVM_CACHE_DIR=%s exec %s \"$@\"\\n' '\(cache)' '\(RuntimeTests.runtime)' > \(runtime); chmod 755 \(runtime)"])
        }
        try RuntimeTests.importBusybox(as: image)
        let podman = ["podman", "--runtime", runtime, "--runtime-flag", "root=\(root)"]
        defer {
            _ = hostCommand(podman + ["rm", "-f", "-t", "0", name], timeout: 120)
            _ = hostCommand(["podman", "rmi", "-f", image])
        }
        // SVMProcess, not hostCommand: conmon outlives `podman run -d` and keeps any
        // descriptor it inherits, so reading the output to its end would never return.
        func podmanRun(_ args: [String], stdin: String? = nil, timeout: Double = 120) throws -> SVMProcess {
            let p = try SVMProcess(arguments: Array(podman.dropFirst()) + args, binary: "podman")
            if let stdin {
                p.send(stdin)
                p.closeStdin()
            }
            XCTAssertNotNil(p.waitForExit(timeout: timeout), "podman \(args) still runs after \(timeout) s")
            return p
        }
        let started = try podmanRun(["run", "-d", "--name", name, image, "sleep", "1000"])
        guard started.exitStatus == 0 else { return XCTFail("podman run -d: \(started.stderrText)") }
        let id = hostCommand(["podman", "inspect", "-f", "{{.Id}}", name]).output.trimmingCharacters(in: .whitespacesAndNewlines)

        // The first exec waits for the boot (about a minute here).
        let p = try podmanRun(["exec", name, "sh", "-c", "echo out; echo err >&2; cat /etc/hostname; exit 7"], timeout: 600)
        XCTAssertEqual(p.exitStatus, 7, "the exec'd process's status: \(p.stdoutText) / \(p.stderrText)")
        XCTAssertTrue(p.stdoutText.hasPrefix("out\n"), p.stdoutText)
        XCTAssertTrue(p.stdoutText.contains(String(id.prefix(12))), "the container's /etc/hostname: \(p.stdoutText)")
        XCTAssertFalse(p.stdoutText.contains("err"), "stderr stays apart: \(p.stdoutText)")
        XCTAssertEqual(p.stderrText, "err\n")

        let cat = try podmanRun(["exec", "-i", name, "cat"], stdin: "data\n")
        XCTAssertEqual(cat.exitStatus, 0, cat.stderrText)
        XCTAssertEqual(cat.stdoutText, "data\n")

        let missingFile = try podmanRun(["exec", name, "cat", "/nonexistent"])
        XCTAssertNotEqual(missingFile.exitStatus, 0)
        XCTAssertTrue(missingFile.stderrText.contains("/nonexistent"), missingFile.stderrText)
        let missingProgram = try podmanRun(["exec", name, "/nonexistent/prog"])
        XCTAssertEqual(missingProgram.exitStatus, 127, missingProgram.stderrText)
        XCTAssertTrue(missingProgram.stderrText.contains("execve /nonexistent/prog: No such file or directory"), missingProgram.stderrText)
        let signalled = try podmanRun(["exec", name, "sh", "-c", "kill -TERM $$"])
        XCTAssertEqual(signalled.exitStatus, 143, signalled.stderrText)
        // The container's own process went on through all of it.
        XCTAssertEqual(hostCommand(["podman", "inspect", "-f", "{{.State.Running}}", name]).output, "true\n")

        // A signal from the engine reaches the container's process: its status is 128+N.
        XCTAssertEqual(try podmanRun(["kill", "-s", "USR1", name]).exitStatus, 0)
        let waited = try podmanRun(["wait", name])
        XCTAssertEqual(waited.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "138", "SIGUSR1 (10): \(waited.stderrText)")
        XCTAssertEqual(try podmanRun(["rm", "-f", name]).exitStatus, 0)
        var left = "?"
        for _ in 0..<120 {
            left = hostCommand(["sh", "-c", "ls -A \(root) 2>/dev/null"]).output
            if left.isEmpty { break }
            usleep(500_000)
        }
        XCTAssertEqual(left, "", "no state left in \(root)")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*\(root).*_vm"]).status, 0, "no VM process left")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*\(root).*_exec"]).status, 0, "no exec host process left")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "virtiofsd.*\(root)/"]).status, 0, "no virtiofsd left")
    }
}
