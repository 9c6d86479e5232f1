import Glibc
import XCTest

/// The svm binary's behaviour on bad input: one line on stderr, exit status 2, nothing
/// left behind. None of these boots a guest.
final class CLITests: XCTestCase {
    func run(_ args: [String], timeout: Double = 30) throws -> (status: Int32?, out: String, err: String) {
        let p = try SVMProcess(arguments: args)
        let status = p.waitForExit(timeout: timeout)
        return (status, p.stdoutText, p.stderrText)
    }

    func tempFile(_ bytes: [UInt8]) -> String {
        let path = "/tmp/svm-cli-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        addTeardownBlock { unlink(path) }
        return path
    }

    func assertOneLineError(_ r: (status: Int32?, out: String, err: String), contains: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 2, r.err, file: file, line: line)
        XCTAssertEqual(r.err.filter { $0 == "\n" }.count, 1, r.err, file: file, line: line)
        XCTAssertTrue(r.err.hasPrefix("svm: "), r.err, file: file, line: line)
        XCTAssertTrue(r.err.contains(contains), "expected '\(contains)' in: \(r.err)", file: file, line: line)
    }

    func testHelpDescribesEveryBootFlag() throws {
        let r = try run(["boot", "--help"])
        XCTAssertEqual(r.status, 0)
        for flag in ["--kernel", "--initrd", "--mem", "--cpus", "--cmdline", "--timeout", "--firmware", "Ctrl-A x", "124"] {
            XCTAssertTrue(r.out.contains(flag), flag)
        }
    }

    func testUnknownCommandAndFlag() throws {
        assertOneLineError(try run(["frobnicate"]), contains: "unknown command")
        assertOneLineError(try run(["boot", "--frobnicate"]), contains: "unknown option")
    }

    func testMissingKernel() throws {
        assertOneLineError(try run(["boot", "--kernel", "/nonexistent/bzImage"]), contains: "/nonexistent/bzImage")
    }

    func testKernelThatIsNeitherBzImageNorELF() throws {
        let path = tempFile(Array("this is not a kernel\n".utf8) + [UInt8](repeating: 0, count: 4096))
        assertOneLineError(try run(["boot", "--kernel", path]), contains: "kernel")
    }

    func testTruncatedBzImage() throws {
        // The first 0x250 bytes of a bzImage header: valid magic, nothing behind it.
        var header = [UInt8](repeating: 0, count: 0x250)
        header[0x1FE] = 0x55; header[0x1FF] = 0xAA
        header[0x202] = 0x48; header[0x203] = 0x64; header[0x204] = 0x72; header[0x205] = 0x53  // HdrS
        header[0x206] = 0x0F; header[0x207] = 0x02  // protocol 2.15
        header[0x1F1] = 4
        let path = tempFile(header)
        assertOneLineError(try run(["boot", "--kernel", path]), contains: "kernel")
    }

    func testMemoryLargerThanTheHost() throws {
        let path = tempFile([0xF4])
        assertOneLineError(try run(["boot", "--firmware", path, "--mem", "64T"]), contains: "--mem")
    }

    func testMalformedFlags() throws {
        assertOneLineError(try run(["boot", "--mem", "lots"]), contains: "--mem")
        assertOneLineError(try run(["boot", "--cpus", "0"]), contains: "--cpus")
    }

    func testTinyGuestThroughTheBinary() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        // mov dx,0x3f8; mov al,'h'; out dx,al; mov al,0xfe; out 0x64,al; hlt
        let path = tempFile([0xBA, 0xF8, 0x03, 0xB0, 0x68, 0xEE, 0xB0, 0xFE, 0xE6, 0x64, 0xF4])
        let r = try run(["boot", "--firmware", path, "--mem", "16M"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "h")
        XCTAssertEqual(r.err, "")
    }

    func testTimeoutExitStatus() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        let path = tempFile([0xEB, 0xFE])  // jmp $
        let r = try run(["boot", "--firmware", path, "--mem", "16M", "--timeout", "1"])
        XCTAssertEqual(r.status, 124, r.err)
        XCTAssertTrue(r.err.contains("timed out"), r.err)
    }

    func testNoPermissionOnDevKVMIsBadInput() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        try XCTSkipUnless(getuid() == 0, "needs root to drop to an unprivileged user")
        let path = tempFile([0xF4])
        chmod(path, 0o644)
        // A copy of svm that nobody can reach, wherever the checkout lives (it may be
        // under a directory only root can enter).
        let dir = "/tmp/svm-nobody-\(getpid())"
        mustRun(["mkdir", "-p", dir])
        defer { hostCommand(["rm", "-rf", dir]) }
        mustRun(["cp", SVMProcess.binary, dir + "/svm"])
        chmod(dir, 0o755)
        chmod(dir + "/svm", 0o755)
        // As nobody, /dev/kvm (root:root 0600 or root:kvm 0660) cannot be opened.
        let p = try SVMProcess(arguments: ["boot", "--firmware", path, "--mem", "16M"],
                               prefix: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                               binary: dir + "/svm")
        let status = p.waitForExit(timeout: 30)
        XCTAssertEqual(status, 2, p.stderrText)
        XCTAssertTrue(p.stderrText.contains("/dev/kvm"), p.stderrText)
        XCTAssertEqual(p.stderrText.filter { $0 == "\n" }.count, 1, p.stderrText)
    }

    func testSIGTERMEndsSVMWithStatus143() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        let path = tempFile([0xEB, 0xFE])
        // The default action of SIGTERM would also give 143 (128 + 15): what tells svm's own
        // handling apart is that it ended the VM and cleaned up — its state directory is gone
        // (a foreground VM without --name removes it) and its process exited, not died.
        let runDir = "/tmp/svm-sigterm-test-\(getpid())"
        defer { hostCommand(["rm", "-rf", runDir]) }
        let p = try SVMProcess(arguments: ["boot", "--firmware", path, "--mem", "16M"], environment: ["SVM_RUN_DIR": runDir])
        var entries: [String] = []
        for _ in 0..<250 {  // until the VM runs: its state directory has its pid file
            let r = hostCommand(["sh", "-c", "ls -A \(runDir)/*/pid"])
            if r.status == 0 { entries = r.output.split(separator: "\n").map(String.init); break }
            usleep(20_000)
        }
        XCTAssertEqual(entries.count, 1, "the running VM's state directory")
        kill(p.pid, SIGTERM)
        XCTAssertEqual(p.waitForExit(timeout: 10), 143, p.stderrText)
        XCTAssertFalse(p.diedOfSignal, "svm handled SIGTERM and exited; the signal did not kill it")
        XCTAssertEqual(hostCommand(["sh", "-c", "ls -A \(runDir)"]).output, "", "svm removed its state directory")
    }
}
