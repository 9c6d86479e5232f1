import Memory
import XCTest
@testable import Virtio

/// virtio-net offloads: which features are offered for which TAP, which TAP offloads a
/// driver's features turn on, headers passed through both ways, big packets spread over
/// mergeable buffers.
final class VirtioNetOffloadTests: XCTestCase {
    let mac = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    let offloadBits = VirtioNetFeature.checksum | VirtioNetFeature.guestChecksum | VirtioNetFeature.guestTSO4
        | VirtioNetFeature.guestTSO6 | VirtioNetFeature.hostTSO4 | VirtioNetFeature.hostTSO6

    func frame(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &+ Int(seed)) } }

    /// What Linux puts in front of a TSO frame of IPv4/TCP headers (14 + 20 + 20 bytes).
    let tsoHeader = VirtioNetHeader(flags: VirtioNetHeader.Flag.needsChecksum, gsoType: VirtioNetHeader.GSOType.tcp4,
                                    headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16)

    // MARK: Offered features

    func testOfferedFeaturesFollowWhatTheTapSupports() {
        func offered(_ offloads: NetOffloads) -> UInt64 {
            VirtioNet(mac: mac, backend: FakeNetBackend(supportedOffloads: offloads)).offeredFeatures & offloadBits
        }
        XCTAssertEqual(offered([]), 0)
        XCTAssertEqual(offered([.checksum]), VirtioNetFeature.checksum | VirtioNetFeature.guestChecksum)
        XCTAssertEqual(offered([.checksum, .tcp4Segmentation]),
                       VirtioNetFeature.checksum | VirtioNetFeature.guestChecksum
                           | VirtioNetFeature.guestTSO4 | VirtioNetFeature.hostTSO4)
        XCTAssertEqual(offered(.all), offloadBits)
        // TSO without the checksum offload it depends on is not offered (the kernel refuses it).
        XCTAssertEqual(offered([.tcp4Segmentation]), 0)
        // Mergeable buffers do not depend on the TAP; UFO and ECN are never offered.
        let all = VirtioNet(mac: mac, backend: FakeNetBackend(supportedOffloads: .all)).offeredFeatures
        XCTAssertNotEqual(all & VirtioNetFeature.mergeableReceiveBuffers, 0)
        XCTAssertEqual(all & (1 << 9 | 1 << 10 | 1 << 13 | 1 << 14), 0)
        XCTAssertNotEqual(VirtioNet(mac: mac, backend: FakeNetBackend()).offeredFeatures
                              & VirtioNetFeature.mergeableReceiveBuffers, 0)
    }

    func testProbeAsksForEachOffloadOnTopOfTheChecksum() {
        var asked: [NetOffloads] = []
        let onlyTSO4 = NetOffloads.probe { asked.append($0); return !$0.contains(.tcp6Segmentation) }
        XCTAssertEqual(onlyTSO4, [.checksum, .tcp4Segmentation])
        XCTAssertEqual(asked, [.checksum, [.checksum, .tcp4Segmentation], [.checksum, .tcp6Segmentation]])
        XCTAssertEqual(NetOffloads.probe { _ in false }, [])
    }

    // MARK: TUNSETOFFLOAD from the negotiated features

    func testReceiveOffloadsFollowTheNegotiatedGuestFeatures() throws {
        let g = VirtioNetFeature.self
        let cases: [(UInt64, NetOffloads)] = [
            (0, []),
            (g.checksum | g.hostTSO4 | g.hostTSO6, []), // host-side features change nothing on receive
            (g.guestChecksum, [.checksum]),
            (g.guestChecksum | g.guestTSO4, [.checksum, .tcp4Segmentation]),
            (g.guestChecksum | g.guestTSO6, [.checksum, .tcp6Segmentation]),
            (g.guestChecksum | g.guestTSO4 | g.guestTSO6, .all),
            (g.guestTSO4 | g.guestTSO6, []), // TSO without GUEST_CSUM breaks the spec: nothing
        ]
        for (guestFeatures, expected) in cases {
            XCTAssertEqual(NetOffloads.forReceive(negotiated: guestFeatures), expected, "features 0x\(String(guestFeatures, radix: 16))")
            // And the device asks the backend for exactly that when the driver activates it.
            let backend = FakeNetBackend(supportedOffloads: .all)
            let net = VirtioNet(mac: mac, backend: backend)
            let d = try MMIODriver(device: net)
            XCTAssertEqual(d.start(features: VirtioFeature.version1 | guestFeatures).count, 2)
            XCTAssertEqual(backend.offloadRequests.last, expected)
            XCTAssertNil(net.offloadFailure)
            d.write(MMIODriver.Reg.status, 0)
            XCTAssertEqual(backend.offloadRequests.last, [], "a reset turns the offloads off again")
        }
    }

    func testRefusedOffloadIsReportedAndStaleOffloadedFramesAreDropped() throws {
        let backend = FakeNetBackend(supportedOffloads: .all, refusesOffloads: true)
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        // The driver takes no receive offloads, but the TAP still has a previous driver's TSO.
        let rx = d.start(features: VirtioFeature.version1 | VirtioNetFeature.mergeableReceiveBuffers)[0]
        XCTAssertNotNil(net.offloadFailure)
        let big = frame(3000, seed: 1)
        backend.queue(big, header: tsoHeader)
        let plain = frame(60, seed: 2)
        backend.queue(plain)
        let buf = rx.writableBuffer(4096)
        rx.postChain([buf])
        net.processBackendInput()
        XCTAssertEqual(rx.usedIndex, 1)
        XCTAssertEqual(rx.bytes(at: buf.address + 12, count: plain.count), plain)
        XCTAssertEqual(net.droppedFrames.receive, 1)
    }

    // MARK: Headers passed through

    func testTransmitHandsTheGuestHeaderToTheTapUnchanged() throws {
        let backend = FakeNetBackend(supportedOffloads: .all)
        let d = try MMIODriver(device: VirtioNet(mac: mac, backend: backend))
        let tx = d.start()[1]
        XCTAssertEqual(d.features & offloadBits, offloadBits)
        let tso = frame(60 * 1024, seed: 3)
        tx.postChain([tx.buffer(tsoHeader.bytes), tx.buffer(Array(tso[..<100])), tx.buffer(Array(tso[100...]))])
        let checksumOnly = VirtioNetHeader(flags: VirtioNetHeader.Flag.needsChecksum, checksumStart: 34, checksumOffset: 6)
        let udp = frame(300, seed: 4)
        tx.postChain([tx.buffer(checksumOnly.bytes + udp)])
        d.notify(1)
        XCTAssertEqual(backend.sentPackets, [tsoHeader.bytes + tso, checksumOnly.bytes + udp])
        XCTAssertEqual(backend.sentHeaders.first??.gsoSize, 1448)
    }

    func testReceiveHandsTheTapHeaderToTheGuest() throws {
        let backend = FakeNetBackend(supportedOffloads: .all)
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        // Big buffers (no MRG_RXBUF), as Linux posts them when it has GUEST_TSO alone.
        let rx = d.start(features: net.offeredFeatures & ~VirtioNetFeature.mergeableReceiveBuffers)[0]
        let tso = frame(60 * 1024, seed: 5)
        backend.queue(tso, header: tsoHeader)
        let valid = VirtioNetHeader(flags: VirtioNetHeader.Flag.dataValid)
        let small = frame(100, seed: 6)
        backend.queue(small, header: valid)
        let big = rx.writableBuffer(12 + 65536, fill: 0xaa)
        let next = rx.writableBuffer(1530)
        rx.postChain([big])
        rx.postChain([next])
        net.processBackendInput()
        XCTAssertEqual(rx.usedIndex, 2)
        var expected = tsoHeader
        expected.bufferCount = 1
        XCTAssertEqual(VirtioNetHeader(rx.bytes(at: big.address, count: 12)), expected)
        XCTAssertEqual(rx.usedElement(0).length, UInt32(12 + tso.count))
        XCTAssertEqual(rx.bytes(at: big.address + 12, count: tso.count), tso)
        XCTAssertEqual(VirtioNetHeader(rx.bytes(at: next.address, count: 12)),
                       VirtioNetHeader(flags: VirtioNetHeader.Flag.dataValid, bufferCount: 1))
        XCTAssertEqual(net.droppedFrames.receive, 0)
    }

    func testDataValidIsClearedForADriverWithoutGuestChecksum() throws {
        let backend = FakeNetBackend(supportedOffloads: .all)
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start(features: VirtioFeature.version1)[0]
        backend.queue(frame(64, seed: 0), header: VirtioNetHeader(flags: VirtioNetHeader.Flag.dataValid))
        let buf = rx.writableBuffer(1530)
        rx.postChain([buf])
        net.processBackendInput()
        XCTAssertEqual(rx.bytes(at: buf.address, count: 12), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    }

    // MARK: Mergeable receive buffers

    /// Posts `count` chains of `size` bytes, every other one split in two descriptors.
    func postReceiveBuffers(_ rx: TestDriver, count: Int, size: Int) -> [TestDriver.Buffer] {
        var all: [TestDriver.Buffer] = []
        for i in 0..<count {
            if i % 2 == 0 {
                let b = rx.writableBuffer(size, fill: 0xaa)
                rx.postChain([b])
                all.append(b)
            } else {
                let a = rx.writableBuffer(100, fill: 0xaa), b = rx.writableBuffer(size - 100, fill: 0xaa)
                rx.postChain([a, b])
                all += [a, b]
            }
        }
        return all
    }

    func testA60KiBPacketIsSpreadOverMergeableBuffers() throws {
        let backend = FakeNetBackend(supportedOffloads: .all)
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start(queueSize: 64)[0]
        XCTAssertNotEqual(d.features & VirtioNetFeature.mergeableReceiveBuffers, 0)
        let tso = frame(60 * 1024, seed: 7)
        backend.queue(tso, header: tsoHeader)
        let small = frame(66, seed: 8)
        backend.queue(small)
        let buffers = postReceiveBuffers(rx, count: 20, size: 4096)
        net.processBackendInput()

        // 12 + 61440 bytes: 15 full chains of 4096 and 12 bytes in a 16th; then the small one.
        XCTAssertEqual(rx.usedIndex, 17)
        for i in 0..<15 { XCTAssertEqual(rx.usedElement(UInt16(i)).length, 4096, "chain \(i)") }
        XCTAssertEqual(rx.usedElement(15).length, 12)
        XCTAssertEqual(rx.usedElement(16).length, UInt32(12 + small.count))
        var received: [UInt8] = []
        for b in buffers { received += rx.bytes(at: b.address, count: Int(b.length)) }
        var expectedHeader = tsoHeader
        expectedHeader.bufferCount = 16
        XCTAssertEqual(VirtioNetHeader(received), expectedHeader)
        XCTAssertEqual(Array(received[12..<(12 + tso.count)]), tso)
        // The small frame starts the 17th chain (index 16 is an even, single-buffer chain).
        let seventeenth = buffers[24]
        XCTAssertEqual(rx.bytes(at: seventeenth.address, count: 12), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
        XCTAssertEqual(rx.bytes(at: seventeenth.address + 12, count: small.count), small)
        XCTAssertEqual(net.droppedFrames.receive, 0)
    }

    func testAPacketWaitsWhileTheGuestHasTooFewBuffers() throws {
        let backend = FakeNetBackend(supportedOffloads: .all)
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start(queueSize: 64)[0]
        let tso = frame(60 * 1024, seed: 9)
        backend.queue(tso, header: tsoHeader)
        var buffers = postReceiveBuffers(rx, count: 5, size: 4096)
        net.processBackendInput()
        XCTAssertEqual(rx.usedIndex, 0, "five buffers taken, none returned yet")
        XCTAssertFalse(net.wantsBackendInput)
        buffers += postReceiveBuffers(rx, count: 11, size: 4096)
        d.notify(0)
        XCTAssertEqual(rx.usedIndex, 16)
        var received: [UInt8] = []
        for b in buffers { received += rx.bytes(at: b.address, count: Int(b.length)) }
        XCTAssertEqual(VirtioNetHeader(received)?.bufferCount, 16)
        XCTAssertEqual(Array(received[12..<(12 + tso.count)]), tso)
        XCTAssertTrue(net.wantsBackendInput)
    }

    func testAPacketTheWholeQueueCannotHoldIsDropped() throws {
        let backend = FakeNetBackend()
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start(queueSize: 16)[0]
        backend.queue(frame(1500, seed: 0))
        // 16 chains of 64 bytes: 1024 bytes, less than the packet, and the ring is full.
        for _ in 0..<16 { rx.postChain([rx.writableBuffer(64)]) }
        net.processBackendInput()
        XCTAssertEqual(rx.usedIndex, 16)
        for i in 0..<16 { XCTAssertEqual(rx.usedElement(UInt16(i)).length, 0) }
        XCTAssertEqual(net.droppedFrames.receive, 1)
        XCTAssertTrue(net.wantsBackendInput)
    }

    func testMergeableChainsTooSmallForAHeaderOrEmptyAreReturnedUnused() throws {
        let backend = FakeNetBackend()
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start()[0]
        let f = frame(100, seed: 1)
        backend.queue(f)
        rx.postChain([rx.writableBuffer(8)]) // cannot take the header
        rx.postChain([rx.buffer([1, 2, 3])]) // nothing writable at all
        let good = rx.writableBuffer(200)
        rx.postChain([good])
        net.processBackendInput()
        XCTAssertEqual(rx.usedIndex, 3)
        XCTAssertEqual(rx.usedElement(0).length, 0)
        XCTAssertEqual(rx.usedElement(1).length, 0)
        XCTAssertEqual(rx.usedElement(2).length, 112)
        XCTAssertEqual(rx.bytes(at: good.address + 12, count: f.count), f)
    }
}
