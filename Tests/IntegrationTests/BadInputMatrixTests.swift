import Foundation
import Glibc
import XCTest

/// The bad-input matrix of issue 13 item 4, through the real binary: each case ends with
/// one line on stderr (`svm: ...`), its exit status, and nothing left behind in the test's
/// own SVM_RUN_DIR (no state directory, no process). docs/security.md has the table; cases
/// covered elsewhere are named there. No case boots Linux to the end: kernels are refused
/// before they run, and where a live VM is needed (a disk or TAP held by another svm, a
/// signal during the boot) the project's kernel runs for a few seconds and is stopped.
final class BadInputMatrixTests: XCTestCase {
    var runDir = ""
    var scratch = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        runDir = try Self.makeTemporaryDirectory("run")
        scratch = try Self.makeTemporaryDirectory("files")
        // nobody must reach the files (the no-permission case): 0755 on the way down.
        chmod(scratch, 0o755)
        let dirs = [runDir, scratch]
        addTeardownBlock { for d in dirs { hostCommand(["rm", "-rf", d]) } }
    }

    static func makeTemporaryDirectory(_ what: String) throws -> String {
        var template = Array("/tmp/svm-matrix-\(what)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            let message = "mkdtemp: \(String(cString: strerror(errno)))"
            XCTFail(message)
            throw SetupFailure(message)
        }
        return String(cString: made)
    }

    func file(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o644) -> String {
        let path = scratch + "/" + name
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, mode)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        chmod(path, mode)
        return path
    }

    /// The project's kernel (scripts/test builds it), for cases that need a valid one.
    func projectKernel() throws -> String {
        let home = String(cString: getenv("HOME") ?? strdup("/root"))
        let path = home + "/.cache/svm/default/vmlinux"
        guard access(path, R_OK) == 0 else {
            throw XCTSkip("no guest kernel at \(path) (scripts/build-guest-kernel)")
        }
        return path
    }

    static let resetGuest: [UInt8] = [0xB0, 0xFE, 0xE6, 0x64, 0xF4]  // mov al,0xfe; out 0x64,al; hlt
    static let spinningGuest: [UInt8] = [0xEB, 0xFE]                  // jmp $

    struct Outcome { let status: Int32?; let out: String; let err: String; let diedOfSignal: Bool }

    func svm(_ args: [String], prefix: [String] = [], binary: String = SVMProcess.binary, timeout: Double = 30) throws -> Outcome {
        let p = try SVMProcess(arguments: args, prefix: prefix, environment: ["SVM_RUN_DIR": runDir], binary: binary)
        let status = p.waitForExit(timeout: timeout)
        return Outcome(status: status, out: p.stdoutText, err: p.stderrText, diedOfSignal: p.diedOfSignal)
    }

    /// One line on stderr naming the problem, the status, and no state directory left.
    func assertRefused(_ args: [String], status: Int32 = 2, contains: String, prefix: [String] = [],
                       binary: String = SVMProcess.binary, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try svm(args, prefix: prefix, binary: binary)
        let what = "svm \(args.joined(separator: " ")): \(r.err)"
        XCTAssertEqual(r.status, status, what, file: file, line: line)
        XCTAssertFalse(r.diedOfSignal, what, file: file, line: line)
        XCTAssertEqual(r.err.filter { $0 == "\n" }.count, 1, what, file: file, line: line)
        XCTAssertTrue(r.err.hasPrefix("svm: "), what, file: file, line: line)
        XCTAssertTrue(r.err.contains(contains), "expected '\(contains)' in \(what)", file: file, line: line)
        assertRunDirectoryHolds([], file: file, line: line)
    }

    func runDirectoryEntries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []).sorted()
    }

    func assertRunDirectoryHolds(_ names: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(runDirectoryEntries(), names.sorted(), "state directories in \(runDir)", file: file, line: line)
    }

    // MARK: kernels

    func testKernelFilesThatAreNoKernels() throws {
        try assertRefused(["boot", "--kernel", scratch + "/missing"], contains: "No such file")
        try assertRefused(["boot", "--kernel", file("empty", [])], contains: "file is empty")
        try assertRefused(["boot", "--kernel", scratch], contains: "not a regular file")
        XCTAssertEqual(mkfifo(scratch + "/fifo", 0o600), 0)
        // Opening a FIFO used to wait for a writer for good, deaf to SIGTERM.
        try assertRefused(["boot", "--kernel", scratch + "/fifo"], contains: "not a regular file")
        try assertRefused(["boot", "--firmware", scratch + "/fifo"], contains: "not a regular file")
    }

    /// A bzImage setup header (protocol 2.15, 64-bit entry, LOADED_HIGH, 4 setup sectors).
    static func bzImageHeader(version: UInt16 = 0x020F, xloadflags: UInt8 = 1) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 5 * 512 + 4096)
        h[0x1F1] = 4                                   // setup_sects
        h[0x1FE] = 0x55; h[0x1FF] = 0xAA               // boot_flag
        h[0x200] = 0xEB; h[0x201] = 0x66               // jump: the header ends at 0x268
        h.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        h[0x206] = UInt8(version & 0xFF); h[0x207] = UInt8(version >> 8)
        h[0x211] = 1                                   // loadflags: LOADED_HIGH
        h[0x236] = xloadflags                          // XLF_KERNEL_64
        return h
    }

    func testMalformedKernelHeaders() throws {
        let header = Self.bzImageHeader()
        // Cut at each field boundary of the setup header, and at the end of the setup sectors.
        for cut in [0x1F1, 0x1F2, 0x1FE, 0x200, 0x202, 0x206, 0x211, 0x236, 0x264, 5 * 512] {
            try assertRefused(["boot", "--kernel", file("cut-\(cut)", Array(header[0..<cut]))], contains: "kernel")
        }
        var wrongMagic = header
        wrongMagic[0x202] = UInt8(ascii: "X")
        try assertRefused(["boot", "--kernel", file("magic", wrongMagic)], contains: "not a bzImage or ELF")
        try assertRefused(["boot", "--kernel", file("old", Self.bzImageHeader(version: 0x0209))], contains: "boot protocol 2.09 is too old")
        try assertRefused(["boot", "--kernel", file("no64", Self.bzImageHeader(xloadflags: 0))], contains: "no 64-bit entry point")
        // An ELF64 x86-64 executable header and nothing else: no program headers, no PVH note.
        var elf = [UInt8](repeating: 0, count: 64 + 4096)
        elf.replaceSubrange(0..<7, with: [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1])
        elf[16] = 2; elf[18] = 62; elf[20] = 1; elf[52] = 64; elf[54] = 56
        try assertRefused(["boot", "--kernel", file("elf", elf)], contains: "invalid ELF")
    }

    func testInitrdThatDoesNotFit() throws {
        let kernel = try projectKernel()
        let big = file("big-initrd", [])
        XCTAssertEqual(truncate(big, 100 << 20), 0)
        try assertRefused(["boot", "--kernel", kernel, "--initrd", big, "--mem", "64M"], contains: "larger than the 64 MiB")
        XCTAssertEqual(mkfifo(scratch + "/fifo", 0o600), 0)
        try assertRefused(["boot", "--kernel", kernel, "--initrd", scratch + "/fifo"], contains: "not a regular file")
    }

    // MARK: sizes and counts

    func testMemoryAndCPUValues() throws {
        let guest = file("reset.bin", Self.resetGuest)
        for (mem, message) in [("0", "at least 16M"), ("64T", "the host has only"), ("lots", "not a size"),
                               ("99999999999999999999999", "not a size"), ("16E", "not a size"), ("-5", "not a size")] {
            try assertRefused(["boot", "--firmware", guest, "--mem", mem], contains: "--mem \(mem == "64T" ? "" : mem)")
            let r = try svm(["boot", "--firmware", guest, "--mem", mem])
            XCTAssertTrue(r.err.contains(message), "--mem \(mem): \(r.err)")
        }
        for cpus in ["0", "41", "99999999999999999999", "two"] {
            try assertRefused(["boot", "--firmware", guest, "--mem", "16M", "--cpus", cpus], contains: "--cpus \(cpus)")
        }
        // svm's own limit is within KVM's: its maximum starts.
        let r = try svm(["boot", "--firmware", guest, "--mem", "16M", "--cpus", "40"])
        XCTAssertEqual(r.status, 0, r.err)
        assertRunDirectoryHolds([])
    }

    func testFirmwareRefusesDevicesItWouldNotGet() throws {
        let guest = file("reset.bin", Self.resetGuest)
        try assertRefused(["boot", "--firmware", guest, "--disk", guest], contains: "cannot be combined with --disk")
        try assertRefused(["boot", "--firmware", guest, "--net", "tap=svm0"], contains: "cannot be combined with --net")
        try assertRefused(["boot", "--firmware", guest, "--share", scratch + ":x"], contains: "cannot be combined with --share")
    }

    // MARK: disks, TAPs, names: one svm holds a disk, a TAP and a name

    func testDisksTAPsAndNamesInUse() throws {
        let kernel = try projectKernel()
        try XCTSkipUnless(getuid() == 0, "needs root: TAP interfaces and a second uid")
        let disk = file("disk.img", [], mode: 0o600)
        XCTAssertEqual(truncate(disk, 1 << 20), 0)
        try assertRefused(["boot", "--kernel", kernel, "--disk", scratch + "/missing.img"], contains: "No such file")
        try assertRefused(["boot", "--kernel", kernel, "--disk", scratch], contains: "is a directory")
        XCTAssertEqual(mkfifo(scratch + "/fifo", 0o600), 0)
        try assertRefused(["boot", "--kernel", kernel, "--disk", scratch + "/fifo"], contains: "is a FIFO")
        try assertRefused(["boot", "--kernel", kernel, "--disk", "/dev/null"], contains: "is a character device")
        try assertRefused(["boot", "--kernel", kernel, "--disk", file("odd.img", [UInt8](repeating: 0, count: 1000))],
                          contains: "not a multiple of 512-byte sectors")
        try assertRefused(["boot", "--kernel", kernel, "--net", "tap=a-name-that-is-too-long"], contains: "invalid TAP interface name")

        // Without permission: as nobody, with a kernel and an svm nobody can read (the
        // checkout and the kernel cache may sit under /root) and a run directory it owns.
        let nobodyKernel = scratch + "/vmlinux"
        mustRun(["cp", kernel, nobodyKernel])
        mustRun(["cp", SVMProcess.binary, scratch + "/svm"])
        chmod(nobodyKernel, 0o644)
        chmod(scratch + "/svm", 0o755)
        let nobodyRun = runDir + "/nobody"
        mkdir(nobodyRun, 0o700)
        chown(nobodyRun, 65534, 65534)
        chmod(runDir, 0o755)
        let asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "SVM_RUN_DIR=\(nobodyRun)"]
        let denied = try svm(["boot", "--kernel", nobodyKernel, "--disk", disk], prefix: asNobody, binary: scratch + "/svm")
        XCTAssertEqual(denied.status, 2, denied.err)
        XCTAssertTrue(denied.err.contains("Permission denied"), denied.err)
        XCTAssertEqual(denied.err.filter { $0 == "\n" }.count, 1, denied.err)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: nobodyRun)) ?? ["?"], [])
        rmdir(nobodyRun)

        // The holder: the project's kernel with the disk and a TAP, stopped after the checks
        // (its boot takes far longer than they do on any host).
        let tap = "svmmx\(getpid() % 10000)"
        mustRun(["ip", "tuntap", "add", tap, "mode", "tap"])
        defer { hostCommand(["ip", "link", "del", tap]) }
        let holder = try SVMProcess(arguments: ["boot", "--name", "holder", "--kernel", kernel, "--disk", disk,
                                                "--net", "tap=\(tap)", "--timeout", "120"],
                                    environment: ["SVM_RUN_DIR": runDir])
        for _ in 0..<500 where access(runDir + "/holder/pid", F_OK) != 0 { usleep(20_000) }
        XCTAssertEqual(access(runDir + "/holder/pid", F_OK), 0, "the holder runs")
        try assertRefusedBesideHolder(["boot", "--kernel", kernel, "--disk", disk], contains: "in use by another svm")
        try assertRefusedBesideHolder(["boot", "--kernel", kernel, "--disk", disk + ",readonly"], contains: "in use by another svm")
        try assertRefusedBesideHolder(["boot", "--kernel", kernel, "--net", "tap=\(tap)"], contains: "Device or resource busy")
        try assertRefusedBesideHolder(["boot", "--firmware", file("reset.bin", Self.resetGuest), "--name", "holder"],
                                      contains: "a VM named holder is running")
        kill(holder.pid, SIGTERM)
        XCTAssertEqual(holder.waitForExit(timeout: 30), 143, holder.stderrText)
        XCTAssertFalse(holder.diedOfSignal)
        // A named VM keeps its directory (ps -a, logs) without its socket; rm removes it.
        XCTAssertFalse(runDirectoryEntries().contains("nobody"))
        XCTAssertEqual(access(runDir + "/holder/control.sock", F_OK), -1, "no socket left")
        XCTAssertEqual(try svm(["rm", "holder"]).status, 0)
        assertRunDirectoryHolds([])
    }

    /// As assertRefused, with the holder's directory the only one left.
    func assertRefusedBesideHolder(_ args: [String], contains: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try svm(args)
        let what = "svm \(args.joined(separator: " ")): \(r.err)"
        XCTAssertEqual(r.status, 2, what, file: file, line: line)
        XCTAssertEqual(r.err.filter { $0 == "\n" }.count, 1, what, file: file, line: line)
        XCTAssertTrue(r.err.contains(contains), "expected '\(contains)' in \(what)", file: file, line: line)
        assertRunDirectoryHolds(["holder"], file: file, line: line)
    }

    // MARK: /dev/kvm and the state directory

    /// In a private mount namespace: no /dev/kvm at all, and a /dev/kvm that is not KVM.
    /// (One nobody cannot open: CLITests.testNoPermissionOnDevKVMIsBadInput.)
    func testDevKVMMissingOrNotKVM() throws {
        try XCTSkipUnless(getuid() == 0, "needs root for a mount namespace")
        let guest = file("reset.bin", Self.resetGuest)
        let svmPath = SVMProcess.binary
        try assertRefused(["-c", "mount -t tmpfs none /dev && exec \(svmPath) boot --firmware \(guest) --mem 16M"],
                          contains: "open /dev/kvm failed: No such file", prefix: ["unshare", "-m"], binary: "/bin/sh")
        try assertRefused(["-c", "mount --bind /dev/null /dev/kvm && exec \(svmPath) boot --firmware \(guest) --mem 16M"],
                          contains: "KVM_GET_API_VERSION", prefix: ["unshare", "-m"], binary: "/bin/sh")
    }

    /// A name whose directory is left from a VM that died (SIGKILL) with its socket in
    /// place boots again; a socket path taken by a directory is a host failure (3).
    func testControlSocketPathThatExists() throws {
        let guest = file("reset.bin", Self.resetGuest)
        mkdir(runDir + "/stale", 0o700)
        mustRun(["python3", "-c", "import socket; socket.socket(socket.AF_UNIX).bind('\(runDir)/stale/control.sock')"])
        let r = try svm(["boot", "--firmware", guest, "--mem", "16M", "--name", "stale"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.err, "")
        mkdir(runDir + "/taken", 0o700)
        mkdir(runDir + "/taken/control.sock", 0o700)
        let t = try svm(["boot", "--firmware", guest, "--mem", "16M", "--name", "taken"])
        XCTAssertEqual(t.status, 3, t.err)
        XCTAssertEqual(t.err.filter { $0 == "\n" }.count, 1, t.err)
        XCTAssertTrue(t.err.contains("control.sock (exists and is not a socket)"), t.err)
        XCTAssertEqual(try svm(["rm", "stale"]).status, 0)
        // Its directory stays, as a named VM's does; what is in it is not svm's to remove.
        assertRunDirectoryHolds(["taken"])
    }

    // MARK: guest misbehaviour seen from outside

    /// A guest that writes to the serial port without pause for 5 s: svm's peak RSS stays
    /// small and the log within its bound (the rotation itself: ConsoleLogTests).
    func testConsoleFloodKeepsSVMAndItsLogBounded() throws {
        // mov dx,0x3f8; L: mov si,0x8000; mov cx,0xffff; rep outsb; jmp L
        let flood = file("flood.bin", [0xBA, 0xF8, 0x03, 0xBE, 0x00, 0x80, 0xB9, 0xFF, 0xFF, 0xF3, 0x6E, 0xEB, 0xF5])
        let r = hostCommand(["/bin/sh", "-c", "SVM_RUN_DIR=\(runDir) /usr/bin/time -f 'maxrss %M' \(SVMProcess.binary) boot "
                                + "--firmware \(flood) --mem 16M --name flood --timeout 5 </dev/null >/dev/null"], timeout: 60)
        XCTAssertTrue(r.output.contains("svm: timed out after 5.0 s"), r.output)
        let rss = r.output.split(separator: "\n").first { $0.hasPrefix("maxrss ") }.flatMap { Int($0.dropFirst(7)) }
        XCTAssertNotNil(rss, r.output)
        XCTAssertLessThan(rss ?? .max, 64 << 10, "peak RSS in KiB")
        var logged = 0
        for name in ["console.log", "console.log.1"] {
            var st = stat()
            if stat(runDir + "/flood/" + name, &st) == 0 { logged += Int(st.st_size) }
        }
        XCTAssertGreaterThan(logged, 0, "the flood reached the log")
        XCTAssertLessThanOrEqual(logged, 16 << 20)
        print("console flood: \(logged) bytes logged in 5 s, peak RSS \(rss ?? 0) KiB")
        XCTAssertEqual(try svm(["rm", "flood"]).status, 0)
    }
}

/// SIGINT, SIGTERM and SIGHUP at each phase of a foreground `svm boot` on a terminal (a pty
/// made by python3): while the VM is being built (2 GiB prefaulted, seconds of set-up), while
/// the project's kernel boots, and while a tiny guest runs. Each ends svm by its own handling
/// (exit 128+N, not death by the signal) with one line on stderr, the terminal's settings as
/// they were (`stty -g` before and after), and its state directory gone. During a snapshot:
/// waits for the snapshot work (issue 13 item 4's last phase).
final class SignalPhaseTests: XCTestCase {
    func testSignalsAtEveryPhaseEndSVMCleanlyAndRestoreTheTerminal() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        try XCTSkipUnless(access("/usr/bin/python3", X_OK) == 0, "needs python3 for its pty module")
        let home = String(cString: getenv("HOME") ?? strdup("/root"))
        let kernel = home + "/.cache/svm/default/vmlinux"
        guard access(kernel, R_OK) == 0 else { throw XCTSkip("no guest kernel at \(kernel) (scripts/build-guest-kernel)") }
        let dir = try BadInputMatrixTests.makeTemporaryDirectory("signals")
        defer { hostCommand(["rm", "-rf", dir]) }
        let spin = dir + "/spin.bin"
        let fd = open(spin, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        _ = BadInputMatrixTests.spinningGuest.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let driver = dir + "/signals.py"
        let python = """
        import glob, json, os, pty, signal, subprocess, sys, time
        svm, kernel, spin, top = sys.argv[1:5]
        master, slave = pty.openpty()
        def stty():
            return subprocess.run(["stty", "-g"], stdin=slave, capture_output=True, text=True).stdout.strip()
        def drain():
            try:
                while True:
                    import select
                    r, _, _ = select.select([master], [], [], 0)
                    if not r: return
                    os.read(master, 65536)
            except OSError:
                return
        phases = {
            "set-up": (["--firmware", spin, "--mem", "2G", "--prefault"], "*"),
            "boot": (["--kernel", kernel, "--mem", "256M"], "*/pid"),
            "running": (["--firmware", spin, "--mem", "16M"], "*/pid"),
        }
        results = []
        for phase, (args, ready) in phases.items():
            for name in ["SIGINT", "SIGTERM", "SIGHUP"]:
                run = os.path.join(top, phase + "-" + name)
                os.mkdir(run)
                err = open(run + ".err", "w+")
                before = stty()
                p = subprocess.Popen([svm, "boot"] + args, stdin=slave, stdout=slave, stderr=err,
                                     env=dict(os.environ, SVM_RUN_DIR=run))
                deadline = time.time() + 30
                while not glob.glob(os.path.join(run, ready)) and time.time() < deadline and p.poll() is None:
                    drain(); time.sleep(0.01)
                if phase == "boot":
                    time.sleep(1)   # the kernel is running its early boot (tens of seconds here)
                p.send_signal(getattr(signal, name))
                try:
                    status = p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill(); status = "hung"
                drain()
                err.seek(0)
                results.append({"phase": phase, "signal": int(getattr(signal, name)), "status": status,
                                "stderr": err.read(), "before": before, "after": stty(), "left": os.listdir(run)})
        print(json.dumps(results))
        """
        mustRun(["/bin/sh", "-c", "cat > \(driver) <<'EOF'\n\(python)\nEOF"])
        let r = hostCommand(["/usr/bin/python3", driver, SVMProcess.binary, kernel, spin, dir], timeout: 600)
        XCTAssertEqual(r.status, 0, r.output)
        guard let data = r.output.data(using: .utf8),
              let results = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            return XCTFail("driver output: \(r.output)")
        }
        XCTAssertEqual(results.count, 9)
        for result in results {
            let phase = result["phase"] as? String ?? "?"
            let signal = result["signal"] as? Int ?? 0
            let what = "\(phase), signal \(signal): \(result)"
            // Popen reports death by a signal as -N: 128+N means svm exited by itself.
            XCTAssertEqual(result["status"] as? Int, 128 + signal, what)
            XCTAssertEqual(result["stderr"] as? String, "svm: stopped by signal \(signal)\n", what)
            XCTAssertEqual(result["before"] as? String, result["after"] as? String, "terminal not restored: \(what)")
            XCTAssertEqual((result["left"] as? [String])?.count, 0, "state directory left: \(what)")
        }
    }
}
