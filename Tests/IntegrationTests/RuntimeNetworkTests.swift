import Glibc
import XCTest

/// A container's network through podman: `run -d -p` of a web server in an svm VM, the
/// page fetched from the host through podman's port publishing, the redirects in the
/// container's network namespace, then stop and rm leave nothing behind. One boot.
/// Needs root, /dev/kvm and podman (with netavark and iptables, as .ci/run installs).
final class RuntimeNetworkTests: XCTestCase {
    func testPodmanPublishesAPortOfAContainerInAVM() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root") }
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { throw XCTSkip("needs /dev/kvm") }
        guard hostCommand(["sh", "-c", "command -v podman"]).status == 0 else { throw XCTSkip("needs podman") }
        guard access(RuntimeTests.runtime, X_OK) == 0 else { throw XCTSkip("no svm-runtime beside \(SVMProcess.binary)") }
        // Names of our own: other podman tests may run on this machine at the same time.
        let tag = "\(getpid())-\(Int(SVMProcess.now() * 1000) % 1_000_000)"
        let image = "localhost/svm-net-test-busybox:\(tag)"
        let name = "svm-net-test-\(tag)"
        let page = "served from an svm guest \(tag)"
        let root = "/run/svm-runtime-net-test"
        // podman passes --runtime-flag only on the command that has it: every call needs it.
        let podman = ["podman", "--runtime", RuntimeTests.runtime, "--runtime-flag", "root=\(root)"]

        var template = Array("/tmp/svm-net-rootfs.XXXXXX".utf8CString)
        let rootfs = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { _ = hostCommand(["rm", "-rf", rootfs, rootfs + ".tar"]) }
        mustRun(["sh", "-c", """
            set -e; mkdir -p \(rootfs)/bin \(rootfs)/etc \(rootfs)/tmp \(rootfs)/www; cp /bin/busybox \(rootfs)/bin/
            for a in $(/bin/busybox --list); do [ -e \(rootfs)/bin/$a ] || ln -s busybox \(rootfs)/bin/$a; done
            echo 'root:x:0:0:root:/root:/bin/sh' > \(rootfs)/etc/passwd; echo 'root:x:0:' > \(rootfs)/etc/group
            echo '\(page)' > \(rootfs)/www/index.html
            tar -C \(rootfs) -cf \(rootfs).tar . && podman import -q \(rootfs).tar \(image) >/dev/null
            """])
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
        XCTAssertEqual(hostCommand(["ip", "link", "show", "svmtap0"]).status == 0, false, "the TAP is not in the host's namespace")

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
        var left = "?"
        for _ in 0..<60 {
            left = hostCommand(["sh", "-c", "ls -A \(root) 2>/dev/null"]).output
            if left.isEmpty { break }
            usleep(500_000)
        }
        XCTAssertEqual(left, "", "no state directory left under --root")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "_vm \(id)"]).status, 0, "no VM process left")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "virtiofsd.*\(root)/\(id)"]).status, 0, "no virtiofsd left")
        XCTAssertNotEqual(access(netns, F_OK), 0, "podman removed the network namespace \(netns)")
    }
}
