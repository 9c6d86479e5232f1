import Glibc
import Host
import Memory
import XCTest
@testable import Virtio

/// virtio-net without offloads: plain frames behind zero headers, one chain per packet or
/// spread over mergeable buffers, the config space, the TAP backend's set-up.
final class VirtioNetTests: XCTestCase {
    let mac = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    let zeroHeader = [UInt8](repeating: 0, count: VirtioNetHeader.size)

    func frame(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &+ Int(seed)) } }

    func testTransmitSendsHeaderAndFrame() throws {
        let backend = FakeNetBackend()
        let d = try MMIODriver(device: VirtioNet(mac: mac, backend: backend))
        let tx = d.start()[1]
        let f1 = frame(60, seed: 1)
        let f2 = frame(1514, seed: 2)
        tx.postChain([tx.buffer(zeroHeader), tx.buffer(f1)])
        // Header and frame in one buffer, split at an odd place.
        let joined = zeroHeader + f2
        tx.postChain([tx.buffer(Array(joined[..<5])), tx.buffer(Array(joined[5...]))])
        // Too short to hold a header: dropped.
        tx.postChain([tx.buffer([1, 2, 3])])
        d.notify(1)
        XCTAssertEqual(backend.sentPackets, [zeroHeader + f1, zeroHeader + f2])
        XCTAssertEqual(tx.usedIndex, 3)
        XCTAssertEqual((d.transport.device as! VirtioNet).droppedFrames.transmit, 1)
    }

    func testReceivePrependsTheHeader() throws {
        let backend = FakeNetBackend()
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start()[0]
        let f = frame(98, seed: 7)
        backend.queue(f)
        net.processBackendInput()
        XCTAssertEqual(rx.usedIndex, 0, "no receive buffer yet: the frame waits")

        let buf = rx.writableBuffer(12 + 1518, fill: 0xaa)
        rx.postChain([buf])
        d.notify(0)
        XCTAssertEqual(rx.usedIndex, 1)
        XCTAssertEqual(rx.usedElement(0).length, UInt32(12 + f.count))
        XCTAssertEqual(rx.bytes(at: buf.address, count: 12), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
                       "zero header, num_buffers = 1")
        XCTAssertEqual(rx.bytes(at: buf.address + 12, count: f.count), f)
        XCTAssertGreaterThan(d.interrupts.value, 0)

        // Several frames, several buffers, header split from the data.
        let g = frame(200, seed: 9)
        let h = frame(60, seed: 11)
        backend.queue(g)
        backend.queue(h)
        let hdr1 = rx.writableBuffer(12), data1 = rx.writableBuffer(1518)
        let whole2 = rx.writableBuffer(1530)
        rx.postChain([hdr1, data1])
        rx.postChain([whole2])
        net.processBackendInput()
        XCTAssertEqual(rx.usedIndex, 3)
        XCTAssertEqual(rx.bytes(at: data1.address, count: g.count), g)
        XCTAssertEqual(rx.bytes(at: whole2.address + 12, count: h.count), h)
        XCTAssertEqual(backend.waiting, 0)
    }

    func testWithoutMergeableBuffersAFrameTooBigForTheBufferIsDropped() throws {
        let backend = FakeNetBackend()
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start(features: net.offeredFeatures & ~VirtioNetFeature.mergeableReceiveBuffers)[0]
        backend.queue(frame(1000, seed: 0))
        backend.queue(frame(50, seed: 3))
        rx.postChain([rx.writableBuffer(12 + 100)])
        rx.postChain([rx.writableBuffer(12 + 100)])
        net.processBackendInput()
        XCTAssertEqual(rx.usedElement(0).length, 0)
        XCTAssertEqual(rx.usedElement(1).length, 62)
        XCTAssertEqual(net.droppedFrames.receive, 1)
    }

    func testPacketsShorterThanAHeaderFromTheBackendAreDropped() throws {
        let backend = FakeNetBackend()
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start()[0]
        backend.queuePacket([1, 2, 3])
        backend.queuePacket(zeroHeader)
        backend.queue(frame(60, seed: 1))
        let buf = rx.writableBuffer(2048)
        rx.postChain([buf])
        net.processBackendInput()
        XCTAssertEqual(rx.usedIndex, 1)
        XCTAssertEqual(rx.usedElement(0).length, 72, "only the real frame arrived")
        XCTAssertEqual(net.droppedFrames.receive, 2)
    }

    func testConfigSpaceHasMACAndLinkUp() throws {
        let net = VirtioNet(mac: mac, backend: FakeNetBackend())
        let d = try MMIODriver(device: net)
        XCTAssertEqual(d.config(0, size: 4), 0x1200_5452)
        XCTAssertEqual(d.config(4, size: 2), 0x5634)
        XCTAssertEqual(d.config(6, size: 2), 1)
        XCTAssertNotEqual(net.offeredFeatures & VirtioNetFeature.mac, 0)
        XCTAssertNotEqual(net.offeredFeatures & VirtioNetFeature.status, 0)
        XCTAssertEqual(net.offeredFeatures & 0b11, 0, "no checksum offload without TAP support")
    }

    func testMACAddressParsing() {
        XCTAssertEqual(MACAddress("52:54:00:12:34:56"), mac)
        XCTAssertEqual(mac.description, "52:54:00:12:34:56")
        XCTAssertNil(MACAddress("52:54:00:12:34"))
        XCTAssertNil(MACAddress("52:54:00:12:34:5g"))
        let r = MACAddress.random()
        XCTAssertEqual(r.bytes[0] & 3, 2, "locally administered unicast")
    }

    func testTapRejectsBadNames() {
        XCTAssertThrowsError(try TapBackend(interfaceName: "")) { XCTAssertEqual($0 as? TapError, .invalidName("")) }
        XCTAssertThrowsError(try TapBackend(interfaceName: "a-name-that-is-too-long"))
        XCTAssertThrowsError(try TapBackend(interfaceName: "a/b"))
    }

    func testTapErrorsNameTheInterfaceAndTheFailedCall() {
        let denied = TapError.attachFailed(name: "tap0", HostError("TUNSETIFF", errno: EPERM))
        XCTAssertTrue("\(denied)".hasPrefix("cannot attach to TAP interface tap0: TUNSETIFF failed: \(String(cString: strerror(EPERM)))"), "\(denied)")
        XCTAssertTrue("\(denied)".contains("ip tuntap add tap0"), "\(denied)")
        let io = TapError.ioFailed(name: "tap0", HostError("write", errno: EIO))
        XCTAssertEqual("\(io)", "TAP interface tap0: write failed: \(String(cString: strerror(EIO))) (errno \(EIO))")
    }

    func testTapOpensWhenTheHostAllowsIt() throws {
        // Creates a transient, down interface (gone when the descriptor closes); no traffic.
        // Only the host's lack of TAP support is a reason to skip; a TapBackend that
        // throws where TAP interfaces can be made is a failure.
        try XCTSkipUnless(getuid() == 0, "needs root to create a TAP interface")
        try XCTSkipUnless(access("/dev/net/tun", F_OK) == 0, "needs /dev/net/tun")
        let tap: TapBackend
        do {
            tap = try TapBackend(interfaceName: "svmtest%d")
        } catch {
            XCTFail("TapBackend: \(error)")
            throw error
        }
        XCTAssertGreaterThanOrEqual(tap.fileDescriptor, 0)
        var buffer = [UInt8](repeating: 0, count: 2048)
        XCTAssertNil(try buffer.withUnsafeMutableBytes { try tap.receive(into: $0) }, "nothing waiting, non-blocking")
        // Every Linux since 2.6.27 takes all three; whatever the probe found can be set.
        XCTAssertEqual(tap.supportedOffloads, .all)
        XCTAssertNoThrow(try tap.setReceiveOffloads(tap.supportedOffloads))
        XCTAssertNoThrow(try tap.setReceiveOffloads([]))
    }
}
