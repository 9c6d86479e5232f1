import Foundation
import Glibc
import XCTest

/// svm-runtime under containerd's runc shim (the path of Docker, ctr and Kubernetes' CRI):
/// containerd started here as a plain process (systemd is not PID 1 on our machines) with
/// its own socket, root and state, a busybox image imported from a podman archive (no
/// registry), and `ctr run --runc-binary`. One boot. Needs root, /dev/kvm, podman,
/// containerd and ctr.
final class RuntimeEngineTests: XCTestCase {
    func testCtrRunsAContainerThroughTheShim() throws {
        try RuntimeTests.requirePodman()
        for tool in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            guard hostCommand(["sh", "-c", "command -v \(tool)"]).status == 0 else { throw XCTSkip("needs \(tool) (containerd)") }
        }
        var template = Array("/tmp/svm-ctrd.XXXXXX".utf8CString)
        let dir = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { _ = hostCommand(["rm", "-rf", dir]) }
        let image = "localhost/svm-test-busybox-ctr:1"
        try RuntimeTests.importBusybox(as: image)
        defer { _ = hostCommand(["podman", "rmi", "-f", image]) }
        mustRun(["podman", "save", "-q", "--format", "docker-archive", "-o", dir + "/image.tar", image])

        let socket = dir + "/containerd.sock"
        guard let daemon = spawnDaemon(["containerd", "--address", socket, "--root", dir + "/root", "--state", dir + "/state"],
                                       log: dir + "/containerd.log") else {
            return XCTFail("containerd did not start: \(String(cString: strerror(errno)))")
        }
        defer {
            // Ended by its pid (no systemd here); its shims end with their tasks.
            endDaemon(daemon)
        }
        var up = false
        for _ in 0..<100 where !up {
            up = hostCommand(["ctr", "-a", socket, "version"]).status == 0
            if !up { usleep(100_000) }
        }
        XCTAssertTrue(up, "containerd answers on \(socket): \((try? String(contentsOfFile: dir + "/containerd.log", encoding: .utf8))?.suffix(500) ?? "")")
        mustRun(["ctr", "-a", socket, "images", "import", dir + "/image.tar"])
        let run = hostCommand(["ctr", "-a", socket, "run", "--rm", "--runc-binary", RuntimeTests.runtime, image, "svm-ctr-test",
                               "sh", "-c", "echo hello-from-ctr; echo kernel=$(uname -r); exit 4"], timeout: 600)
        XCTAssertEqual(run.status, 4, "the container's status through the shim: \(run.output)")
        XCTAssertTrue(run.output.contains("hello-from-ctr"), run.output)
        let hostKernel = hostCommand(["uname", "-r"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(run.output.contains("kernel=\(hostKernel)\n"), "the guest's kernel: \(run.output)")
        // The shim passed --root; the container's state there and its VM are gone.
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*_vm svm-ctr-test"]).status, 0, "no VM process left")
        XCTAssertEqual(hostCommand(["sh", "-c", "ls -A \(dir)/state/io.containerd.runtime.v2.task/default 2>/dev/null"]).output, "",
                       "containerd's task state is gone")
    }
}

/// Starts a daemon with stdin from /dev/null and its output in `log` (found on PATH);
/// nil if it could not be started. Nothing of the test's descriptors reaches it.
func spawnDaemon(_ argv: [String], log: String) -> pid_t? {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // Every other descriptor of ours (test pipes) stays behind.
    for fd in 3..<256 { posix_spawn_file_actions_addclose(&actions, Int32(fd)) }
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawnp(&pid, argv[0], &actions, nil, cArgs, environ) == 0 else { return nil }
    return pid
}

/// SIGTERM, then SIGKILL after 10 s; reaped either way.
func endDaemon(_ pid: pid_t) {
    kill(pid, SIGTERM)
    var status: Int32 = 0
    for _ in 0..<100 {
        if waitpid(pid, &status, WNOHANG) == pid { return }
        usleep(100_000)
    }
    kill(pid, SIGKILL)
    waitpid(pid, &status, 0)
}
