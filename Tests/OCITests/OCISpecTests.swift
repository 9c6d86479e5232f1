import Control
@testable import OCI
import Sandbox
import XCTest

/// config.json decoding and the plan made from it: good bundles, a minimal one, and each
/// field that is refused, with the line that says why.
final class OCISpecTests: XCTestCase {
    /// What podman 4.3 writes for `podman run IMAGE sh -c ...`, trimmed to the fields svm reads.
    static let podmanLike = """
        {"ociVersion":"1.0.2-dev","process":{"user":{"uid":0,"gid":0,"additionalGids":[10]},
        "args":["sh","-c","echo hi"],"env":["PATH=/usr/bin:/bin","TERM=xterm"],"cwd":"/",
        "capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"]},
        "rlimits":[{"type":"RLIMIT_NOFILE","hard":1048576,"soft":1048576},{"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":0}],
        "noNewPrivileges":true,"umask":18},
        "root":{"path":"/var/lib/containers/x/merged"},"hostname":"abc",
        "mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]},
        {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
        {"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["rprivate","nosuid","noexec","nodev","relatime","ro"]},
        {"destination":"/etc/hosts","type":"bind","source":"/userdata/hosts","options":["bind","rprivate"]},
        {"destination":"/data","type":"bind","source":"/srv/data","options":["rbind","ro"]},
        {"destination":"/dev/shm","type":"bind","source":"/userdata/shm","options":["bind","rprivate","nosuid","noexec","nodev"]}],
        "annotations":{"io.svm.mem":"512M"},
        "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/n1"}],
        "resources":{"cpu":{"quota":150000,"period":100000}}}}
        """

    static func kind(_ path: String) -> ContainerPlan.PathKind {
        switch path {
        case "/var/lib/containers/x/merged", "/srv/data", "/bundle/rootfs": .directory
        case "/userdata/hosts": .file
        case "/dev/null": .other
        default: .missing
        }
    }

    func plan(_ json: String, cpus: Int = 2) throws -> ContainerPlan {
        try ContainerPlan.make(spec: try OCISpec.decode(Array(json.utf8)), bundle: "/bundle", hostCPUs: cpus, kind: Self.kind)
    }

    func refusal(_ json: String) -> String {
        do {
            _ = try plan(json)
            return "accepted"
        } catch { return "\(error)" }
    }

    func testPodmanBundleBecomesAGuestJob() throws {
        let p = try plan(Self.podmanLike)
        XCTAssertEqual(p.job.argv, ["sh", "-c", "echo hi"])
        XCTAssertEqual(p.job.env, ["PATH=/usr/bin:/bin", "TERM=xterm"])
        XCTAssertEqual(p.memory, 512 << 20, "the annotation sizes the VM")
        XCTAssertEqual(p.cpus, 2, "quota/period 1.5 rounds up, within the host's 2")
        XCTAssertEqual(p.shares.map(\.tag), ["svm-root", "svm-mnt-4"])
        XCTAssertEqual(p.shares[1], .init(tag: "svm-mnt-4", hostPath: "/srv/data", readOnly: true))
        XCTAssertEqual(p.files, [.init(initramfsPath: "svm/files/3", hostPath: "/userdata/hosts")])
        let c = try XCTUnwrap(p.job.container)
        XCTAssertEqual(c.hostname, "abc")
        XCTAssertEqual(c.additionalGroups, [10])
        XCTAssertTrue(c.noNewPrivileges)
        XCTAssertEqual(c.rlimits, [.init(resource: 7, soft: 1_048_576, hard: 1_048_576), .init(resource: 4, soft: 0, hard: .max)])
        XCTAssertEqual(c.capabilities?.bounding, 1 << 0 | 1 << 5)
        XCTAssertEqual(c.capabilities?.effective, 1)
        XCTAssertEqual(c.mounts.map(\.destination), ["/proc", "/dev", "/sys/fs/cgroup", "/etc/hosts", "/data", "/dev/shm"])
        XCTAssertEqual(c.mounts[0], .init(source: .fileSystem("proc"), destination: "/proc", flags: 2 | 4 | 8))
        XCTAssertEqual(c.mounts[1].data, "mode=755,size=65536k")
        XCTAssertEqual(c.mounts[2].source, .fileSystem("cgroup2"), "a VM's kernel mounts the unified hierarchy")
        XCTAssertEqual(c.mounts[5].source, .fileSystem("tmpfs"), "shared memory stays in the guest")
        XCTAssertEqual(p.networkNamespace, "/run/netns/n1", "the VM process joins the engine's network namespace")
        XCTAssertFalse(p.notes.contains { $0.contains("network") }, "the network is done, not a note: \(p.notes)")
        // And the job encodes (the guest init's format).
        XCTAssertNoThrow(try JobWriter.encode(p.job))
    }

    func testMinimalBundleGetsDefaults() throws {
        let p = try plan(#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"args":["/bin/true"],"cwd":"/"}}"#)
        XCTAssertEqual(p.shares, [.init(tag: "svm-root", hostPath: "/bundle/rootfs", readOnly: false)])
        XCTAssertEqual(p.memory, ContainerPlan.defaultMemory)
        XCTAssertEqual(p.cpus, 1)
        XCTAssertEqual(p.job.uid, 0)
        XCTAssertEqual(p.notes.count, 1, "\(p.notes)")
        XCTAssertTrue(p.notes[0].contains("host's network"), "no network namespace is the host's network: \(p.notes)")
        XCTAssertNil(p.networkNamespace, "no network namespace: loopback only")
        XCTAssertFalse(p.newNetworkNamespace)
    }

    /// A network namespace without a path is a new one, made by the VM process (buildah
    /// and Docker connect it after create).
    func testNetworkNamespaceWithoutAPathIsANewOne() throws {
        let p = try plan(#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"network"},{"type":"mount"}]}}"#)
        XCTAssertNil(p.networkNamespace)
        XCTAssertTrue(p.newNetworkNamespace)
        XCTAssertTrue(p.notes.isEmpty, "\(p.notes)")
    }

    func testRefusedBundlesSayWhy() {
        let base = #""root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}"#
        let cases: [(String, String)] = [
            ("[1]", "not a JSON object"),
            ("{\"ociVersion\":\"2.0.0\",\(base)}", "ociVersion \"2.0.0\" is not supported"),
            ("{\(base)}", "ociVersion missing"),
            (#"{"ociVersion":"1.0.2","process":{"args":["sh"]}}"#, "root.path is missing"),
            (#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#, "process is missing"),
            (#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":[],"cwd":"/"}}"#, "process.args is empty"),
            (#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"tmp"}}"#, "not absolute"),
            (#"{"ociVersion":"1.0.2","root":{"path":"missing"},"process":{"args":["sh"]}}"#, "not a directory"),
            (#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"user":{"uid":-1}}}"#, "process.user.uid must be"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}]}}", "user namespaces"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"hooks\":{\"createContainer\":[{\"path\":\"/bin/true\"}]}}", "hooks.createContainer is not supported"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"hooks\":{\"startContainer\":[{\"path\":\"/bin/true\"}]}}", "hooks.startContainer is not supported"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"hooks\":{\"prestart\":[{\"path\":\"true\"}]}}", "hooks.prestart[0].path true is not absolute"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"hooks\":{\"poststop\":[{\"path\":\"/bin/true\",\"timeout\":0}]}}", "timeout 0 is not positive"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"mounts\":[{\"destination\":\"/x\",\"type\":\"nfs\",\"source\":\"h:/e\"}]}", "mount type nfs is not supported"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"mounts\":[{\"destination\":\"/x\",\"type\":\"bind\",\"source\":\"/dev/null\"}]}", "only directories and regular files"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"mounts\":[{\"destination\":\"/x\",\"type\":\"bind\",\"source\":\"/nope\"}]}", "no such file"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"mounts\":[{\"destination\":\"/a/../../x\",\"type\":\"tmpfs\"}]}", "\"..\""),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"annotations\":{\"io.svm.mem\":\"1M\"}}", "io.svm.mem=1M"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"annotations\":{\"io.svm.cpus\":\"0\"}}", "io.svm.cpus=0"),
            (#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"capabilities":{"bounding":["CAP_FLY"]}}}"#, "unknown capability CAP_FLY"),
            (#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"rlimits":[{"type":"RLIMIT_X","soft":1,"hard":1}]}}"#, "unknown type RLIMIT_X"),
            (#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"env":["NOEQUALS"]}}"#, "not KEY=VALUE"),
            ("{\"ociVersion\":\"1.0.2\",\(base),\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":\"run/netns/x\"}]}}", "network path \"run/netns/x\" is not an absolute path"),
        ]
        for (json, expected) in cases {
            let message = refusal(json)
            XCTAssertTrue(message.contains(expected), "\(json): got \(message), expected …\(expected)…")
        }
    }

    func testMemoryLimitIsRaisedToWhatAKernelNeeds() throws {
        let p = try plan(#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"]},"linux":{"resources":{"memory":{"limit":6291456}}}}"#)
        XCTAssertEqual(p.memory, ContainerPlan.minimumMemory)
        XCTAssertEqual(p.notes.filter { $0.contains("memory limit") }.count, 1, "\(p.notes)")
    }

    func testDecodingNeverCrashesOnMutatedInput() {
        // Every single-byte mutation of a real bundle either decodes or is refused.
        let bytes = Array(Self.podmanLike.utf8)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var b = bytes
            b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            if let spec = try? OCISpec.decode(b) {
                _ = try? ContainerPlan.make(spec: spec, bundle: "/bundle", hostCPUs: 2, kind: Self.kind)
            }
        }
    }
}

final class RuntimeNamesTests: XCTestCase {
    func testSignalNames() {
        XCTAssertEqual(SignalNames.parse("TERM"), 15)
        XCTAssertEqual(SignalNames.parse("SIGKILL"), 9)
        XCTAssertEqual(SignalNames.parse("sigusr1"), 10)
        XCTAssertEqual(SignalNames.parse("9"), 9)
        XCTAssertEqual(SignalNames.parse("RTMIN+2"), 36)
        XCTAssertEqual(SignalNames.parse("SIGRTMAX"), 64)
        XCTAssertNil(SignalNames.parse("0"))
        XCTAssertNil(SignalNames.parse("65"))
        XCTAssertNil(SignalNames.parse("BOGUS"))
        XCTAssertNil(SignalNames.parse("RTMAX+1"))
    }

    func testMountOptions() {
        let p = MountOptions.parse(["rbind", "ro", "nosuid", "rprivate", "mode=755", "exec", "noexec", "tmpcopyup"])
        XCTAssertTrue(p.isBind)
        XCTAssertEqual(p.flags, MountOptions.readOnly | MountOptions.noSUID | MountOptions.noExec)
        XCTAssertEqual(p.dataString, "mode=755")
        XCTAssertEqual(MountOptions.parse(["ro", "rw"]).flags, 0, "a later word wins")
    }

    func testFramesForContainers() {
        XCTAssertEqual(HostFrame.start.encoded(), [UInt8(ascii: "G"), 0, 0, 0, 0])
        XCTAssertEqual(HostFrame.signal(15, all: true).encoded(), [UInt8(ascii: "K"), 8, 0, 0, 0, 15, 0, 0, 0, 1, 0, 0, 0])
    }

    func testControlRequestsForContainers() throws {
        XCTAssertEqual(try ControlRequest.parse(Array(#"{"request":"start"}"#.utf8)), .start)
        XCTAssertEqual(try ControlRequest.parse(Array(#"{"request":"signal","signal":9,"all":true}"#.utf8)), .signal(9, all: true))
        XCTAssertThrowsError(try ControlRequest.parse(Array(#"{"request":"signal","signal":0}"#.utf8)))
        let line = ControlRequest.signal(2, all: false).encoded()
        XCTAssertEqual(try ControlRequest.parse(Array(line.dropLast())), .signal(2, all: false))
    }
}
