import Foundation
import Glibc
import XCTest

/// Snapshots through the real binary, two boots in all, each serving several assertions:
/// a counting guest saved with --resume (it goes on), its svm process SIGKILLed, and two VMs
/// restored from the one snapshot at once that count on from where it was saved and run
/// independently; damaged snapshots refused with one line and status 4. Then a shell guest
/// with a disk: a block written before the snapshot reads back (from the device, its
/// page cache dropped) after a restore in the foreground, a background loop goes on, the
/// clock has not gone back, and a changed disk makes the restore refused.
final class SnapshotTests: XCTestCase {
    var runDir = ""
    var workDir = ""
    let tag = "snap-\(getpid())"

    override func setUpWithError() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        _ = try LinuxBootTests.artifact("vmlinux")
        runDir = "/tmp/svm-snapshot-test-run-\(getpid())"
        workDir = "/tmp/svm-snapshot-test-\(getpid())"
        hostCommand(["mkdir", "-p", workDir])
    }

    override func tearDown() {
        for name in ["a", "r1", "r2", "b", "rb"] {
            _ = svm(["kill", "\(tag)-\(name)"])
            _ = svm(["rm", "-f", "\(tag)-\(name)"])
        }
        hostCommand(["rm", "-rf", runDir, workDir])
    }

    func svm(_ args: [String], timeout: Double = 120) -> (status: Int32?, out: String, err: String) {
        guard let p = try? SVMProcess(arguments: args, environment: ["SVM_RUN_DIR": runDir]) else { return (nil, "", "") }
        let status = p.waitForExit(timeout: timeout)
        return (status, p.stdoutText, p.stderrText)
    }

    func counters(_ text: String, word: String = "svm-counter") -> [Int] {
        text.split(whereSeparator: { $0.isNewline }).compactMap { line in
            guard let r = line.range(of: word + " ") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
    }

    func waitForCounter(_ name: String, atLeast n: Int, timeout: Double) -> [Int]? {
        let end = SVMProcess.now() + timeout
        while SVMProcess.now() < end {
            let seen = counters(svm(["logs", name]).out)
            if seen.contains(where: { $0 >= n }) { return seen }
            usleep(300_000)
        }
        return nil
    }

    func psRow(_ name: String) -> [String: Any]? {
        let r = svm(["ps", "-a", "--format", "json"])
        guard let data = r.out.data(using: .utf8),
              let rows = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return nil }
        return rows.first { $0["name"] as? String == name }
    }

    /// One line on stderr, status 4, and the line names what is wrong.
    func assertRefused(_ directory: String, mentioning word: String, file: StaticString = #filePath, line: UInt = #line) {
        let r = svm(["restore", "--name", "\(tag)-refused", directory])
        XCTAssertEqual(r.status, 4, r.err, file: file, line: line)
        XCTAssertEqual(r.err.filter { $0 == "\n" }.count, 1, r.err, file: file, line: line)
        XCTAssertTrue(r.err.contains(word), "expected '\(word)' in: \(r.err)", file: file, line: line)
        XCTAssertNil(psRow("\(tag)-refused").flatMap { $0["state"] as? String == "running" ? $0 : nil },
                     "a refused restore left a running VM", file: file, line: line)
    }

    /// A copy of the snapshot with `change` applied to it (sparse copy: the memory file stays small).
    func damagedCopy(of snapshot: String, _ name: String, _ change: String) -> String {
        let copy = "\(workDir)/\(name)"
        mustRun(["cp", "-r", "--sparse=always", snapshot, copy])
        mustRun(["python3", "-c", change, copy])
        return copy
    }

    func testCounterContinuesInTwoVMsRestoredAtOnce() throws {
        let a = "\(tag)-a"
        let boot = svm(["boot", "-d", "--name", a, "--mem", "128M", "--kernel", try LinuxBootTests.artifact("vmlinux"),
                        "--initrd", try LinuxBootTests.artifact("initramfs.cpio"),
                        "--cmdline", "console=ttyS0 svm.init=counter"])
        XCTAssertEqual(boot.status, 0, boot.err)
        guard waitForCounter(a, atLeast: 3, timeout: LinuxBootTests.bootTimeout) != nil else {
            return XCTFail("no counter; log:\n\(svm(["logs", a]).out.suffix(3000))")
        }
        let pid = try XCTUnwrap(psRow(a)?["pid"] as? Int)
        let snapshot = "\(workDir)/counter"
        let beforeSave = counters(svm(["logs", a]).out).max() ?? 0
        let save = svm(["snapshot", "--resume", a, snapshot])
        XCTAssertEqual(save.status, 0, save.err)
        let afterSave = counters(svm(["logs", a]).out).max() ?? 0
        for file in ["manifest", "state", "memory"] {
            XCTAssertEqual(access("\(snapshot)/\(file)", R_OK), 0, "no \(file) in the snapshot")
        }
        // Sparse: a 128 MiB guest at its counter has touched a small part of its RAM.
        var st = stat()
        XCTAssertEqual(stat("\(snapshot)/memory", &st), 0)
        XCTAssertEqual(st.st_size, 128 << 20)
        XCTAssertLessThan(Int(st.st_blocks) * 512, 64 << 20, "the memory file is not sparse")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(snapshot).partial-\(pid)"), "partial directory left")
        // A second snapshot into the same directory is refused, the VM unharmed.
        let again = svm(["snapshot", "--resume", a, snapshot])
        XCTAssertEqual(again.status, 2, again.err)
        XCTAssertTrue(again.err.contains("already exists"), again.err)

        // --resume: the saved VM goes on counting; then its process dies without a word.
        XCTAssertNotNil(waitForCounter(a, atLeast: afterSave + 2, timeout: 60), "the VM did not go on after snapshot --resume")
        XCTAssertEqual(kill(pid_t(pid), SIGKILL), 0)
        let end = SVMProcess.now() + 10
        while psRow(a)?["state"] as? String == "running" && SVMProcess.now() < end { usleep(100_000) }

        // Two VMs from the one snapshot at once, each counting on from the save.
        let r1 = "\(tag)-r1", r2 = "\(tag)-r2"
        let start = SVMProcess.now()
        let first = svm(["restore", "-d", "--name", r1, snapshot])
        let restoreSeconds = SVMProcess.now() - start
        XCTAssertEqual(first.status, 0, first.err)
        XCTAssertEqual(first.out, r1 + "\n")
        let second = svm(["restore", "-d", "--name", r2, snapshot])
        XCTAssertEqual(second.status, 0, second.err)
        print("restore -d to running: \(restoreSeconds) s")
        for name in [r1, r2] {
            guard let seen = waitForCounter(name, atLeast: beforeSave + 2, timeout: 60) else {
                return XCTFail("\(name) does not count; log:\n\(svm(["logs", name]).out.suffix(2000))")
            }
            let firstSeen = try XCTUnwrap(seen.first)
            XCTAssertGreaterThanOrEqual(firstSeen, beforeSave, "\(name) did not go on from the save: \(seen)")
            XCTAssertLessThanOrEqual(firstSeen, afterSave + 2, "\(name) started past the save: \(seen)")
            XCTAssertEqual(seen, Array(firstSeen..<firstSeen + seen.count), "\(name) skipped or repeated: \(seen)")
            XCTAssertEqual(psRow(name)?["state"] as? String, "running")
        }
        // Independent: r1 paused, r2 counts on.
        XCTAssertEqual(svm(["pause", r1]).status, 0)
        usleep(300_000)
        let r1Paused = counters(svm(["logs", r1]).out).max() ?? 0
        let r2Before = counters(svm(["logs", r2]).out).max() ?? 0
        XCTAssertNotNil(waitForCounter(r2, atLeast: r2Before + 3, timeout: 30), "r2 stopped with r1")
        XCTAssertEqual(counters(svm(["logs", r1]).out).max() ?? 0, r1Paused, "r1 counted while paused")
        XCTAssertEqual(svm(["kill", r1]).status, 0)
        XCTAssertEqual(svm(["resume", r2]).status, 0)
        XCTAssertNotNil(waitForCounter(r2, atLeast: r2Before + 5, timeout: 30), "r2 stopped when r1 was killed")
        // Snapshot without --resume: the VM ends once it is saved, status 0.
        let final = "\(workDir)/final"
        let last = svm(["snapshot", r2, final])
        XCTAssertEqual(last.status, 0, last.err)
        XCTAssertEqual(psRow(r2)?["state"] as? String, "exited")
        XCTAssertEqual(psRow(r2)?["status"] as? Int, 0)

        // Damaged snapshots: one line, status 4, nothing started.
        assertRefused(damagedCopy(of: snapshot, "manifest-edited", """
            import sys; p = sys.argv[1] + "/manifest"; t = open(p).read(); open(p, "w").write(t.replace("cpus 1", "cpus 2"))
            """), mentioning: "manifest")
        assertRefused(damagedCopy(of: snapshot, "memory-flipped", """
            import sys, os
            p = sys.argv[1] + "/memory"; f = open(p, "r+b"); off = os.lseek(f.fileno(), 0, os.SEEK_DATA) + 4096 * 3 + 7
            f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x5a])); f.close()
            """), mentioning: "memory")
        assertRefused(damagedCopy(of: snapshot, "state-cut", """
            import sys, os; p = sys.argv[1] + "/state"; os.truncate(p, os.path.getsize(p) - 100)
            """), mentioning: "state")
        assertRefused(damagedCopy(of: snapshot, "memory-missing", """
            import sys, os; os.unlink(sys.argv[1] + "/memory")
            """), mentioning: "memory")
    }

    func testDiskWrittenBeforeSnapshotReadsBackAfterRestore() throws {
        let b = "\(tag)-b", rb = "\(tag)-rb"
        let started = SVMProcess.now()
        func phase(_ what: String) { print("SnapshotTests disk: \(what) at \(Int(SVMProcess.now() - started)) s") }
        let disk = "\(workDir)/disk.img"
        mustRun(["truncate", "-s", "16M", disk])
        let vm = try SVMProcess(arguments: ["boot", "--name", b, "--mem", "128M", "--disk", disk,
                                            "--kernel", try LinuxBootTests.artifact("vmlinux"),
                                            "--initrd", try LinuxBootTests.artifact("initramfs.cpio")],
                                environment: ["SVM_RUN_DIR": runDir])
        XCTAssertTrue(vm.waitForText(SVMProcess.shellPrompt, timeout: LinuxBootTests.bootTimeout),
                      "no shell prompt; output:\n\(vm.stdoutText.suffix(3000))\n\(vm.stderrText)")
        phase("prompt")
        let marker = "marker-\(getpid())-written-before"
        vm.send("(i=0; while :; do i=$((i+1)); echo t''ick $i; sleep 1; done) &\n")
        vm.send("echo \(marker) | dd of=/dev/vda conv=fsync 2>/dev/null; echo W''ROTE\n")
        XCTAssertNotNil(vm.waitForLine(containing: "WROTE", timeout: 120), vm.stdoutText.suffix(2000).description)
        XCTAssertNotNil(vm.waitForLine(containing: "tick 3", timeout: 60))
        vm.send("echo U''PTIME $(cut -d' ' -f1 /proc/uptime)\n")
        let uptimeLine = try XCTUnwrap(vm.waitForLine(containing: "UPTIME ", timeout: 60))
        let uptimeBefore = try XCTUnwrap(Double(uptimeLine.split(separator: " ").last ?? ""))

        phase("written, counting")
        let snapshot = "\(workDir)/disk-snapshot"
        let save = svm(["snapshot", b, snapshot])
        XCTAssertEqual(save.status, 0, save.err)
        // The foreground svm ends with the VM: status 0, and says why.
        XCTAssertEqual(vm.waitForExit(timeout: 30), 0, vm.stderrText)
        XCTAssertTrue(vm.stderrText.contains("saved to a snapshot"), vm.stderrText)
        let ticksBefore = counters(vm.stdoutText, word: "tick").max() ?? 0

        let restored = try SVMProcess(arguments: ["restore", "--name", rb, snapshot], environment: ["SVM_RUN_DIR": runDir])
        XCTAssertNotNil(restored.waitForLine(containing: "tick \(ticksBefore + 2)", timeout: 60),
                        "the loop did not go on; output:\n\(restored.stdoutText.suffix(2000))\n\(restored.stderrText)")
        phase("restored and counting")
        let ticks = counters(restored.stdoutText, word: "tick")
        XCTAssertGreaterThan(ticks.first ?? 0, 1, "counting started again: \(ticks)")
        XCTAssertLessThanOrEqual(ticks.first ?? 0, ticksBefore + 1, "ticks were lost: \(ticks) after \(ticksBefore)")
        // The shell takes input; the block comes from the device, not the page cache.
        restored.send("echo 3 > /proc/sys/vm/drop_caches; echo R''EAD $(head -c \(marker.utf8.count) /dev/vda)\n")
        let read = restored.waitForLine(containing: "READ ", timeout: 60)
        XCTAssertEqual(read?.split(separator: " ").last.map(String.init), marker, restored.stdoutText.suffix(2000).description)
        restored.send("echo U''PTIME $(cut -d' ' -f1 /proc/uptime)\n")
        let after = restored.waitForLine(containing: "UPTIME ", timeout: 60)
        let uptimeAfter = try XCTUnwrap(after.flatMap { Double($0.split(separator: " ").last ?? "") }, after ?? "no uptime")
        XCTAssertGreaterThanOrEqual(uptimeAfter, uptimeBefore, "the guest's clock went back")
        phase("read back")
        restored.send("reboot -f\n")
        XCTAssertEqual(restored.waitForExit(timeout: 120), 0, restored.stderrText)
        phase("rebooted")

        // The restored guest only read the disk, so the snapshot still fits it; a change
        // made to the disk since (here on the host) makes the snapshot refused.
        mustRun(["sh", "-c", "printf changed | dd of=\(disk) conv=notrunc 2>/dev/null"])
        assertRefused(snapshot, mentioning: "changed")
    }
}
