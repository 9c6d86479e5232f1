import Glibc
import XCTest

/// A container's network through podman: `run -d -p` of a web server in an svm VM, the
/// page fetched from the host through podman's port publishing, the redirects in the
/// container's network namespace, then stop and rm leave nothing behind. One boot.
/// Needs root, /dev/kvm and podman (with netavark and iptables, as .ci/run installs).
final class RuntimeNetworkTests: XCTestCase {
    func testPodmanPublishesAPortOfAContainerInAVM() throws {
        try RuntimeTests.requirePodman()
        // Names of our own: other podman tests may run on this machine at the same time.
        let tag = "\(getpid())-\(Int(SVMProcess.now() * 1000) % 1_000_000)"
        let image = "localhost/svm-net-test-busybox:\(tag)"
        let name = "svm-net-test-\(tag)"
        let page = "served from an svm guest \(tag)"
        // svm-runtime's default --root: podman passes --runtime-flag to the calls of the
        // command that has it, not to the `podman container cleanup` conmon runs when the
        // container exits. Other containers may be there too: only ours is looked at.
        let root = "/run/svm-runtime"
        let podman = ["podman", "--runtime", RuntimeTests.runtime]

        try RuntimeTests.importBusybox(as: image, page: page)
        defer { _ = hostCommand(["podman", "rmi", "-f", image]) }
        // Whatever happens below, our container goes (never anyone else's).
        defer { _ = hostCommand(podman + ["rm", "-f", "-t", "0", name]) }

        let run = hostCommand(podman + ["run", "-d", "-p", "127.0.0.1:18080:80", "--name", name, image,
                                        "httpd", "-f", "-p", "80", "-h", "/www"], timeout: 120)
        XCTAssertEqual(run.status, 0, "podman run -d: \(run.output)")
        guard run.status == 0 else { return }
        let id = hostCommand(["podman", "inspect", "--format", "{{.Id}}", name]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(id.count, 64, "the container's ID: \(id)")

        // The VM process joined the container's namespace: the TAP and both redirects are there.
        let netns = hostCommand(["podman", "inspect", "--format", "{{.NetworkSettings.SandboxKey}}", name]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(netns.hasPrefix("/run/netns/"), "podman's network namespace: \(netns)")
        let links = hostCommand(["nsenter", "--net=\(netns)", "ip", "-o", "link", "show", "svmtap0"]).output
        XCTAssertTrue(links.contains("svmtap0") && links.contains("UP"), "the VM's TAP, up, in the container's namespace: \(links)")
        let toTap = hostCommand(["nsenter", "--net=\(netns)", "tc", "filter", "show", "dev", "eth0", "ingress"]).output
        XCTAssertTrue(toTap.contains("Redirect to device svmtap0"), toTap)
        let toVeth = hostCommand(["nsenter", "--net=\(netns)", "tc", "filter", "show", "dev", "svmtap0", "ingress"]).output
        XCTAssertTrue(toVeth.contains("Redirect to device eth0"), toVeth)
        XCTAssertNotEqual(hostCommand(["ip", "link", "show", "svmtap0"]).status, 0, "the TAP is not in the host's namespace")

        // The guest boots (about a minute here), then serves the page through podman's DNAT.
        var fetched = ""
        let deadline = SVMProcess.now() + 300
        while SVMProcess.now() < deadline {
            let r = hostCommand(["curl", "-sS", "-m", "5", "http://127.0.0.1:18080/"], timeout: 30)
            if r.status == 0 { fetched = r.output; break }
            usleep(2_000_000)
        }
        XCTAssertEqual(fetched, page + "\n", "the page from the guest's httpd, through -p 127.0.0.1:18080:80")
        if fetched.isEmpty {
            let console = hostCommand(["sh", "-c", "tail -c 2000 \(root)/\(id)/console.log"]).output
            XCTFail("the guest's console: \(console)")
        }

        // stop: SIGTERM to httpd through the VM, which ends; then rm deletes the state.
        let stop = hostCommand(podman + ["stop", "-t", "5", name], timeout: 120)
        XCTAssertEqual(stop.status, 0, "podman stop: \(stop.output)")
        let exitCode = hostCommand(["podman", "inspect", "--format", "{{.State.ExitCode}}", name]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(exitCode, "143", "httpd ended by SIGTERM in the guest (128+15)")
        let rm = hostCommand(podman + ["rm", name], timeout: 120)
        XCTAssertEqual(rm.status, 0, "podman rm: \(rm.output)")

        // Nothing left: no VM process, no virtiofsd, no state, no namespace (and so no TAP
        // or qdisc in it).
        var left = true
        for _ in 0..<60 where left {
            left = access("\(root)/\(id)", F_OK) == 0
            if left { usleep(500_000) }
        }
        XCTAssertFalse(left, "no state directory \(root)/\(id) left")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "_vm \(id)"]).status, 0, "no VM process left")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "virtiofsd.*\(root)/\(id)"]).status, 0, "no virtiofsd left")
        XCTAssertNotEqual(access(netns, F_OK), 0, "podman removed the network namespace \(netns)")
    }

    /// A network namespace like an engine's: a veth `eth0` with an address and a default
    /// route; its peer stays in the host's namespace. Deleting the namespace deletes both.
    func makeNamespace(_ name: String, address: String) {
        let peer = "svmv" + String(name.suffix(10))
        mustRun(["sh", "-c", """
            set -e; ip netns add \(name); ip link add \(peer) type veth peer name eth0 netns \(name)
            ip -n \(name) addr add \(address)/24 dev eth0; ip -n \(name) link set eth0 up; ip link set \(peer) up
            ip -n \(name) route add default via \(address.split(separator: ".").prefix(3).joined(separator: ".")).1
            """])
    }

    /// `create` with the bundle's network namespace at /run/netns/`netns`, a process that
    /// never needs to run (these tests end the VM before `start`).
    func createContainer(root: String, id: String, netns: String) throws -> (SVMProcess, bundle: String) {
        var template = Array("/tmp/svm-net-bundle.XXXXXX".utf8CString)
        let bundle = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        mkdir(bundle + "/rootfs", 0o755)
        let config = """
            {"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["/bin/true"],"cwd":"/"},
             "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/\(netns)"}]}}
            """
        mustRun(["sh", "-c", "cat > \(bundle)/config.json <<'EOF'\n\(config)\nEOF"])
        let p = try SVMProcess(arguments: ["--root", root, "create", "--bundle", bundle, "--pid-file", bundle + "/pid", id],
                               binary: RuntimeTests.runtime)
        return (p, bundle)
    }

    func requireVMHost() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root") }
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { throw XCTSkip("needs /dev/kvm") }
        guard access(RuntimeTests.runtime, X_OK) == 0 else { throw XCTSkip("no svm-runtime beside \(SVMProcess.binary)") }
    }

    /// `start` connects the network (the engine may make it after create): the TAP comes
    /// up with both redirects, even while the guest still boots. When the VM process ends
    /// (here by delete --force, which ends the VM at once), the ingress qdiscs it added and
    /// the TAP are gone from the namespace, which is otherwise as it was.
    func testRedirectsComeAtStartAndGoWhenTheVMProcessEnds() throws {
        try requireVMHost()
        let netns = "svm-net-end-\(getpid())"
        let root = "/run/svm-runtime-net-test-end"
        defer { rmdir(root) }  // empty by then, or the test has failed and says why
        makeNamespace(netns, address: "10.213.71.2")
        defer { _ = hostCommand(["ip", "netns", "del", netns]) }
        let id = "net-end-\(getpid())"
        let (create, bundle) = try createContainer(root: root, id: id, netns: netns)
        defer { _ = hostCommand(["rm", "-rf", bundle]) }
        XCTAssertEqual(create.waitForExit(timeout: 120), 0, "create: \(create.stderrText)")
        let pid = pid_t(hostCommand(["cat", bundle + "/pid"]).output) ?? 0
        XCTAssertGreaterThan(pid, 0)
        XCTAssertEqual(hostCommand(["ip", "-n", netns, "-o", "link", "show", "svmtap0"]).status, 0, "the VM's TAP is there from create")
        XCTAssertFalse(hostCommand(["tc", "-n", netns, "filter", "show", "dev", "eth0", "ingress"]).output.contains("svmtap0"),
                       "no redirect before start")
        let start = try SVMProcess(arguments: ["--root", root, "start", id], binary: RuntimeTests.runtime)
        XCTAssertEqual(start.waitForExit(timeout: 60), 0, start.stderrText)
        let linked = hostCommand(["ip", "-n", netns, "-o", "link", "show", "svmtap0"]).output
        XCTAssertTrue(linked.contains("UP"), "the TAP, up: \(linked)")
        XCTAssertTrue(hostCommand(["tc", "-n", netns, "filter", "show", "dev", "eth0", "ingress"]).output.contains("svmtap0"))
        XCTAssertTrue(hostCommand(["tc", "-n", netns, "filter", "show", "dev", "svmtap0", "ingress"]).output.contains("eth0"))

        let delete = try SVMProcess(arguments: ["--root", root, "delete", "--force", id], binary: RuntimeTests.runtime)
        XCTAssertEqual(delete.waitForExit(timeout: 60), 0, delete.stderrText)
        var alive = true
        for _ in 0..<120 where alive {
            alive = kill(pid, 0) == 0 && !hostCommand(["cat", "/proc/\(pid)/stat"]).output.contains(") Z")
            if alive { usleep(250_000) }
        }
        XCTAssertFalse(alive, "the VM process ended")
        var qdiscs = ""
        for _ in 0..<20 {
            qdiscs = hostCommand(["tc", "-n", netns, "qdisc", "show"]).output
            if !qdiscs.contains("ingress") && !qdiscs.contains("svmtap0") { break }
            usleep(250_000)
        }
        XCTAssertFalse(qdiscs.contains("ingress"), "the ingress qdiscs were removed: \(qdiscs)")
        XCTAssertNotEqual(hostCommand(["ip", "-n", netns, "link", "show", "svmtap0"]).status, 0, "the TAP is gone")
        XCTAssertTrue(hostCommand(["ip", "-n", netns, "-o", "addr", "show", "eth0"]).output.contains("10.213.71.2/24"),
                      "the veth is as the engine left it")
        XCTAssertEqual(hostCommand(["sh", "-c", "ls -A \(root) 2>/dev/null"]).output, "")
    }

    /// A redirect that cannot be set up (the veth already has an ingress qdisc, which is not
    /// ours to replace) fails `start` with one line naming the command and what tc said;
    /// the container stays created, and delete leaves nothing: no state, no VM process,
    /// no TAP; the engine's qdisc stays.
    func testNetworkSetupFailureIsOneLineAndLeavesNothing() throws {
        try requireVMHost()
        let netns = "svm-net-fail-\(getpid())"
        let root = "/run/svm-runtime-net-test-fail"
        defer { rmdir(root) }  // empty by then, or the test has failed and says why
        makeNamespace(netns, address: "10.213.72.2")
        defer { _ = hostCommand(["ip", "netns", "del", netns]) }
        mustRun(["tc", "-n", netns, "qdisc", "add", "dev", "eth0", "ingress"])
        let id = "net-fail-\(getpid())"
        let (create, bundle) = try createContainer(root: root, id: id, netns: netns)
        defer { _ = hostCommand(["rm", "-rf", bundle]) }
        XCTAssertEqual(create.waitForExit(timeout: 120), 0, "create: \(create.stderrText)")
        let start = try SVMProcess(arguments: ["--root", root, "start", id], binary: RuntimeTests.runtime)
        XCTAssertEqual(start.waitForExit(timeout: 60), 5, "start fails: \(start.stderrText)")
        let lines = start.stderrText.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(start.stderrText)")
        XCTAssertTrue(start.stderrText.contains("`tc qdisc add dev eth0 ingress` failed with status 2"), start.stderrText)
        let state = try SVMProcess(arguments: ["--root", root, "state", id], binary: RuntimeTests.runtime)
        XCTAssertEqual(state.waitForExit(timeout: 30), 0)
        XCTAssertTrue(state.stdoutText.contains(#""status":"created""#), "still created: \(state.stdoutText)")
        let delete = try SVMProcess(arguments: ["--root", root, "delete", "--force", id], binary: RuntimeTests.runtime)
        XCTAssertEqual(delete.waitForExit(timeout: 60), 0, delete.stderrText)
        XCTAssertEqual(hostCommand(["sh", "-c", "ls -A \(root) 2>/dev/null"]).output, "", "nothing left in --root")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "_vm \(id)"]).status, 0, "no VM process left")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "virtiofsd.*\(root)/\(id)"]).status, 0, "no virtiofsd left")
        var tapGone = false
        for _ in 0..<20 where !tapGone {
            tapGone = hostCommand(["ip", "-n", netns, "link", "show", "svmtap0"]).status != 0
            if !tapGone { usleep(250_000) }
        }
        XCTAssertTrue(tapGone, "no TAP left")
        XCTAssertTrue(hostCommand(["tc", "-n", netns, "qdisc", "show", "dev", "eth0"]).output.contains("ingress"),
                      "the qdisc that was there before stays")
    }
}
