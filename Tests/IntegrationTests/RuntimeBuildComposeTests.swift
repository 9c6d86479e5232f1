import Foundation
import Glibc
import XCTest

/// The seed's Docker workflow with svm-runtime as podman's runtime (set in a
/// containers.conf, as a user would): `podman-compose up -d` of a compose file with
/// `build: .` and `ports:` builds the Dockerfile (FROM a local image, ENV, WORKDIR, COPY,
/// a RUN step that runs in an svm VM, EXPOSE, CMD: the web server's page replaced), runs
/// it with the port published, then `logs`, `stop`, `restart`, `down`. Three boots (the
/// RUN step, up, restart). Needs root, /dev/kvm, podman and podman-compose.
final class RuntimeBuildComposeTests: XCTestCase {
    func testComposeBuildsWithARunStepAndPublishesThePage() throws {
        try RuntimeTests.requirePodman()
        guard hostCommand(["sh", "-c", "command -v podman-compose"]).status == 0 else { throw XCTSkip("needs podman-compose") }
        var template = Array("/tmp/svm-compose.XXXXXX".utf8CString)
        let dir = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { _ = hostCommand(["rm", "-rf", dir]) }
        let base = "localhost/svm-test-compose-base:1"
        try RuntimeTests.importBusybox(as: base)
        let project = "svmcompose\(getpid())"
        // Every podman call knows the runtime "svm" from this containers.conf, as the
        // user's podman would from theirs.
        func podman(_ args: [String]) -> (status: Int32, output: String) {
            hostCommand(["env", "CONTAINERS_CONF=\(dir)/containers.conf", "podman"] + args)
        }
        defer {
            _ = podman(["rm", "-f", "\(project)_web_1"])
            _ = podman(["rmi", "-f", "\(project)_web", base])
        }
        // A page of this run's own, so no earlier build's layers stand in for the RUN step.
        let page = "compose page \(getpid()) \(time(nil))"
        let port = 18082
        let files = [
            "Dockerfile": """
                FROM \(base)
                ENV GREETING=hello
                WORKDIR /www
                COPY index.html /www/index.html
                RUN echo "$GREETING from $(uname -r) in $(pwd)" > /www/run.txt
                EXPOSE 80
                CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
                """,
            "index.html": page,
            "docker-compose.yml": """
                version: "3"
                services:
                  web:
                    build: .
                    ports:
                      - "127.0.0.1:\(port):80"
                """,
            "containers.conf": """
                [containers]
                default_ulimits = []

                [engine]
                runtime = "svm"

                [engine.runtimes]
                svm = ["\(RuntimeTests.runtime)"]
                """,
        ]
        for (name, text) in files {
            try (text + "\n").write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        func compose(_ args: [String]) -> (status: Int32, output: String) {
            hostCommand(["sh", "-c", "cd \(dir) && CONTAINERS_CONF=\(dir)/containers.conf podman-compose -p \(project) "
                         + args.joined(separator: " ") + " 2>&1"], timeout: 900)
        }
        func fetch(_ path: String, expecting text: String) -> String {
            var got = ""
            for _ in 0..<150 {
                got = hostCommand(["curl", "-sS", "-m", "3", "http://127.0.0.1:\(port)\(path)"], timeout: 30).output
                if got.contains(text) { break }
                sleep(2)
            }
            return got
        }
        func status() -> String {
            podman(["ps", "-a", "--filter", "name=^\(project)_web_1$", "--format", "{{.Status}}"]).output
        }

        let up = compose(["up", "-d"])
        XCTAssertEqual(up.status, 0, up.output)
        XCTAssertTrue(up.output.contains("RUN echo"), "the RUN step was built here, not taken from a cache: \(up.output)")
        XCTAssertEqual(fetch("/", expecting: page), page + "\n", "COPY replaced the page; -p reaches the VM")
        let hostKernel = hostCommand(["uname", "-r"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let run = fetch("/run.txt", expecting: "hello from")
        XCTAssertTrue(run.hasPrefix("hello from ") && run.hasSuffix(" in /www\n"), "ENV and WORKDIR reached the RUN step: \(run)")
        XCTAssertFalse(run.contains(hostKernel), "the RUN step ran in a VM (the guest's kernel, not \(hostKernel)): \(run)")
        let id = podman(["inspect", "-f", "{{.Id}}", "\(project)_web_1"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(access(ContainerRoot.path + "/" + id, F_OK) == 0, "svm-runtime runs the container \(id)")

        XCTAssertEqual(compose(["logs"]).status, 0)
        let stop = compose(["stop"])
        XCTAssertEqual(stop.status, 0, stop.output)
        XCTAssertTrue(status().contains("Exited (143)"), "httpd ended by SIGTERM: \(status())")
        XCTAssertNotEqual(hostCommand(["pgrep", "-f", "svm-runtime.*_vm \(id)"]).status, 0, "its VM ended")

        let restart = compose(["restart"])
        XCTAssertEqual(restart.status, 0, restart.output)
        XCTAssertEqual(fetch("/", expecting: page), page + "\n", "served again after restart")

        let down = compose(["down"])
        XCTAssertEqual(down.status, 0, down.output)
        XCTAssertEqual(status(), "", "the container is gone")
        var left = true
        for _ in 0..<60 where left {
            left = access(ContainerRoot.path + "/" + id, F_OK) == 0 || hostCommand(["pgrep", "-f", "svm-runtime.*_vm \(id)"]).status == 0
            if left { usleep(500_000) }
        }
        XCTAssertFalse(left, "no state and no VM process of \(id) left")
    }
}
