import Foundation
import Glibc
import XCTest

/// Docker through svm-runtime: dockerd (20.10) with `--add-runtime svm=…` and its own
/// containerd, both started here as plain processes (systemd is not PID 1 on our machines)
/// on private sockets and directories, the busybox image loaded from a podman archive (no
/// registry), then one container (one boot): `docker run -d -p` with httpd, the page fetched
/// from the host, `docker logs`, `docker stop -t 5` (143), `docker rm`, nothing left.
///
/// dockerd gets a bridge of this test's own and `--iptables=false --ip-forward=false`: the
/// host's firewall (podman's netavark rules) and sysctls stay as they were, and `-p` goes
/// through docker-proxy (the userland proxy), which connects to the container's address
/// over that bridge. Docker's network path is the one under test all the same: a network
/// namespace without a path (the VM process makes it) and the `libnetwork-setkey` prestart
/// hook, which moves the veth into it. Needs root, /dev/kvm, podman, docker.io, containerd.
final class RuntimeDockerTests: XCTestCase {
    func testDockerRunsAContainerWithAPublishedPort() throws {
        try RuntimeTests.requirePodman()
        for tool in ["dockerd", "docker", "docker-proxy", "containerd", "containerd-shim-runc-v2", "curl", "ip"] {
            guard hostCommand(["sh", "-c", "command -v \(tool)"]).status == 0 else { throw XCTSkip("needs \(tool) (docker.io, containerd)") }
        }
        // Names unique to this run: another developer's tests may run beside it.
        let tag = String(getpid())
        let bridge = "svmdk\(tag)".prefix(15)
        let subnet = "10.251.\(getpid() % 250 + 1)"
        let port = 20000 + Int(getpid() % 20000)
        let name = "svm-docker-test-\(tag)"
        let image = "localhost/svm-test-busybox-docker:\(tag)"

        var template = Array("/tmp/svm-dk.XXXXXX".utf8CString)
        let dir = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { removeTree(dir) }
        try RuntimeTests.importBusybox(as: image)
        defer { _ = hostCommand(["podman", "rmi", "-f", image]) }
        mustRun(["podman", "save", "-q", "--format", "docker-archive", "-o", dir + "/image.tar", image])

        XCTAssertEqual(hostCommand(["ip", "-4", "route", "show", "\(subnet).0/24"]).output, "", "\(subnet).0/24 is free on this host")
        mustRun(["ip", "link", "add", String(bridge), "type", "bridge"])
        defer { _ = hostCommand(["ip", "link", "del", String(bridge)]) }
        mustRun(["ip", "addr", "add", "\(subnet).1/24", "dev", String(bridge)])
        mustRun(["ip", "link", "set", String(bridge), "up"])

        // dockerd makes /run/docker/plugins whatever its exec root; remove it if it is ours.
        let pluginsWereThere = access("/run/docker", F_OK) == 0
        defer { if !pluginsWereThere { rmdir("/run/docker/plugins"); rmdir("/run/docker") } }
        let containerdSocket = dir + "/containerd.sock"
        guard let containerd = spawnDaemon(["containerd", "--address", containerdSocket, "--root", dir + "/containerd",
                                            "--state", dir + "/containerd-state"], log: dir + "/containerd.log") else {
            return XCTFail("containerd did not start: \(String(cString: strerror(errno)))")
        }
        defer { endAndCheck(containerd, "containerd") }
        let dockerSocket = dir + "/docker.sock"
        guard let dockerd = spawnDaemon(["dockerd", "-H", "unix://" + dockerSocket, "--containerd", containerdSocket,
                                         "--data-root", dir + "/docker", "--exec-root", dir + "/exec", "--pidfile", dir + "/dockerd.pid",
                                         "--add-runtime", "svm=" + RuntimeTests.runtime,
                                         "--default-ulimit", "nofile=20000:20000",
                                         "--bridge", String(bridge), "--iptables=false", "--ip6tables=false",
                                         "--ip-forward=false", "--ip-masq=false"], log: dir + "/dockerd.log") else {
            return XCTFail("dockerd did not start: \(String(cString: strerror(errno)))")
        }
        // dockerd first (it stops its containers' tasks), then its containerd.
        defer { endAndCheck(dockerd, "dockerd") }
        let docker = ["docker", "-H", "unix://" + dockerSocket]
        var up = false
        for _ in 0..<150 where !up {
            up = hostCommand(docker + ["version"]).status == 0
            if !up { usleep(200_000) }
        }
        guard up else {
            return XCTFail("dockerd answers on \(dockerSocket): \((try? String(contentsOfFile: dir + "/dockerd.log", encoding: .utf8))?.suffix(800) ?? "")")
        }
        mustRun(docker + ["load", "-q", "-i", dir + "/image.tar"])

        let run = hostCommand(docker + ["run", "-d", "--runtime", "svm", "-p", "127.0.0.1:\(port):80", "--name", name, image,
                                        "sh", "-c", "echo svm-docker-started; exec httpd -f -p 80 -h /www"], timeout: 120)
        // If anything below fails, the container goes before its daemons do.
        defer { _ = hostCommand(docker + ["rm", "-f", name], timeout: 60) }
        XCTAssertEqual(run.status, 0, "docker run -d: \(run.output)")
        let id = run.output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(id.count, 64, "docker run -d prints the container's id: \(run.output)")
        guard run.status == 0, id.count == 64 else { return }
        // The shim's --root is dockerd's exec root; the container's state is there while it lives.
        let state = dir + "/exec/runtime-runc/moby/" + id
        XCTAssertEqual(access(state, F_OK), 0, "svm-runtime's state for the container in \(state)")
        XCTAssertEqual(hostCommand(["pgrep", "-f", "svm-runtime.*_vm \(id)"]).status, 0, "the container's VM process runs")

        // The VM boots in about a minute here: poll the published port.
        var page = ""
        let deadline = Date().addingTimeInterval(240)
        while Date() < deadline, !page.contains("svm test page") {
            page = hostCommand(["curl", "-s", "-m", "3", "http://127.0.0.1:\(port)/"], timeout: 10).output
            if !page.contains("svm test page") { sleep(2) }
        }
        XCTAssertTrue(page.contains("svm test page"),
                      "the page through -p 127.0.0.1:\(port):80 (docker-proxy → the guest's httpd): \(page); console: \(consoleTail(state))")
        let logs = hostCommand(docker + ["logs", name])
        XCTAssertEqual(logs.status, 0, logs.output)
        XCTAssertTrue(logs.output.contains("svm-docker-started"), "docker logs has the container's output: \(logs.output)")

        // SIGTERM reaches httpd in the guest; it ends before the 5 s after which docker would SIGKILL (137).
        let stop = hostCommand(docker + ["stop", "-t", "5", name], timeout: 60)
        XCTAssertEqual(stop.status, 0, stop.output)
        let exit = hostCommand(docker + ["inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", name])
        XCTAssertEqual(exit.output.trimmingCharacters(in: .whitespacesAndNewlines), "143 exited", "status of a SIGTERM'd httpd")
        let rm = hostCommand(docker + ["rm", name], timeout: 60)
        XCTAssertEqual(rm.status, 0, rm.output)

        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*_vm \(id)"]).status, 0, "no VM process left")
        XCTAssertNotEqual(access(state, F_OK), 0, "svm-runtime's state for the container is gone")
        XCTAssertNotEqual(hostCommand([RuntimeTests.runtime, "--root", dir + "/exec/runtime-runc/moby", "state", id]).status, 0,
                          "svm-runtime state knows the container no more")
        XCTAssertNotEqual(hostCommand(["curl", "-s", "-m", "3", "http://127.0.0.1:\(port)/"], timeout: 10).status, 0,
                       "the published port is closed")
    }

    /// Ends a daemon by its pid and checks it is gone (reaped by endDaemon).
    private func endAndCheck(_ pid: pid_t, _ what: String) {
        endDaemon(pid)
        XCTAssertEqual(kill(pid, 0), -1, "\(what) (pid \(pid)) ended and reaped")
    }

    private func consoleTail(_ state: String) -> String {
        String(((try? String(contentsOfFile: state + "/console.log", encoding: .utf8)) ?? "").suffix(600))
    }

    /// The test's directory, after lazily unmounting whatever dockerd left mounted there
    /// (its netns files and overlay layers, had it been killed).
    private func removeTree(_ dir: String) {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        let points = mounts.split(separator: "\n").compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) }
        for point in points.reversed() where point.hasPrefix(dir + "/") { _ = hostCommand(["umount", "-l", point]) }
        _ = hostCommand(["rm", "-rf", dir])
    }
}
