import Memory
import Synchronization
import XCTest
@testable import Virtio

final class VirtioRNGTests: XCTestCase {
    func testFillsExactlyTheWritableLength() throws {
        let d = try MMIODriver(device: VirtioRNG())
        let q = d.start()[0]
        let a = q.writableBuffer(100, fill: 0xee)
        let b = q.writableBuffer(37, fill: 0xee)
        let guardBytes = q.writableBuffer(16, fill: 0xee) // not part of the chain
        q.postChain([a, b])
        d.notify(0)
        XCTAssertEqual(q.usedIndex, 1)
        XCTAssertEqual(q.usedElement(0).length, 137)
        let filled = q.bytes(at: a.address, count: 100) + q.bytes(at: b.address, count: 37)
        XCTAssertGreaterThan(filled.filter { $0 != 0xee }.count, 100, "random bytes replaced the fill")
        XCTAssertEqual(q.bytes(at: guardBytes.address, count: 16), [UInt8](repeating: 0xee, count: 16))
        XCTAssertEqual(d.interrupts.value, 1)
    }

    func testCapsARequestAt64KiB() throws {
        let d = try MMIODriver(device: VirtioRNG())
        let q = d.start()[0]
        let big = q.writableBuffer(100_000, fill: 0)
        q.postChain([big])
        d.notify(0)
        XCTAssertEqual(q.usedElement(0).length, UInt32(VirtioRNG.maxBytesPerRequest))
        XCTAssertEqual(q.bytes(at: big.address + 65536, count: 64), [UInt8](repeating: 0, count: 64))
    }

    func testReadableOnlyChainGetsNothing() throws {
        let d = try MMIODriver(device: VirtioRNG())
        let q = d.start()[0]
        q.postChain([q.buffer([1, 2, 3])])
        d.notify(0)
        XCTAssertEqual(q.usedIndex, 1)
        XCTAssertEqual(q.usedElement(0).length, 0)
    }
}

final class OutputCollector: Sendable {
    private let chunks = Mutex<[[UInt8]]>([])
    func append(_ b: [UInt8]) { chunks.withLock { $0.append(b) } }
    var all: [[UInt8]] { chunks.withLock { $0 } }
}

final class VirtioConsoleTests: XCTestCase {
    func testTransmitGoesToOutputInOrder() throws {
        let out = OutputCollector()
        let d = try MMIODriver(device: VirtioConsole { out.append($0) })
        let tx = d.start()[1]
        tx.postChain([tx.buffer(Array("hello, ".utf8))])
        tx.postChain([tx.buffer(Array("wor".utf8)), tx.buffer(Array("ld".utf8))])
        d.notify(1)
        tx.postChain([tx.buffer(Array("!\n".utf8))])
        d.notify(1)
        XCTAssertEqual(out.all, [Array("hello, ".utf8), Array("world".utf8), Array("!\n".utf8)])
        XCTAssertEqual(tx.usedIndex, 3)
        XCTAssertEqual(tx.usedElement(0).length, 0)
    }

    func testInputIsDeliveredWhenBuffersArePosted() throws {
        let console = VirtioConsole { _ in }
        console.receive(Array("early".utf8)) // before the driver is even there
        let d = try MMIODriver(device: console)
        let rx = d.start()[0]
        console.receive(Array("abc".utf8))
        XCTAssertEqual(rx.usedIndex, 0, "no buffers yet")

        let small = rx.writableBuffer(3)
        let large = rx.writableBuffer(64)
        rx.postChain([small])
        rx.postChain([large])
        d.notify(0)
        XCTAssertEqual(rx.usedIndex, 2)
        XCTAssertEqual(rx.usedElement(0).length, 3)
        XCTAssertEqual(rx.bytes(at: small.address, count: 3), Array("ear".utf8))
        XCTAssertEqual(rx.usedElement(1).length, 5)
        XCTAssertEqual(rx.bytes(at: large.address, count: 5), Array("lyabc".utf8))

        // With a buffer already posted, input goes straight in.
        let next = rx.writableBuffer(16)
        rx.postChain([next])
        d.notify(0)
        XCTAssertEqual(rx.usedIndex, 2, "nothing to deliver yet")
        console.receive(Array("xyz".utf8))
        XCTAssertEqual(rx.usedIndex, 3)
        XCTAssertEqual(rx.bytes(at: next.address, count: 3), Array("xyz".utf8))
    }

    func testInputBufferIsBounded() throws {
        let console = VirtioConsole { _ in }
        console.receive([UInt8](repeating: 1, count: VirtioConsole.inputBufferLimit + 100))
        XCTAssertEqual(console.droppedInputBytes, 100)
    }

    func testNoMultiportNoSize() throws {
        let console = VirtioConsole { _ in }
        XCTAssertEqual(console.offeredFeatures & 0b11, 0)
        XCTAssertEqual(console.queueCount, 2)
        XCTAssertEqual(console.readConfig(offset: 0, size: 4), 0)
    }
}

/// A backend that records what was sent and replays queued frames.
final class FakeBackend: NetBackend {
    private struct State {
        var sent: [[UInt8]] = []
        var incoming: [[UInt8]] = []
    }
    private let state = Mutex(State())

    func send(_ frame: [UInt8]) throws { state.withLock { $0.sent.append(frame) } }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        state.withLock { s in
            guard !s.incoming.isEmpty else { return nil }
            let f = s.incoming.removeFirst()
            let n = min(f.count, buffer.count)
            buffer.copyBytes(from: f[..<n])
            return n
        }
    }

    func queue(_ frame: [UInt8]) { state.withLock { $0.incoming.append(frame) } }
    var sent: [[UInt8]] { state.withLock { $0.sent } }
    var waiting: Int { state.withLock { $0.incoming.count } }
}

final class VirtioNetTests: XCTestCase {
    let mac = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)

    func frame(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &+ Int(seed)) } }

    func testTransmitStripsTheHeader() throws {
        let backend = FakeBackend()
        let d = try MMIODriver(device: VirtioNet(mac: mac, backend: backend))
        let tx = d.start()[1]
        let f1 = frame(60, seed: 1)
        let f2 = frame(1514, seed: 2)
        tx.postChain([tx.buffer([UInt8](repeating: 0, count: 12)), tx.buffer(f1)])
        // Header and frame in one buffer, split at an odd place.
        let joined = [UInt8](repeating: 0, count: 12) + f2
        tx.postChain([tx.buffer(Array(joined[..<5])), tx.buffer(Array(joined[5...]))])
        // Too short to hold a header: dropped.
        tx.postChain([tx.buffer([1, 2, 3])])
        d.notify(1)
        XCTAssertEqual(backend.sent, [f1, f2])
        XCTAssertEqual(tx.usedIndex, 3)
        XCTAssertEqual((d.transport.device as! VirtioNet).droppedFrames.transmit, 1)
    }

    func testReceivePrependsTheHeader() throws {
        let backend = FakeBackend()
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

    func testFrameTooBigForTheBufferIsDropped() throws {
        let backend = FakeBackend()
        let net = VirtioNet(mac: mac, backend: backend)
        let d = try MMIODriver(device: net)
        let rx = d.start()[0]
        backend.queue(frame(1000, seed: 0))
        backend.queue(frame(50, seed: 3))
        rx.postChain([rx.writableBuffer(12 + 100)])
        rx.postChain([rx.writableBuffer(12 + 100)])
        net.processBackendInput()
        XCTAssertEqual(rx.usedElement(0).length, 0)
        XCTAssertEqual(rx.usedElement(1).length, 62)
        XCTAssertEqual(net.droppedFrames.receive, 1)
    }

    func testConfigSpaceHasMACAndLinkUp() throws {
        let net = VirtioNet(mac: mac, backend: FakeBackend())
        let d = try MMIODriver(device: net)
        XCTAssertEqual(d.config(0, size: 4), 0x1200_5452)
        XCTAssertEqual(d.config(4, size: 2), 0x5634)
        XCTAssertEqual(d.config(6, size: 2), 1)
        XCTAssertNotEqual(net.offeredFeatures & VirtioNet.featureMAC, 0)
        XCTAssertNotEqual(net.offeredFeatures & VirtioNet.featureStatus, 0)
        XCTAssertEqual(net.offeredFeatures & 0b11, 0, "no checksum offload offered")
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

    func testTapOpensWhenTheHostAllowsIt() throws {
        // Creates a transient, down interface (gone when the descriptor closes); no traffic.
        let tap: TapBackend
        do {
            tap = try TapBackend(interfaceName: "svmtest%d")
        } catch {
            throw XCTSkip("no TAP here: \(error)")
        }
        XCTAssertGreaterThanOrEqual(tap.fileDescriptor, 0)
        var buffer = [UInt8](repeating: 0, count: 2048)
        XCTAssertNil(try buffer.withUnsafeMutableBytes { try tap.receive(into: $0) }, "nothing waiting, non-blocking")
    }
}
