import Foundation
import Glibc
import XCTest

/// Shared folders (`svm boot --share`, virtio-fs over vhost-user to virtiofsd) in one boot
/// through the real binary: the guest works on a read-write share and the host sees each
/// change while the VM runs; a read-only share refuses writes even after the guest
/// remounts it read-write; a symlink in the share cannot reach the host outside it;
/// killing one virtiofsd leaves the VM running and `svm ps` reporting the share as
/// failed; no virtiofsd outlives svm. Needs /dev/kvm, root (virtiofsd's sandbox) and
/// /usr/lib/qemu/virtiofsd (qemu-system-common; scripts/setup and .ci/run install it).
final class SharedFolderTests: XCTestCase {
    let vmName = "shares-\(getpid())"
    var dir = ""
    var runDir = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        try XCTSkipUnless(getuid() == 0, "needs root: virtiofsd's namespace sandbox")
        try XCTSkipUnless(access("/usr/lib/qemu/virtiofsd", X_OK) == 0, "needs virtiofsd (apt-get install qemu-system-common)")
        _ = try LinuxBootTests.artifact("vmlinux")
        dir = "/tmp/svm-share-test-\(getpid())"
        runDir = dir + "/run"
        mustRun(["mkdir", "-p", "\(dir)/rw/sub", "\(dir)/ro", "\(dir)/outside", runDir])
    }

    override func tearDown() {
        _ = svm(["kill", vmName])
        _ = svm(["rm", "-f", vmName])
        hostCommand(["rm", "-rf", dir])
    }

    func svm(_ args: [String], timeout: Double = 60) -> (status: Int32?, out: String, err: String) {
        guard let p = try? SVMProcess(arguments: args, environment: ["SVM_RUN_DIR": runDir]) else { return (nil, "", "") }
        let status = p.waitForExit(timeout: timeout)
        return (status, p.stdoutText, p.stderrText)
    }

    func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    func virtiofsdPIDs() -> [Int32] {
        hostCommand(["pgrep", "-f", "virtiofsd --socket-path=\(runDir)/"]).output
            .split(separator: "\n").compactMap { Int32($0) }
    }

    func psRow() -> [String: Any]? {
        let r = svm(["ps", "-a", "--format", "json"])
        guard let data = r.out.data(using: .utf8),
              let rows = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return nil }
        return rows.first { $0["name"] as? String == vmName }
    }

    func testLiveSharesReadOnlySymlinksAndADyingBackend() throws {
        let rw = "\(dir)/rw", ro = "\(dir)/ro"
        mustRun(["dd", "if=/dev/urandom", "of=\(rw)/from-host.bin", "bs=4096", "count=64", "status=none"])
        let hostSum = hostCommand(["sha256sum", "\(rw)/from-host.bin"]).output.prefix(64)
        mustRun(["sh", "-c", "echo keep > \(rw)/to-delete && echo old > \(rw)/to-rename && echo 1 > \(rw)/log.txt"])
        mustRun(["sh", "-c", "echo read-only-content > \(ro)/r.txt && echo secret > \(dir)/outside/secret.txt"])
        // A symlink the host left in the share, pointing at a host directory outside it.
        mustRun(["ln", "-s", "\(dir)/outside", "\(rw)/escape"])
        let roBefore = hostCommand(["sh", "-c", "cd \(ro) && ls -la --time-style=+%s . && sha256sum r.txt"]).output

        let vm = try SVMProcess(arguments: ["boot", "--name", vmName, "--mem", "256M",
                                            "--kernel", try LinuxBootTests.artifact("vmlinux"),
                                            "--initrd", try LinuxBootTests.artifact("initramfs.cpio"),
                                            "--share", "\(rw):data", "--share", "\(ro):cfg,ro"],
                                environment: ["SVM_RUN_DIR": runDir])
        guard vm.waitForText(SVMProcess.shellPrompt, timeout: LinuxBootTests.bootTimeout) else {
            return XCTFail("no shell prompt; stdout tail:\n\(vm.stdoutText.suffix(3000))\nstderr:\n\(vm.stderrText)")
        }
        XCTAssertEqual(virtiofsdPIDs().count, 4, "two shares, each a virtiofsd and its sandboxed server")
        let row = psRow()
        XCTAssertEqual(row?["shares"] as? [String], ["data", "cfg(ro)"], "\(String(describing: row))")

        /// Types `command` and waits for `TAG` on a line of its own output (`T''AG` in the
        /// typed text, so the echo of the command never matches).
        func step(_ command: String, _ tag: String, timeout: Double = 120) -> String? {
            vm.send(command + "; echo \(tag.prefix(1))''\(tag.dropFirst()) $?\n")
            guard let line = vm.waitForLine(containing: tag + " ", timeout: timeout),
                  let r = line.range(of: tag + " ") else { return nil }
            return String(line[r.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func waitForHost(_ what: String, _ check: () -> Bool) {
            for _ in 0..<100 where !check() { usleep(50_000) }
            XCTAssertTrue(check(), "the host never saw: \(what)")
        }
        XCTAssertEqual(step("mkdir -p /mnt/rw /mnt/ro && mount -t virtiofs data /mnt/rw && mount -t virtiofs cfg /mnt/ro", "MOUNTED"), "0")

        vm.send("echo S''UM $(sha256sum /mnt/rw/from-host.bin)\n")
        let sumLine = vm.waitForLine(containing: "SUM ", timeout: 120) ?? ""
        XCTAssertTrue(sumLine.contains(String(hostSum)), "the guest read the host's file intact: \(sumLine)")

        // Each change is on the host while the VM runs.
        XCTAssertEqual(step("echo guest-wrote > /mnt/rw/new.txt", "WROTE"), "0")
        waitForHost("new.txt") { read("\(rw)/new.txt") == "guest-wrote\n" }
        XCTAssertEqual(step("echo 2 >> /mnt/rw/log.txt", "APPENDED"), "0")
        waitForHost("the append") { read("\(rw)/log.txt") == "1\n2\n" }
        XCTAssertEqual(step("mv /mnt/rw/to-rename /mnt/rw/renamed", "RENAMED"), "0")
        waitForHost("the rename") { access("\(rw)/to-rename", F_OK) != 0 && read("\(rw)/renamed") == "old\n" }
        XCTAssertEqual(step("rm /mnt/rw/to-delete", "DELETED"), "0")
        waitForHost("the unlink") { access("\(rw)/to-delete", F_OK) != 0 }
        XCTAssertEqual(step("mkdir -p /mnt/rw/made/deeper && ln -s made/deeper /mnt/rw/link && chmod 0751 /mnt/rw/new.txt", "MADE"), "0")
        waitForHost("mkdir, symlink and chmod") {
            var st = stat()
            var buf = [CChar](repeating: 0, count: 256)
            let n = readlink("\(rw)/link", &buf, buf.count - 1)
            return access("\(rw)/made/deeper", F_OK) == 0 && n > 0
                && String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "made/deeper"
                && stat("\(rw)/new.txt", &st) == 0 && st.st_mode & 0o7777 == 0o751
        }
        // The guest's root makes no device nodes on the host.
        XCTAssertEqual(step("mknod /mnt/rw/disk b 8 0", "MKNOD"), "1")
        XCTAssertEqual(access("\(rw)/disk", F_OK), -1)
        XCTAssertEqual(step("dd if=/dev/zero of=/mnt/rw/big.bin bs=1M count=64 2>/dev/null", "BIG", timeout: 600), "0")
        let zeros = hostCommand(["sh", "-c", "head -c 67108864 /dev/zero | sha256sum"]).output.prefix(64)
        XCTAssertEqual(hostCommand(["sha256sum", "\(rw)/big.bin"]).output.prefix(64), zeros, "64 MiB written through virtio-fs")

        // Read-only is the host's doing: the guest's remount changes nothing.
        XCTAssertEqual(step("cat /mnt/ro/r.txt", "ROREAD"), "0")
        _ = step("mount -o remount,rw /mnt/ro", "REMOUNT")
        XCTAssertEqual(step("echo x > /mnt/ro/new.txt", "ROWRITE"), "1")
        XCTAssertEqual(step("rm -f /mnt/ro/r.txt", "RORM"), "1")
        XCTAssertEqual(step("mkdir /mnt/ro/d", "ROMKDIR"), "1")
        XCTAssertEqual(step("chmod 777 /mnt/ro/r.txt", "ROCHMOD"), "1")
        XCTAssertEqual(step("touch /mnt/ro/r.txt", "ROTOUCH"), "1")

        // Symlinks resolve in the guest: the host's directory behind `escape` is out of reach,
        // and a link the guest makes to / leads to the guest's own files.
        XCTAssertEqual(step("cat /mnt/rw/escape/secret.txt", "ESCAPE"), "1")
        XCTAssertEqual(step("ln -s / /mnt/rw/root && echo planted > /mnt/rw/root/tmp/planted", "PLANT"), "0")

        // One virtiofsd dies: svm and the guest go on, ps says which share failed.
        let pids = virtiofsdPIDs()
        let first = hostCommand(["pgrep", "-o", "-f", "virtiofsd --socket-path=\(runDir)/\(vmName)/virtiofsd-0.sock"]).output
        XCTAssertNotNil(Int32(first.trimmingCharacters(in: .whitespacesAndNewlines)), "virtiofsd-0 runs: \(pids)")
        if let pid = Int32(first.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
        let report = "virtio-fs 'data': the vhost-user backend hung up"
        for _ in 0..<150 where !vm.stderrText.contains(report) { _ = vm.waitForText("\u{0}", timeout: 0.2) }
        XCTAssertTrue(vm.stderrText.contains("svm: " + report), "one line on svm's stderr: \(vm.stderrText)")
        XCTAssertEqual(step("cat /mnt/ro/r.txt >/dev/null", "STILL"), "0", "the other share and the guest go on")
        var shares: [String]?
        for _ in 0..<50 {
            shares = psRow()?["shares"] as? [String]
            if shares == ["data(failed)", "cfg(ro)"] { break }
            usleep(100_000)
        }
        XCTAssertEqual(shares, ["data(failed)", "cfg(ro)"])
        XCTAssertEqual(psRow()?["state"] as? String, "running")

        // A guest whose share lost its server waits on it (like a hard NFS mount), so the
        // VM is ended from outside; the other virtiofsd must go with it.
        XCTAssertEqual(svm(["kill", vmName]).status, 0)
        XCTAssertEqual(vm.waitForExit(timeout: 60), 137)
        XCTAssertEqual(virtiofsdPIDs(), [], "no virtiofsd outlives svm")
        XCTAssertTrue(hostCommand(["sh", "-c", "ls \(runDir)/\(vmName)/*.sock 2>/dev/null"]).output.isEmpty, "sockets removed")

        XCTAssertEqual(hostCommand(["sh", "-c", "cd \(ro) && ls -la --time-style=+%s . && sha256sum r.txt"]).output, roBefore,
                       "the read-only share's host tree is unchanged")
        XCTAssertEqual(read("\(dir)/outside/secret.txt"), "secret\n")
        XCTAssertEqual(hostCommand(["ls", "\(dir)/outside"]).output, "secret.txt\n", "nothing reached the host through the symlinks")
        XCTAssertEqual(access("/tmp/planted", F_OK), -1, "the guest's link to / is the guest's /")
        var st = stat()
        XCTAssertEqual(lstat("\(rw)/root", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK, "the planted link is a link on the host, never followed by svm")
    }

    func testBadSharesAreOneLineErrors() throws {
        let kernel = try LinuxBootTests.artifact("vmlinux")
        for (share, expected) in [("\(dir)/missing:t", "No such file or directory"), ("/etc/hostname:t", "not a directory")] {
            let r = svm(["boot", "--kernel", kernel, "--mem", "128M", "--share", share])
            XCTAssertEqual(r.status, 2, "\(share): \(r.err)")
            XCTAssertTrue(r.err.hasPrefix("svm: --share \(share): ") && r.err.contains(expected), "\(share): \(r.err)")
            XCTAssertEqual(r.err.filter { $0 == "\n" }.count, 1, r.err)
        }
        XCTAssertEqual(virtiofsdPIDs(), [])
    }
}
