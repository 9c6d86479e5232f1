import Glibc
import XCTest

/// `svm run` through the real binary. Each run boots the project's kernel (about 45-60 s
/// on hosts that emulate guest kernel code), so there are few runs and each checks
/// several things. Needs /dev/kvm (skips without it), the guest kernel
/// (scripts/build-guest-kernel) and the guest init (scripts/build-init); scripts/test
/// builds both. Every run gets a private TMPDIR, which must be empty afterwards.
final class SVMRunTests: XCTestCase {
    static let runTimeout = 600.0

    var tmpdir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/svm-run-test.XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            let message = "mkdtemp failed: \(String(cString: strerror(errno)))"
            XCTFail(message)
            throw SetupFailure(message)
        }
        tmpdir = String(cString: p)
        let dir = tmpdir
        addTeardownBlock { hostCommand(["/bin/rm", "-rf", dir]) }
    }

    func requireGuest() throws {
        try XCTSkipUnless(access("/dev/kvm", F_OK) == 0, "needs /dev/kvm")
        for name in ["vmlinux", "svm-init"] {
            let path = LinuxBootTests.cacheDirectory + "/default/" + name
            guard access(path, R_OK) == 0 else {
                XCTFail("\(path) is missing: build it with scripts/build-guest-kernel and scripts/build-init (scripts/test does)")
                throw XCTSkip("no guest")
            }
        }
    }

    /// Runs `svm run ARGS` with svm's TMPDIR inside this test's directory.
    func svmRun(_ arguments: [String], timeout: Double = runTimeout) throws -> (status: Int32?, out: String, err: String, seconds: Double) {
        let scratch = tmpdir + "/svm-tmp"
        mkdir(scratch, 0o700)
        let start = SVMProcess.now()
        let p = try SVMProcess(arguments: ["run"] + arguments, environment: ["TMPDIR": scratch])
        let status = p.waitForExit(timeout: timeout)
        return (status, p.stdoutText, p.stderrText, SVMProcess.now() - start)
    }

    /// PIDs whose command line has `argument` (read here, so no helper matches itself).
    func processes(withArgument argument: String) -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var found: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name) else { continue }
            let fd = open("/proc/\(pid)/cmdline", O_RDONLY)
            guard fd >= 0 else { continue }
            var bytes = [UInt8](repeating: 0, count: 1 << 16)
            let n = read(fd, &bytes, bytes.count)
            close(fd)
            guard n > 0 else { continue }
            let args = bytes[0..<n].split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if args.contains(argument) { found.append(pid) }
        }
        return found
    }

    func assertNothingLeftBehind(file: StaticString = #filePath, line: UInt = #line) {
        let r = hostCommand(["/bin/ls", "-A", tmpdir + "/svm-tmp"])
        XCTAssertEqual(r.output, "", "svm left its temporary files behind", file: file, line: line)
    }

    // MARK: - Bad input: no boot

    func testBadInputExits125WithOneLine() throws {
        let script = tmpdir + "/script.sh"
        mustRun(["/bin/sh", "-c", "printf '#!/bin/sh\\necho hi\\n' > \(script) && chmod 755 \(script)"])
        let cases: [([String], String)] = [
            (["--", "svm-no-such-program"], "svm-no-such-program: program not found"),
            (["--", script], "\(script): not an ELF executable"),
            (["--volume", tmpdir + "/missing:/data", "--", "/bin/echo"], "--volume \(tmpdir)/missing: stat failed: No such file or directory (errno 2)"),
            (["--frobnicate", "--", "/bin/echo"], "unknown option --frobnicate"),
            ([], "no program given"),
        ]
        for (args, expected) in cases {
            let r = try svmRun(args, timeout: 30)
            XCTAssertEqual(r.status, 125, "\(args): \(r.err)")
            XCTAssertEqual(r.out, "", "\(args)")
            XCTAssertTrue(r.err.hasPrefix("svm: ") && r.err.contains(expected), "\(args): expected '\(expected)' in \(r.err)")
            XCTAssertEqual(r.err.filter { $0 == "\n" }.count, 1, "\(args): \(r.err)")
            assertNothingLeftBehind()
        }
        let help = try svmRun(["--help"], timeout: 30)
        XCTAssertEqual(help.status, 0)
        for text in ["--volume", "COPIED BACK", "1 GiB", "--tty", "MERGED", "--timeout", "--root", "125", "124", "128+N"] {
            XCTAssertTrue(help.out.contains(text), "svm run --help lacks \(text)")
        }
    }

    // MARK: - Runs

    /// The smallest dynamic program: exact stdout, nothing else on stderr (no kernel
    /// messages), status 0, temporary files gone.
    func testEchoHello() throws {
        try requireGuest()
        let r = try svmRun(["--", "/bin/echo", "hello"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "hello\n")
        XCTAssertEqual(r.err, "")
        assertNothingLeftBehind()
    }

    /// stdout and stderr stay apart, and the program's status is svm's.
    func testShellStreamsAndExitStatus() throws {
        try requireGuest()
        let r = try svmRun(["--", "/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
        XCTAssertEqual(r.status, 7, r.err)
        XCTAssertEqual(r.out, "out\n")
        XCTAssertEqual(r.err, "err\n")
        assertNothingLeftBehind()
    }

    /// A program killed by a signal: 128 + the signal, as a shell reports it.
    func testKilledBySignalIs128PlusSignal() throws {
        try requireGuest()
        let r = try svmRun(["--", "/bin/sh", "-c", "kill -9 $$"])
        XCTAssertEqual(r.status, 137, r.err)
        XCTAssertEqual(r.out, "")
        XCTAssertEqual(r.err, "")
        assertNothingLeftBehind()
    }

    /// The limit counts from svm's start (boot included): 124 shortly after it, one line
    /// on stderr, no svm process and no temporary files left.
    func testTimeoutStopsTheVM() throws {
        try requireGuest()
        let mark = "SVM_RUN_TEST_MARK=\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let r = try svmRun(["--timeout", "90", "--env", mark, "--", "/bin/sleep", "1000"], timeout: 200)
        XCTAssertEqual(r.status, 124, r.err)
        XCTAssertEqual(r.err, "svm: timed out after 90 s\n")
        XCTAssertGreaterThanOrEqual(r.seconds, 90)
        XCTAssertLessThan(r.seconds, 100)
        assertNothingLeftBehind()
        XCTAssertEqual(processes(withArgument: mark), [], "processes left behind")
        XCTAssertTrue(processes(withArgument: CommandLine.arguments[0]).contains(getpid()), "the /proc scan works")
    }

    /// A program with many libraries. Python also needs a little of its standard
    /// library, given here as a read-only volume (its start-up modules are frozen into
    /// the binary, except the encodings package).
    func testPythonWithItsStandardLibraryInAVolume() throws {
        try requireGuest()
        let python = "/usr/bin/python3"
        try XCTSkipUnless(access(python, X_OK) == 0, "needs \(python)")
        let version = hostCommand([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2], end='')"]).output
        let stdlib = "/usr/lib/python\(version)"
        let lib = tmpdir + "/pylib"
        // os.py and lib-dynload/ are the landmarks by which it finds its prefixes.
        mustRun(["/bin/mkdir", "-p", lib + "/encodings", lib + "/lib-dynload"])
        for file in ["os.py", "encodings/__init__.py", "encodings/aliases.py", "encodings/utf_8.py"] {
            mustRun(["/bin/cp", stdlib + "/" + file, lib + "/" + file])
        }
        let r = try svmRun(["--volume", "\(lib):\(stdlib):ro", "--", python, "-c", "print(6*7)"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "42\n")
        XCTAssertEqual(r.err, "")
        assertNothingLeftBehind()
    }

    /// 1 MiB of random bytes through /bin/cat: stdin and stdout are binary-safe (no tty
    /// translation, nothing lost or added). Slow where guest kernel code is emulated: the
    /// guest's tty layer handles stdin a byte at a time.
    func testBinaryStdinThroughCat() throws {
        try requireGuest()
        let input = tmpdir + "/in.bin", output = tmpdir + "/out.bin", errors = tmpdir + "/err.txt"
        mustRun(["/bin/sh", "-c", "head -c 1048576 /dev/urandom > \(input)"])
        let scratch = tmpdir + "/svm-tmp"
        mkdir(scratch, 0o700)
        let r = hostCommand(["/bin/sh", "-c",
                             "TMPDIR=\(scratch) exec \(SVMProcess.binary) run -- /bin/cat < \(input) > \(output) 2> \(errors)"])
        XCTAssertEqual(r.status, 0, hostCommand(["/bin/cat", errors]).output)
        let sums = hostCommand(["/usr/bin/sha256sum", input, output]).output.split(separator: "\n").map { $0.prefix(64) }
        XCTAssertEqual(sums.count, 2)
        XCTAssertEqual(sums.first, sums.last, "sha256 of stdin and stdout differ")
        XCTAssertEqual(hostCommand(["/usr/bin/stat", "-c", "%s", output]).output, "1048576\n")
        XCTAssertEqual(hostCommand(["/bin/cat", errors]).output, "")
        assertNothingLeftBehind()
    }

    /// One run that pokes at the sandbox's walls with shell built-ins only (the guest has
    /// nothing but /bin/sh and its libraries): the host's files are not there, the root
    /// and the read-only volume cannot be written, only harmless devices can, there is no
    /// network, the program is nobody. Afterwards the host is unchanged.
    func testIsolation() throws {
        try requireGuest()
        let marker = tmpdir + "/host-marker"
        mustRun(["/bin/sh", "-c", "echo secret > \(marker)"])
        let volume = tmpdir + "/vol"
        mustRun(["/bin/mkdir", "-p", volume + "/sub"])
        mustRun(["/bin/sh", "-c", "echo volume-data > \(volume)/data.txt"])
        let before = hostCommand(["/bin/sh", "-c", "cd \(tmpdir) && find . -path ./svm-tmp -prune -o -print | sort && cat host-marker vol/data.txt"]).output

        let script = """
        if [ -e \(marker) ]; then echo "marker: visible"; else echo "marker: absent"; fi
        if [ -e /etc/passwd ]; then echo "etc: visible"; else echo "etc: absent"; fi
        if (echo x > /escape) 2>/dev/null; then echo "root: writable"; else echo "root: denied"; fi
        w=""
        for f in /dev/* /dev/*/*; do
          [ -c "$f" ] || [ -b "$f" ] || continue
          if (echo x > "$f") 2>/dev/null; then w="$w ${f#/dev/}"; fi
        done
        echo "devices:$w"
        read -r line < /data/data.txt; echo "volume: $line"
        if (echo x > /data/new.txt) 2>/dev/null; then echo "volume-create: allowed"; else echo "volume-create: denied"; fi
        if (echo x >> /data/data.txt) 2>/dev/null; then echo "volume-append: allowed"; else echo "volume-append: denied"; fi
        n=""; for i in /sys/class/net/*; do n="$n ${i##*/}"; done; echo "net:$n"
        while read -r k v rest; do [ "$k" = "Uid:" ] && echo "uid: $v"; done < /proc/self/status
        echo "cwd: $(pwd)"
        """
        let r = try svmRun(["--volume", "\(volume):/data:ro", "--", "/bin/sh", "-c", script])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.err, "")
        let lines = r.out.split(separator: "\n").map(String.init)
        for expected in ["marker: absent", "etc: absent", "root: denied", "volume: volume-data",
                         "volume-create: denied", "volume-append: denied", "uid: 65534", "cwd: /tmp"] {
            XCTAssertTrue(lines.contains(expected), "expected '\(expected)' in:\n\(r.out)")
        }
        let devices = lines.first { $0.hasPrefix("devices:") }.map { $0.dropFirst(8).split(separator: " ").map(String.init) }
        let harmless: Set = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"]
        XCTAssertNotNil(devices, r.out)
        XCTAssertEqual(Set(devices ?? []).subtracting(harmless), [], "writable devices: \(devices ?? [])")
        let net = lines.first { $0.hasPrefix("net:") }.map { $0.dropFirst(4).split(separator: " ").map(String.init) }
        XCTAssertNotNil(net, r.out)
        XCTAssertEqual(Set(net ?? []).subtracting(["lo", "*"]), [], "network interfaces: \(net ?? [])")

        let after = hostCommand(["/bin/sh", "-c", "cd \(tmpdir) && find . -path ./svm-tmp -prune -o -print | sort && cat host-marker vol/data.txt"]).output
        XCTAssertEqual(after, before, "the host changed")
        XCTAssertEqual(access("/escape", F_OK), -1)
        assertNothingLeftBehind()
    }
}

extension SVMRunTests {
    /// SIGTERM while the guest boots: svm stops the VM, removes its files and exits
    /// 128 + 15, at once (a couple of seconds of boot, no more).
    func testSIGTERMWhileBootingExits143() throws {
        try requireGuest()
        let scratch = tmpdir + "/svm-tmp"
        mkdir(scratch, 0o700)
        let p = try SVMProcess(arguments: ["run", "--", "/bin/sleep", "1000"], environment: ["TMPDIR": scratch])
        usleep(2_000_000)
        kill(p.pid, SIGTERM)
        let start = SVMProcess.now()
        XCTAssertEqual(p.waitForExit(timeout: 30), 143, p.stderrText)
        XCTAssertLessThan(SVMProcess.now() - start, 5)
        XCTAssertEqual(p.stderrText, "svm: stopped by signal 15\n")
        assertNothingLeftBehind()
    }
}
