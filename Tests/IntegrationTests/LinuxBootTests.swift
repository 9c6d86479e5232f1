import Glibc
import XCTest

/// Boots the project's guest kernel (scripts/build-guest-kernel) and initramfs
/// (scripts/build-initramfs) under the real `svm` binary. Each boot costs one to two
/// minutes on hosts that emulate guest kernel code, so each one checks several things.
/// Needs /dev/kvm (skips only when it is absent) and the built kernel (fails without it:
/// `scripts/test` builds it).
final class LinuxBootTests: XCTestCase {
    static let bootTimeout = 400.0

    static var cacheDirectory: String {
        if let d = getenv("SVM_CACHE_DIR") { return String(cString: d) }
        if let x = getenv("XDG_CACHE_HOME") { return String(cString: x) + "/svm" }
        return String(cString: getenv("HOME") ?? strdup("/root")) + "/.cache/svm"
    }

    static func artifact(_ name: String) throws -> String {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        let path = Self.cacheDirectory + "/default/" + name
        guard access(path, R_OK) == 0 else {
            XCTFail("\(path) is missing: build it with scripts/build-guest-kernel and scripts/build-initramfs (scripts/test does)")
            throw XCTSkip("no guest kernel")
        }
        return path
    }

    /// Parses `svm-init: ready cpus=N mem_kb=M`.
    func readyFields(_ line: String) -> (cpus: Int, memKB: Int)? {
        var cpus: Int?, mem: Int?
        for field in line.split(separator: " ") {
            if field.hasPrefix("cpus=") { cpus = Int(field.dropFirst(5)) }
            if field.hasPrefix("mem_kb=") { mem = Int(field.dropFirst(7)) }
        }
        guard let cpus, let mem else { return nil }
        return (cpus, mem)
    }

    func assertMemory(_ memKB: Int, of mebibytes: Int, file: StaticString = #filePath, line: UInt = #line) {
        // MemTotal is RAM less what the kernel reserves for itself and its image.
        XCTAssertLessThanOrEqual(memKB, mebibytes * 1024, file: file, line: line)
        XCTAssertGreaterThan(memKB, mebibytes * 1024 * 80 / 100, file: file, line: line)
    }

    /// PVH entry of the ELF vmlinux, 2 vCPUs: both CPUs come up, memory is right, and a
    /// reboot from the guest's shell ends svm with status 0.
    func testPVHTwoCPUsBootToShellAndReboot() throws {
        let svm = try SVMProcess(arguments: ["boot", "--kernel", Self.artifact("vmlinux"),
                                             "--initrd", Self.artifact("initramfs.cpio"),
                                             "--mem", "512M", "--cpus", "2"])
        guard let line = svm.waitForLine(containing: "svm-init: ready", timeout: Self.bootTimeout) else {
            return XCTFail("no init line; stdout tail:\n\(svm.stdoutText.suffix(3000))\nstderr:\n\(svm.stderrText)")
        }
        let fields = try XCTUnwrap(readyFields(line), line)
        XCTAssertEqual(fields.cpus, 2, line)
        assertMemory(fields.memKB, of: 512)

        // The shell answers, then `reboot -f` ends svm cleanly.
        XCTAssertTrue(svm.waitForText(SVMProcess.shellPrompt, timeout: 120), "no shell prompt")
        svm.send("echo shell-$((6*7))\n")
        XCTAssertNotNil(svm.waitForLine(containing: "shell-42", timeout: 120), svm.stdoutText.suffix(2000).description)
        svm.send("reboot -f\n")
        XCTAssertEqual(svm.waitForExit(timeout: 120), 0, "stderr: \(svm.stderrText)")
        XCTAssertEqual(svm.stderrText, "")
    }

    /// bzImage entry (64-bit boot protocol), 1 vCPU, 256M: memory and CPU count, then a
    /// kernel panic must end svm with status 1 and name the panic, not look like a reboot.
    func testBzImageOneCPUBootsAndPanicIsReported() throws {
        let svm = try SVMProcess(arguments: ["boot", "--kernel", Self.artifact("bzImage"),
                                             "--initrd", Self.artifact("initramfs.cpio"),
                                             "--mem", "256M", "--cpus", "1"])
        guard let line = svm.waitForLine(containing: "svm-init: ready", timeout: Self.bootTimeout) else {
            return XCTFail("no init line; stdout tail:\n\(svm.stdoutText.suffix(3000))\nstderr:\n\(svm.stderrText)")
        }
        let fields = try XCTUnwrap(readyFields(line), line)
        XCTAssertEqual(fields.cpus, 1, line)
        assertMemory(fields.memKB, of: 256)

        XCTAssertTrue(svm.waitForText(SVMProcess.shellPrompt, timeout: 120), "no shell prompt")
        svm.send("echo c > /proc/sysrq-trigger\n")
        XCTAssertEqual(svm.waitForExit(timeout: 120), 1, "stdout tail: \(svm.stdoutText.suffix(2000))")
        XCTAssertTrue(svm.stderrText.contains("guest kernel panicked"), svm.stderrText)
        XCTAssertTrue(svm.stderrText.contains("sysrq"), svm.stderrText)
    }
}
