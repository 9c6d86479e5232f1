import Glibc
import XCTest

/// svm-runtime through its real binary: the bad-bundle table (no VM needed: each case is
/// refused before one boots, and leaves nothing behind), and podman running a container
/// in an svm VM (one boot, several assertions). Needs root and /dev/kvm; the podman test
/// needs podman (CI installs it, with `default_ulimits = []`, see .ci/run).
final class RuntimeTests: XCTestCase {
    static var runtime: String {
        let svm = SVMProcess.binary
        return String(svm[..<(svm.lastIndex(of: "/") ?? svm.startIndex)]) + "/svm-runtime"
    }

    func makeBundle(_ config: String?, rootfs: Bool = true) throws -> String {
        var template = Array("/tmp/svm-bundle.XXXXXX".utf8CString)
        let dir = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        if rootfs { mkdir(dir + "/rootfs", 0o755) }
        if let config {
            let fd = open(dir + "/config.json", O_WRONLY | O_CREAT, 0o644)
            _ = config.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        return dir
    }


    /// Imports a busybox root file system as a local image (no registry here).
    static func importBusybox(as image: String, page: String = "svm test page") throws {
        var template = Array("/tmp/svm-image.XXXXXX".utf8CString)
        let rootfs = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { _ = hostCommand(["rm", "-rf", rootfs, rootfs + ".tar"]) }
        mustRun(["sh", "-c", """
            set -e; mkdir -p \(rootfs)/bin \(rootfs)/etc \(rootfs)/tmp \(rootfs)/www; cp /bin/busybox \(rootfs)/bin/
            for a in $(/bin/busybox --list); do [ -e \(rootfs)/bin/$a ] || ln -s busybox \(rootfs)/bin/$a; done
            echo 'root:x:0:0:root:/root:/bin/sh' > \(rootfs)/etc/passwd; echo 'root:x:0:' > \(rootfs)/etc/group
            echo '\(page)' > \(rootfs)/www/index.html
            tar -C \(rootfs) -cf \(rootfs).tar . && podman import -q \(rootfs).tar \(image) >/dev/null
            """])
    }

    static func requirePodman() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root") }
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { throw XCTSkip("needs /dev/kvm") }
        guard hostCommand(["sh", "-c", "command -v podman"]).status == 0 else { throw XCTSkip("needs podman") }
        guard access(runtime, X_OK) == 0 else { throw XCTSkip("no svm-runtime beside \(SVMProcess.binary)") }
    }

    func testBadBundlesAreOneLineAndLeaveNothing() throws {
        guard access(Self.runtime, X_OK) == 0 else { throw XCTSkip("no svm-runtime beside \(SVMProcess.binary)") }
        let root = try makeBundle(nil, rootfs: false)
        defer { _ = hostCommand(["rm", "-rf", root]) }
        let good = #"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}"#
        let cases: [(config: String?, rootfs: Bool, id: String, status: Int32, message: String)] = [
            (nil, true, "c1", 3, "config.json"),
            ("{not json", true, "c2", 3, "invalid JSON"),
            (#"{"ociVersion":"9.0","root":{"path":"rootfs"},"process":{"args":["sh"]}}"#, true, "c3", 3, "ociVersion \"9.0\" is not supported"),
            (good, false, "c4", 3, "not a directory"),
            (good, true, "bad/id", 2, "not a container ID"),
            // A terminal needs somewhere to send its master.
            (#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"terminal":true}}"#, true, "c5", 2, "--console-socket"),
        ]
        for c in cases {
            let bundle = try makeBundle(c.config, rootfs: c.rootfs)
            defer { _ = hostCommand(["rm", "-rf", bundle]) }
            let log = bundle + "/log.json"
            let p = try SVMProcess(arguments: ["--root", root, "--log", log, "--log-format", "json", "create", "--bundle", bundle,
                                               "--pid-file", bundle + "/pid", c.id], binary: Self.runtime)
            let status = p.waitForExit(timeout: 30)
            XCTAssertEqual(status, c.status, "\(c.id): \(p.stderrText)")
            let lines = p.stderrText.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "one line: \(p.stderrText)")
            XCTAssertTrue(p.stderrText.contains(c.message), "\(c.id): \(p.stderrText)")
            let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            XCTAssertTrue(logged.contains("\"level\":\"error\"") && logged.contains("\"msg\":"), "json log: \(logged)")
            XCTAssertNotEqual(access(bundle + "/pid", F_OK), 0, "no pid file after a failed create")
            XCTAssertEqual(hostCommand(["ls", "-A", root]).output, "", "nothing left in --root")
        }
        // The other commands on a container that is not there.
        for args in [["state", "nope"], ["start", "nope"], ["kill", "nope", "KILL"], ["delete", "nope"]] {
            let p = try SVMProcess(arguments: ["--root", root] + args, binary: Self.runtime)
            XCTAssertEqual(p.waitForExit(timeout: 30), 4, "\(args): \(p.stderrText)")
            XCTAssertTrue(p.stderrText.contains("does not exist"), p.stderrText)
        }
        let version = try SVMProcess(arguments: ["--version"], binary: Self.runtime)
        XCTAssertEqual(version.waitForExit(timeout: 30), 0)
        XCTAssertTrue(version.stdoutText.hasPrefix("runc version "), "callers parse runc's first line: \(version.stdoutText)")
        let kill = try SVMProcess(arguments: ["--root", root, "kill", "x", "NOSIG"], binary: Self.runtime)
        XCTAssertEqual(kill.waitForExit(timeout: 30), 2, kill.stderrText)
    }

    /// Host hooks through the real binary, without waiting for a guest: prestart sees the
    /// state (creating, the VM process's pid) on stdin; a failing createRuntime hook fails
    /// create and leaves nothing; a created container is deleted without --force, and
    /// poststop runs after delete.
    func testHooksRunOnTheHost() throws {
        guard geteuid() == 0, access("/dev/kvm", R_OK | W_OK) == 0 else { throw XCTSkip("needs root and /dev/kvm") }
        guard access(Self.runtime, X_OK) == 0 else { throw XCTSkip("no svm-runtime beside \(SVMProcess.binary)") }
        let root = try makeBundle(nil, rootfs: false)
        defer { _ = hostCommand(["rm", "-rf", root]) }
        func config(createRuntimeStatus: Int, bundle: String) -> String {
            #"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"hooks":{"#
                + #""prestart":[{"path":"/bin/sh","args":["sh","-c","cat > \#(bundle)/prestart.json"]}],"#
                + #""createRuntime":[{"path":"/bin/sh","args":["sh","-c","echo said-by-hook; exit \#(createRuntimeStatus)"]}],"#
                + #""poststop":[{"path":"/bin/sh","args":["sh","-c","cat > \#(bundle)/poststop.json"],"timeout":10}]}}"#
        }
        // A failing createRuntime hook: create fails, after prestart ran; nothing is left.
        let failing = try makeBundle(nil)
        defer { _ = hostCommand(["rm", "-rf", failing]) }
        mustRun(["sh", "-c", "cat > \(failing)/config.json <<'EOF'\n\(config(createRuntimeStatus: 3, bundle: failing))\nEOF"])
        let p = try SVMProcess(arguments: ["--root", root, "create", "--bundle", failing, "--pid-file", failing + "/pid", "hooked1"],
                               binary: Self.runtime)
        XCTAssertEqual(p.waitForExit(timeout: 60), 1, p.stderrText)
        XCTAssertTrue(p.stderrText.contains("hooks.createRuntime[0] /bin/sh: exit status 3: said-by-hook"), p.stderrText)
        let prestart = (try? String(contentsOfFile: failing + "/prestart.json", encoding: .utf8)) ?? ""
        XCTAssertTrue(prestart.contains(#""status":"creating""#) && prestart.contains(#""id":"hooked1""#), prestart)
        XCTAssertFalse(prestart.contains(#""pid":0"#), "the VM process's pid: \(prestart)")
        XCTAssertNotEqual(access(failing + "/pid", F_OK), 0, "no pid file")
        XCTAssertEqual(hostCommand(["ls", "-A", root]).output, "", "nothing left in --root")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*_vm hooked1"]).status, 0, "no VM process left")
        // Hooks that succeed: created, then delete --force runs poststop with the state.
        let good = try makeBundle(nil)
        defer { _ = hostCommand(["rm", "-rf", good]) }
        mustRun(["sh", "-c", "cat > \(good)/config.json <<'EOF'\n\(config(createRuntimeStatus: 0, bundle: good))\nEOF"])
        let c = try SVMProcess(arguments: ["--root", root, "create", "--bundle", good, "--pid-file", good + "/pid", "hooked2"],
                               binary: Self.runtime)
        XCTAssertEqual(c.waitForExit(timeout: 60), 0, c.stderrText)
        let pid = ((try? String(contentsOfFile: good + "/pid", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue((try? String(contentsOfFile: good + "/prestart.json", encoding: .utf8))?.contains(#""pid":\#(pid)"#) ?? false)
        // A created container (its process never started) is deleted without --force, as
        // with runc: buildah deletes a failed RUN step's container so.
        let d = try SVMProcess(arguments: ["--root", root, "delete", "hooked2"], binary: Self.runtime)
        XCTAssertEqual(d.waitForExit(timeout: 60), 0, d.stderrText)
        let poststop = (try? String(contentsOfFile: good + "/poststop.json", encoding: .utf8)) ?? ""
        XCTAssertTrue(poststop.contains(#""status":"stopped""#) && poststop.contains(#""id":"hooked2""#), poststop)
        XCTAssertEqual(hostCommand(["ls", "-A", root]).output, "", "nothing left in --root")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*_vm hooked2"]).status, 0, "no VM process left")
    }

    /// `podman run --rm` of a local busybox image: the output, the status, stderr apart
    /// from stdout, the guest's kernel and hostname; nothing left afterwards.
    func testPodmanRunsAContainerInAVM() throws {
        try Self.requirePodman()
        let image = "localhost/svm-test-busybox:1"
        try Self.importBusybox(as: image)
        let rootfs = try makeBundle(nil, rootfs: false)
        defer { _ = hostCommand(["rm", "-rf", rootfs]) }
        // The default --root: podman passes --runtime-flag values to its own runtime calls
        // but not to the `podman container cleanup` that conmon runs when the container
        // exits, and that is what deletes a --rm container's state.
        let root = ContainerRoot.path
        let cidFile = rootfs + ".cid"
        defer { unlink(cidFile) }
        // A host directory as a volume, written in the guest; a host file the guest must
        // not see; the root read-only; stdin piped; binary output.
        let volume = rootfs + ".vol"
        mkdir(volume, 0o755)
        let marker = "/var/tmp/svm-host-only-\(getpid())"
        mustRun(["touch", marker])
        defer {
            _ = hostCommand(["rm", "-rf", volume])
            unlink(marker)
        }
        let script = "echo hi; echo to-stderr >&2; echo kernel=$(uname -r); echo host=$(hostname); "
            + "test -e /proc/self/stat && echo proc; read line; echo stdin:$line; echo from-guest > /data/out.txt; "
            + "touch /rootcheck 2>/dev/null && echo root-writable || echo root-read-only; "
            + "test -e \(marker) && echo host-file-visible || echo host-file-hidden; "
            + "echo procs=$(ls /proc | grep -c '^[0-9]'); printf 'bin:\\000\\001\\377\\r\\n'; exit 3"
        let p = try SVMProcess(arguments: ["--runtime", Self.runtime, "run", "--rm", "-i", "--cidfile", cidFile, "--read-only",
                                           "-v", "\(volume):/data", "--name", "svm-test-run", "--hostname", "svmbox",
                                           image, "sh", "-c", script],
                               binary: "podman")
        p.send("piped-line\n")
        p.closeStdin()
        let status = p.waitForExit(timeout: 600)
        XCTAssertEqual(status, 3, "the container's status: \(p.stdoutText) / \(p.stderrText)")
        let out = p.stdoutText
        XCTAssertTrue(out.contains("hi\n"), out)
        XCTAssertFalse(out.contains("to-stderr"), "stderr stays apart: \(out)")
        XCTAssertTrue(p.stderrText.contains("to-stderr"), p.stderrText)
        XCTAssertTrue(out.contains("host=svmbox"), out)
        XCTAssertTrue(out.contains("proc"), "the container's /proc is mounted: \(out)")
        let hostKernel = hostCommand(["uname", "-r"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(out.contains("kernel="), out)
        XCTAssertFalse(out.contains("kernel=\(hostKernel)\n"), "the guest's kernel, not the host's \(hostKernel): \(out)")
        XCTAssertTrue(out.contains("stdin:piped-line\n"), "stdin piped to the container's process: \(out)")
        XCTAssertEqual((try? String(contentsOfFile: volume + "/out.txt", encoding: .utf8)) ?? "", "from-guest\n",
                       "the volume's file, written in the guest, read on the host")
        XCTAssertTrue(out.contains("root-read-only"), "--read-only: \(out)")
        XCTAssertTrue(out.contains("host-file-hidden"), "the host's files are not in the container: \(out)")
        let guestProcesses = out.split(separator: "\n").first { $0.hasPrefix("procs=") }.flatMap { Int($0.dropFirst(6)) } ?? -1
        let hostProcesses = Int(hostCommand(["sh", "-c", "ls /proc | grep -c '^[0-9]'"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertTrue(guestProcesses > 0 && guestProcesses < 40 && guestProcesses < hostProcesses,
                      "the guest's processes only (\(guestProcesses)), not the host's \(hostProcesses)")
        let binary: [UInt8] = Array("bin:".utf8) + [0, 1, 0xff, 0x0d, 0x0a]
        XCTAssertNotNil(p.stdout.firstRange(of: binary), "stdout is byte for byte (NUL, 0xff, CR LF unchanged)")
        // podman deletes it (from conmon's exit command, after `run` returns): no state,
        // no VM process, no virtiofsd of it.
        let id = ((try? String(contentsOfFile: cidFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(id.isEmpty, "podman wrote the container's ID")
        var left = true
        for _ in 0..<120 {
            left = access(root + "/" + id, F_OK) == 0
            if !left { break }
            usleep(500_000)
        }
        XCTAssertFalse(left, "podman's delete removed the container's state \(root)/\(id)")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*_vm \(id)"]).status, 0, "no VM process left")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "virtiofsd.*\(id)"]).status, 0, "no virtiofsd left")
        _ = hostCommand(["podman", "rmi", "-f", image])
    }
}

/// svm-runtime's default --root, where containers run by engines keep their state.
enum ContainerRoot {
    static let path = "/run/svm-runtime"
}
