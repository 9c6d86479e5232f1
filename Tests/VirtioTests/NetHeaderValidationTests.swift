import Memory
import XCTest
@testable import Virtio

/// virtio_net_hdr fields from an untrusted driver (and from the TAP, checked against what
/// the driver negotiated): every bad header drops its frame, is counted, and never reaches
/// the backend.
final class NetHeaderValidationTests: XCTestCase {
    typealias H = VirtioNetHeader
    let mac = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    let allOffloads = VirtioNetFeature.offloadFeatures(for: .all)
    let needsChecksum = VirtioNetHeader.Flag.needsChecksum

    func testHeaderBytesRoundTrip() {
        let h = H(flags: 1, gsoType: 4, headerLength: 0x1234, gsoSize: 0xabcd, checksumStart: 0x0102,
                  checksumOffset: 0x0304, bufferCount: 0xfffe)
        XCTAssertEqual(h.bytes, [1, 4, 0x34, 0x12, 0xcd, 0xab, 0x02, 0x01, 0x04, 0x03, 0xfe, 0xff])
        XCTAssertEqual(H(h.bytes), h)
        XCTAssertNil(H([UInt8](repeating: 0, count: 11)))
    }

    func testTransmitHeaderProblems() {
        let frameLength = 2000
        let cases: [(String, H, UInt64, NetHeaderProblem?)] = [
            ("plain", H(), 0, nil),
            ("checksum", H(flags: needsChecksum, checksumStart: 34, checksumOffset: 16), allOffloads, nil),
            ("TSO4", H(flags: needsChecksum, gsoType: 1, headerLength: 54, gsoSize: 1448, checksumStart: 34,
                       checksumOffset: 16), allOffloads, nil),
            ("TSO6", H(flags: needsChecksum, gsoType: 4, headerLength: 74, gsoSize: 1428, checksumStart: 54,
                       checksumOffset: 16), allOffloads, nil),
            ("DATA_VALID is the device's", H(flags: 2), allOffloads, .unknownFlags(2)),
            ("unknown flag", H(flags: 0x81), allOffloads, .unknownFlags(0x81)),
            ("NEEDS_CSUM without CSUM", H(flags: needsChecksum, checksumStart: 34, checksumOffset: 16),
             VirtioNetFeature.guestChecksum, .checksumNotNegotiated),
            ("checksum field past the end", H(flags: needsChecksum, checksumStart: 1990, checksumOffset: 9),
             allOffloads, .checksumOutsideFrame(start: 1990, offset: 9, frameLength: frameLength)),
            ("checksum start at 0xffff", H(flags: needsChecksum, checksumStart: 0xffff, checksumOffset: 0xffff),
             allOffloads, .checksumOutsideFrame(start: 0xffff, offset: 0xffff, frameLength: frameLength)),
            ("TSO4 without HOST_TSO4", H(flags: needsChecksum, gsoType: 1, headerLength: 54, gsoSize: 1448),
             VirtioNetFeature.checksum | VirtioNetFeature.hostTSO6, .segmentationNotNegotiated(gsoType: 1)),
            ("TSO6 without HOST_TSO6", H(flags: needsChecksum, gsoType: 4, headerLength: 54, gsoSize: 1448),
             VirtioNetFeature.checksum | VirtioNetFeature.hostTSO4, .segmentationNotNegotiated(gsoType: 4)),
            ("UFO never offered", H(flags: needsChecksum, gsoType: 3, gsoSize: 1000), allOffloads,
             .segmentationNotNegotiated(gsoType: 3)),
            ("ECN never offered", H(flags: needsChecksum, gsoType: 0x81, gsoSize: 1000), allOffloads,
             .segmentationNotNegotiated(gsoType: 0x81)),
            ("ECN bit on a plain frame", H(gsoType: 0x80), allOffloads, .segmentationNotNegotiated(gsoType: 0x80)),
            ("unknown GSO type", H(flags: needsChecksum, gsoType: 7, gsoSize: 1000), allOffloads,
             .unknownSegmentationType(7)),
            ("TSO without NEEDS_CSUM", H(gsoType: 1, headerLength: 54, gsoSize: 1448), allOffloads,
             .segmentationWithoutChecksum),
            ("TSO with gso_size 0", H(flags: needsChecksum, gsoType: 1, headerLength: 54), allOffloads, .zeroSegmentSize),
            ("hdr_len past the end", H(flags: needsChecksum, gsoType: 1, headerLength: 2001, gsoSize: 1448),
             allOffloads, .headerLengthOutsideFrame(headerLength: 2001, frameLength: frameLength)),
        ]
        for (name, header, features, expected) in cases {
            XCTAssertEqual(header.transmitProblem(frameLength: frameLength, negotiated: features), expected, name)
        }
    }

    func testReceiveHeaderChecks() {
        let tso4 = H(flags: needsChecksum, gsoType: 1, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16)
        let guestAll = VirtioNetFeature.guestChecksum | VirtioNetFeature.guestTSO4 | VirtioNetFeature.guestTSO6
        XCTAssertEqual(tso4.forReceive(frameLength: 60000, negotiated: guestAll), .success(tso4))
        XCTAssertEqual(tso4.forReceive(frameLength: 60000, negotiated: VirtioNetFeature.guestChecksum),
                       .failure(.segmentationNotNegotiated(gsoType: 1)))
        // The host-side TSO bits say nothing about what the driver can receive.
        XCTAssertEqual(tso4.forReceive(frameLength: 60000, negotiated: VirtioNetFeature.checksum | VirtioNetFeature.hostTSO4),
                       .failure(.checksumNotNegotiated))
        XCTAssertEqual(H(flags: 2).forReceive(frameLength: 60, negotiated: 0), .success(H()), "DATA_VALID dropped")
        XCTAssertEqual(H(flags: 2).forReceive(frameLength: 60, negotiated: guestAll), .success(H(flags: 2)))
        XCTAssertEqual(H(flags: 4).forReceive(frameLength: 60, negotiated: guestAll), .failure(.unknownFlags(4)))
        XCTAssertEqual(H(flags: needsChecksum, checksumStart: 60, checksumOffset: 0).forReceive(frameLength: 60, negotiated: guestAll),
                       .failure(.checksumOutsideFrame(start: 60, offset: 0, frameLength: 60)))
    }

    /// Malformed headers through the device: each dropped and counted, the good frames
    /// between them sent, every chain returned.
    func testMalformedTransmitHeadersAreDroppedAndCounted() throws {
        let backend = FakeNetBackend(supportedOffloads: [.checksum, .tcp4Segmentation])
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let tx = d.start(queueSize: 32)[1]
        let frame = [UInt8](repeating: 0x5a, count: 1000)
        let good = H(flags: needsChecksum, checksumStart: 34, checksumOffset: 16)
        let bad: [H] = [
            H(flags: 2),
            H(flags: needsChecksum, checksumStart: 999, checksumOffset: 0),
            H(flags: needsChecksum, gsoType: 4, headerLength: 54, gsoSize: 1448), // TSO6 not offered here
            H(flags: needsChecksum, gsoType: 3, gsoSize: 1448),
            H(flags: needsChecksum, gsoType: 1, headerLength: 54, gsoSize: 0),
            H(flags: needsChecksum, gsoType: 1, headerLength: 1001, gsoSize: 1448),
        ]
        for h in bad {
            tx.postChain([tx.buffer(h.bytes + frame)])
            tx.postChain([tx.buffer(good.bytes), tx.buffer(frame)])
        }
        // A header split over two descriptors is read whole all the same.
        let split = H(flags: 0xff).bytes
        tx.postChain([tx.buffer(Array(split[..<1])), tx.buffer(Array(split[1...]) + frame)])
        // Over the size limit, and nothing but a header.
        tx.postChain([tx.buffer(good.bytes), tx.buffer([UInt8](repeating: 0, count: VirtioNet.maxFrameSize + 1))])
        tx.postChain([tx.buffer(good.bytes)])
        d.notify(1)
        XCTAssertEqual(tx.usedIndex, UInt16(2 * bad.count + 3))
        XCTAssertEqual(backend.sentPackets, Array(repeating: good.bytes + frame, count: bad.count))
        XCTAssertEqual(net.droppedFrames.transmit, bad.count + 3)
    }

    func testParseNamesWhyAChainIsDropped() throws {
        let d = TestDriver(memory: try GuestMemory(size: 16 << 20), size: 8)
        var q = try d.makeQueue()
        d.postChain([d.buffer(H(flags: 2).bytes + [1, 2, 3])])
        d.postChain([d.buffer([1, 2, 3])])
        d.postChain([d.buffer(H().bytes + [9])])
        let features = VirtioFeature.version1
        XCTAssertEqual(NetTransmitPacket.parse(try q.popAvailable()!, negotiated: features),
                       .failure(.header(.unknownFlags(2))))
        XCTAssertEqual(NetTransmitPacket.parse(try q.popAvailable()!, negotiated: features), .failure(.tooShort(length: 3)))
        XCTAssertEqual(NetTransmitPacket.parse(try q.popAvailable()!, negotiated: features), .success(H().bytes + [9]))
    }
}
