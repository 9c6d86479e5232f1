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
