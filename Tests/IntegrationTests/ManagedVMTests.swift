import Foundation
import Glibc
import XCTest

/// Managed VMs through the real binary, in one boot (and one restart): a detached guest
/// whose init prints `svm-counter N` every second (`svm.init=counter`), steered with ps,
/// pause, resume, logs, attach (under a pty), stop, restart and rm. Needs /dev/kvm and the
/// project's guest (scripts/test builds it).
final class ManagedVMTests: XCTestCase {
    var runDir = ""
    let vmName = "counter-\(getpid())"

    override func setUpWithError() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        _ = try LinuxBootTests.artifact("vmlinux")
        runDir = "/tmp/svm-managed-test-\(getpid())"
        setenv("SVM_RUN_DIR", runDir, 1)
    }

    override func tearDown() {
        // Whatever happened, nothing may outlive the test.
        _ = svm(["kill", vmName])
        _ = svm(["rm", "-f", vmName])
        hostCommand(["rm", "-rf", runDir])
        unsetenv("SVM_RUN_DIR")
    }

    /// Runs svm to its end; status and combined output.
    func svm(_ args: [String], timeout: Double = 120) -> (status: Int32?, out: String, err: String) {
        guard let p = try? SVMProcess(arguments: args, environment: ["SVM_RUN_DIR": runDir]) else { return (nil, "", "") }
        let status = p.waitForExit(timeout: timeout)
        return (status, p.stdoutText, p.stderrText)
    }

    func counters(in log: String) -> [Int] {
        log.split(whereSeparator: { $0.isNewline }).compactMap { line in
            guard let r = line.range(of: "svm-counter ") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
    }

    /// Waits until the log shows a counter of at least `n`; returns the log.
    func waitForCounter(_ n: Int, timeout: Double) -> String? {
        let end = SVMProcess.now() + timeout
        while SVMProcess.now() < end {
            let log = svm(["logs", vmName]).out
            if counters(in: log).contains(where: { $0 >= n }) { return log }
            usleep(500_000)
        }
        return nil
    }

    /// Alive and not a zombie: a detached VM's process belongs to whoever reaps orphans
    /// here, which may take its time.
    func processAlive(_ pid: Int) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    func psRow() -> [String: Any]? {
        let r = svm(["ps", "-a", "--format", "json"])
        guard let data = r.out.data(using: .utf8),
              let rows = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return nil }
        return rows.first { $0["name"] as? String == vmName }
    }

    func testDetachedVMLifecycle() throws {
        let boot = svm(["boot", "-d", "--name", vmName, "--kernel", try LinuxBootTests.artifact("vmlinux"),
                        "--initrd", try LinuxBootTests.artifact("initramfs.cpio"), "--mem", "256M",
                        "--cmdline", "console=ttyS0 svm.init=counter"])
        XCTAssertEqual(boot.status, 0, boot.err)
        XCTAssertEqual(boot.out, vmName + "\n")
        // A second VM cannot take the vmName while this one lives.
        let clash = svm(["boot", "-d", "--name", vmName, "--firmware", "/bin/true"])
        XCTAssertEqual(clash.status, 2, clash.err)
        XCTAssertTrue(clash.err.contains("running"), clash.err)
        XCTAssertEqual(clash.err.filter { $0 == "\n" }.count, 1, clash.err)

        guard let log = waitForCounter(2, timeout: LinuxBootTests.bootTimeout) else {
            return XCTFail("no counter lines; log:\n\(svm(["logs", vmName]).out.suffix(3000))")
        }
        XCTAssertTrue(log.contains("svm-init: ready"), log)
        let row = try XCTUnwrap(psRow())
        XCTAssertEqual(row["state"] as? String, "running")
        let pid = try XCTUnwrap(row["pid"] as? Int)
        XCTAssertTrue(processAlive(pid), "ps shows a pid that is not alive")
        XCTAssertTrue(svm(["ps"]).out.contains(vmName))

        // Paused: no new counter lines for 5 s, and ps says so; resumed: counting goes on.
        XCTAssertEqual(svm(["pause", vmName]).status, 0)
        XCTAssertEqual(psRow()?["state"] as? String, "paused")
        usleep(500_000)
        let atPause = counters(in: svm(["logs", vmName]).out).max() ?? 0
        sleep(5)
        XCTAssertEqual(counters(in: svm(["logs", vmName]).out).max() ?? 0, atPause, "a paused guest kept counting")
        XCTAssertEqual(svm(["resume", vmName]).status, 0)
        XCTAssertNotNil(waitForCounter(atPause + 2, timeout: 60), "counting did not go on after resume")
        XCTAssertEqual(psRow()?["state"] as? String, "running")
        let tail = svm(["logs", "--tail", "1", vmName]).out
        XCTAssertEqual(tail.utf8.filter { $0 == 10 }.count, 1, tail)
        XCTAssertEqual(counters(in: tail).count, 1, tail)

        // Another user gets nowhere: the run directory and socket are the owner's only.
        if getuid() == 0 {
            let other = hostCommand(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                     "env", "SVM_RUN_DIR=\(runDir)", SVMProcess.binary, "pause", vmName])
            XCTAssertNotEqual(other.status, 0, other.output)
            XCTAssertEqual(psRow()?["state"] as? String, "running", "another user paused the VM")
        }

        try attachUnderAPty()
        XCTAssertEqual(psRow()?["state"] as? String, "running", "Ctrl-A d did not leave the VM running")

        // Stop: the init powers off when asked; the record says how it ended.
        let stop = svm(["stop", "-t", "30", vmName], timeout: 90)
        XCTAssertEqual(stop.status, 0, stop.err)
        XCTAssertFalse(processAlive(pid), "the VM process outlived svm stop")
        let stopped = try XCTUnwrap(psRow())
        XCTAssertEqual(stopped["state"] as? String, "exited")
        XCTAssertEqual(stopped["status"] as? Int, 0, "the guest did not power off by itself")
        XCTAssertFalse(svm(["ps"]).out.contains(vmName), "ps without -a lists an exited VM")
        XCTAssertTrue(svm(["ps", "-a"]).out.contains("exited (0)"))
        XCTAssertTrue(svm(["logs", vmName]).out.contains("stop requested"), "the log is kept after the VM ended")

        // Restart: the same options, counting from 1 again.
        let restart = svm(["restart", vmName])
        XCTAssertEqual(restart.status, 0, restart.err)
        guard let again = waitForCounter(1, timeout: LinuxBootTests.bootTimeout) else {
            return XCTFail("no counter after restart; log:\n\(svm(["logs", vmName]).out.suffix(3000))")
        }
        XCTAssertEqual(counters(in: again).first, 1, "the restarted guest did not count from 1")
        XCTAssertEqual(psRow()?["state"] as? String, "running")
        let newPID = try XCTUnwrap(psRow()?["pid"] as? Int)

        // rm refuses a running VM; kill ends it at once; rm then leaves nothing.
        XCTAssertEqual(svm(["rm", vmName]).status, 2)
        XCTAssertEqual(svm(["kill", vmName]).status, 0)
        XCTAssertFalse(processAlive(newPID), "the VM process outlived svm kill")
        XCTAssertEqual(psRow()?["status"] as? Int, 137)
        XCTAssertEqual(svm(["rm", vmName]).status, 0)
        XCTAssertNil(psRow())
        XCTAssertNotEqual(access(runDir + "/" + vmName, F_OK), 0, "rm left the state directory")
        let leftovers = hostCommand(["pgrep", "-f", "__vm-process \(vmName)"])
        XCTAssertNotEqual(leftovers.status, 0, "a VM process is left: \(leftovers.output)")
    }

    /// `svm attach` under a pty: the counter shows, Ctrl-A d detaches (status 0), and the
    /// terminal is as it was.
    func attachUnderAPty() throws {
        try XCTSkipUnless(access("/usr/bin/python3", X_OK) == 0, "needs python3 for its pty module")
        let driver = runDir + "/attach-driver.py"
        let python = """
        import json, os, pty, select, subprocess, sys, time
        master, slave = pty.openpty()
        def stty():
            return subprocess.run(["stty", "-g"], stdin=slave, capture_output=True, text=True).stdout.strip()
        before = stty()
        p = subprocess.Popen([sys.argv[1], "attach", sys.argv[2]], stdin=slave, stdout=slave, stderr=slave)
        out = b""
        deadline = time.time() + 60
        while time.time() < deadline and out.count(b"svm-counter") < 3 and p.poll() is None:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                out += os.read(master, 65536)
        os.write(master, b"\\x01d")
        try:
            status = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            status = -1
        print(json.dumps({"status": status, "out": out.decode("utf-8", "replace"), "restored": before == stty()}))
        """
        mustRun(["/bin/sh", "-c", "cat > \(driver) <<'EOF'\n\(python)\nEOF"])
        let r = hostCommand(["env", "SVM_RUN_DIR=\(runDir)", "/usr/bin/python3", driver, SVMProcess.binary, vmName])
        guard let data = r.output.data(using: .utf8),
              let result = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return XCTFail("attach driver: \(r.output)")
        }
        let out = result["out"] as? String ?? ""
        XCTAssertGreaterThanOrEqual(counters(in: out).count, 2, "attach showed no counter: \(out)")
        XCTAssertEqual(result["status"] as? Int, 0, out)
        XCTAssertEqual(result["restored"] as? Bool, true, "the terminal was not restored after detaching")
    }
}
