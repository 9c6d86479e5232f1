import XCTest
@testable import Sandbox

/// The `N` frame: its bytes, and the host-test init taking it before `G` (it prints what
/// it would put on eth0, since the host's interfaces are not the test's to change) or
/// failing on a malformed one.
extension GuestInitHostTests {
    var sample: GuestNetwork { GuestNetwork(mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], address: [10, 88, 0, 5], prefixLength: 16,
                              gateway: [10, 88, 0, 1], mtu: 1500) }

    func testNetworkFramePayloadLayout() {
        let bytes = HostFrame.network(sample).encoded()
        XCTAssertEqual(bytes, [UInt8(ascii: "N"), 19, 0, 0, 0, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 88, 0, 5, 16,
                               10, 88, 0, 1, 0xdc, 0x05, 0, 0])
        var noGateway = sample
        noGateway.gateway = nil
        XCTAssertEqual(Array(HostFrame.network(noGateway).encoded()[16..<20]), [0, 0, 0, 0], "no gateway is 0.0.0.0")
        XCTAssertTrue(sample.isValid)
        XCTAssertFalse(GuestNetwork(mac: [1, 2, 3], address: [10, 0, 0, 1], prefixLength: 8, gateway: nil, mtu: 0).isValid)
        XCTAssertFalse(GuestNetwork(mac: sample.mac, address: [10, 0, 0, 1], prefixLength: 33, gateway: nil, mtu: 0).isValid)
    }

    func containerJob(_ script: String) -> SandboxJob {
        var job = SandboxJob(argv: ["/bin/sh", "-c", script])
        job.container = ContainerJob()
        return job
    }

    func testInitConfiguresTheNetworkBeforeStarting() throws {
        let r = try run(containerJob("echo ran"), control: [.network(sample), .start])
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "ran\n")
        let err = String(decoding: r.stderr, as: UTF8.self)
        XCTAssertTrue(err.contains("svm-init: network 52:54:00:12:34:56 10.88.0.5/16 gw 10.88.0.1 mtu 1500"), err)
        XCTAssertEqual(r.frames.last, GuestFrame.exit(.exited(0)))
    }

    func testMalformedNetworkFrameFailsTheInit() throws {
        let bytes = ControlFrame.encode(type: ControlFrame.network, payload: [1, 2, 3]) + HostFrame.start.encoded()
        var job = containerJob("echo ran")
        job.container = ContainerJob()
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try writeBytes(dir + "/job", try JobWriter.encode(job))
        let r = try spawn([dir + "/job"], control: bytes)
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "", "the process never ran")
        XCTAssertTrue(r.frames.contains(GuestFrame.failure("network frame of 3 bytes (expected 19)")), "\(r.frames)")
    }
}
