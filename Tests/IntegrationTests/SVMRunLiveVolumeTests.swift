import Foundation
import Glibc
import XCTest

/// `svm run --volume` as live shares (virtio-fs), through the real binary. Needs root and
/// virtiofsd (qemu-system-common), as live volumes do; without them svm copies volumes.
extension SVMRunTests {
    func requireLiveVolumes() throws {
        try requireGuest()
        try XCTSkipUnless(getuid() == 0, "live volumes need root (virtiofsd's sandbox)")
        try XCTSkipUnless(access("/usr/lib/qemu/virtiofsd", X_OK) == 0, "needs virtiofsd (apt-get install qemu-system-common)")
        try XCTSkipUnless(access(Self.busybox, X_OK) == 0, "needs \(Self.busybox) (apt-get install busybox-static)")
    }

    /// One run, ended by --timeout: while it runs the host sees the program's writes (10 MiB
    /// included); they stay after the kill; the program is nobody and writes only where
    /// nobody may on the host; the read-only volume refuses it; no virtiofsd is left.
    func testLiveVolumeWritesAreOnTheHostAsTheyHappenAndSurviveATimeout() throws {
        try requireLiveVolumes()
        let rw = tmpdir + "/rw", ro = tmpdir + "/ro", rootOwned = tmpdir + "/rootonly"
        mustRun(["/bin/mkdir", "-p", rw, ro, rootOwned])
        mustRun(["/bin/chown", "65534:65534", rw])
        mustRun(["/bin/sh", "-c", "echo ro > \(ro)/r.txt; chmod 755 \(rootOwned)"])
        let roBefore = hostCommand(["/bin/sh", "-c", "ls -l --time-style=+%s \(ro) && stat -c '%a %U %Y %h' \(ro) && cat \(ro)/r.txt"]).output
        let bb = Self.busybox
        let script = """
        \(bb) id -u > /data/uid
        \(bb) dd if=/dev/zero of=/data/big.bin bs=1M count=10 2>/dev/null
        if (echo x > /ro/x) 2>/dev/null; then echo ro-writable; else echo ro-denied; fi > /data/ro
        if (echo x > /rootonly/x) 2>/dev/null; then echo writable; else echo denied; fi > /data/rootonly
        echo written > /data/progress
        exec \(bb) sleep 1000
        """
        let scratch = tmpdir + "/svm-tmp"
        mkdir(scratch, 0o700)
        let start = SVMProcess.now()
        let svm = try SVMProcess(arguments: ["run", "--timeout", "120", "-v", "\(rw):/data", "-v", "\(ro):/ro:ro",
                                             "-v", "\(rootOwned):/rootonly", "--", bb, "sh", "-c", script],
                                 environment: ["TMPDIR": scratch])
        // The host sees the writes while the program still runs.
        var progress: String?
        while SVMProcess.now() - start < 115, progress == nil {
            progress = try? String(contentsOfFile: rw + "/progress", encoding: .utf8)
            if progress == nil { _ = svm.waitForText("\u{0}", timeout: 0.5) }
        }
        XCTAssertEqual(progress, "written\n", "stderr: \(svm.stderrText)")
        XCTAssertNil(svm.reap(), "svm is still running while the host reads the volume")
        XCTAssertEqual(try? String(contentsOfFile: rw + "/uid", encoding: .utf8), "65534\n")
        XCTAssertEqual(try? String(contentsOfFile: rw + "/ro", encoding: .utf8), "ro-denied\n")
        XCTAssertEqual(try? String(contentsOfFile: rw + "/rootonly", encoding: .utf8), "denied\n",
                       "nobody writes only where uid 65534 may on the host")
        var st = stat()
        XCTAssertEqual(stat(rw + "/big.bin", &st), 0)
        XCTAssertEqual(st.st_size, 10 << 20)
        XCTAssertEqual(st.st_uid, 65534, "files the program makes belong to its uid on the host")
        XCTAssertEqual(svm.waitForExit(timeout: 200), 124, svm.stderrText)
        // After the kill everything is still there.
        XCTAssertEqual(hostCommand(["/bin/sh", "-c", "head -c 10485760 /dev/zero | sha256sum"]).output,
                       hostCommand(["/bin/sh", "-c", "sha256sum < \(rw)/big.bin"]).output)
        XCTAssertEqual(hostCommand(["/bin/sh", "-c", "ls -l --time-style=+%s \(ro) && stat -c '%a %U %Y %h' \(ro) && cat \(ro)/r.txt"]).output, roBefore)
        XCTAssertEqual(hostCommand(["/bin/ls", "-A", rootOwned]).output, "")
        XCTAssertTrue(hostCommand(["/bin/sh", "-c", "pgrep -f '[v]irtiofsd --socket-path=\(scratch)' || true"]).output.isEmpty)
        assertNothingLeftBehind()
    }

    /// --user: the program's uid and gid on the host's files.
    func testLiveVolumeAsUser() throws {
        try requireLiveVolumes()
        let rw = tmpdir + "/mine"
        mustRun(["/bin/mkdir", "-p", rw])
        mustRun(["/bin/chown", "4242:4343", rw])
        let r = try svmRun(["--user", "4242:4343", "-v", "\(rw):/work", "-w", "/work", "--", Self.busybox, "sh", "-c",
                            "echo hi > f && \(Self.busybox) id -u && \(Self.busybox) id -g"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "4242\n4343\n")
        var st = stat()
        XCTAssertEqual(stat(rw + "/f", &st), 0)
        XCTAssertEqual(st.st_uid, 4242)
        XCTAssertEqual(st.st_gid, 4343)
        assertNothingLeftBehind()
    }
}
