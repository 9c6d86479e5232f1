import Foundation
import Glibc
import XCTest

/// `podman run -it` with svm-runtime, under a pty made by python3: the container's
/// process has a terminal (the guest's hvc0, bridged to the pty svm-runtime sent podman
/// over the console socket) of the pty's size; typed input is echoed by the guest's line
/// discipline and reaches the program; a resize reaches it; its exit status comes back.
/// One boot. Needs root, /dev/kvm, podman, python3.
final class RuntimeTerminalTests: XCTestCase {
    func testPodmanRunWithATerminal() throws {
        try RuntimeTests.requirePodman()
        try XCTSkipUnless(access("/usr/bin/python3", X_OK) == 0, "needs python3 for its pty module")
        let image = "localhost/svm-test-busybox-tty:1"
        try RuntimeTests.importBusybox(as: image)
        defer { _ = hostCommand(["podman", "rmi", "-f", image]) }
        var template = Array("/tmp/svm-tty.XXXXXX".utf8CString)
        let dir = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { _ = hostCommand(["rm", "-rf", dir]) }
        let driver = dir + "/pty-driver.py"
        let python = """
        import fcntl, json, os, pty, select, signal, struct, subprocess, sys, termios, time
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        script = ("tty; test -t 0 && echo TTY-OK; echo size: $(stty size); read line; "
                  + "echo got:$line; sleep 2; echo size: $(stty size); exit 5")
        cmd = ["podman", "--runtime", sys.argv[1], "run", "--rm", "-it", "--cidfile", sys.argv[2],
               "--name", "svm-test-tty", sys.argv[3], "sh", "-c", script]
        def controlled():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, preexec_fn=controlled)
        out = b""
        typed = False
        deadline = time.time() + 600
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            elif p.poll() is not None:
                break
            if not typed and b"size: 33 101" in out:
                # A resize of podman's terminal (the kernel signals its foreground group),
                # then a line typed once podman has passed the new size on.
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
                time.sleep(2)
                os.write(master, b"hello\\r")
                typed = True
        if p.poll() is None:
            p.kill()
        print(json.dumps({"status": p.wait(), "out": out.decode("utf-8", "replace")}))
        """
        mustRun(["/bin/sh", "-c", "cat > \(driver) <<'EOF'\n\(python)\nEOF"])
        let cidFile = dir + "/cid"
        let r = hostCommand(["/usr/bin/python3", driver, RuntimeTests.runtime, cidFile, image], timeout: 900)
        XCTAssertEqual(r.status, 0, r.output)
        guard let data = r.output.data(using: .utf8),
              let result = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return XCTFail("driver output: \(r.output)")
        }
        let out = result["out"] as? String ?? ""
        XCTAssertEqual(result["status"] as? Int, 5, out)
        XCTAssertTrue(out.contains("TTY-OK"), out)
        XCTAssertTrue(out.contains("/dev/"), "tty names the terminal: \(out)")
        XCTAssertTrue(out.contains("size: 33 101"), "the terminal starts with podman's size: \(out)")
        XCTAssertTrue(out.contains("hello\r\n"), "the guest's terminal echoes what is typed: \(out)")
        XCTAssertTrue(out.contains("got:hello"), "typed input reaches the program: \(out)")
        XCTAssertTrue(out.contains("size: 40 120"), "a resize reaches the guest's terminal: \(out)")
        let id = ((try? String(contentsOfFile: cidFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(id.isEmpty)
        var left = true
        for _ in 0..<120 {
            left = access(ContainerRoot.path + "/" + id, F_OK) == 0
            if !left { break }
            usleep(500_000)
        }
        XCTAssertFalse(left, "the container's state is removed")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*_vm \(id)"]).status, 0, "no VM process left")
    }
}
