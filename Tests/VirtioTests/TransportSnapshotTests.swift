import Memory
import Snapshot
import XCTest
@testable import Virtio

/// A virtio-mmio transport and its device saved mid-life and restored into a fresh pair
/// over the same guest RAM (as a restored VM has it): the driver's registers read back the
/// same, and the queues go on at the saved ring positions.
final class TransportSnapshotTests: XCTestCase {
    func save(_ transport: VirtioMMIOTransport) -> [UInt8] {
        var w = StateWriter()
        transport.saveState(to: &w)
        return w.bytes
    }

    func restore(_ bytes: [UInt8], device: any VirtioDevice, memory: GuestMemory) throws -> MMIODriver {
        let d = try MMIODriver(device: device, memory: memory)
        var r = StateReader(bytes)
        try d.transport.restoreState(from: &r)
        try r.finish()
        return d
    }

    func testRNGQueueGoesOnAtTheSavedPosition() throws {
        let d = try MMIODriver(device: VirtioRNG())
        let q = d.start()[0]
        for _ in 0..<3 { q.postChain([q.writableBuffer(8)]) }
        d.notify(0)
        XCTAssertEqual(q.usedIndex, 3)
        let state = save(d.transport)

        let restored = try restore(state, device: VirtioRNG(), memory: d.memory)
        for reg in [MMIODriver.Reg.status, MMIODriver.Reg.queueNum, MMIODriver.Reg.queueReady,
                    MMIODriver.Reg.queueDescLow, MMIODriver.Reg.queueDriverLow, MMIODriver.Reg.queueDeviceLow] {
            XCTAssertEqual(restored.read(reg), d.read(reg), "register 0x\(String(reg, radix: 16))")
        }
        XCTAssertEqual(restored.deviceFeatures, d.deviceFeatures)
        XCTAssertTrue(restored.transport.isActive)
        let head = q.postChain([q.writableBuffer(8)])
        restored.notify(0)
        XCTAssertEqual(q.usedIndex, 4, "the restored queue did not go on")
        XCTAssertEqual(q.usedElement(3).id, UInt32(head))
        XCTAssertEqual(q.usedElement(3).length, 8)
    }

    func testConsoleKeepsInputTheGuestHadNotTaken() throws {
        let console = VirtioConsole(output: { _ in })
        let d = try MMIODriver(device: console)
        let queues = d.start()
        console.receive(Array("typed before the save".utf8))   // no receive buffers yet
        let state = save(d.transport)

        let fresh = VirtioConsole(output: { _ in })
        let restored = try restore(state, device: fresh, memory: d.memory)
        XCTAssertEqual(fresh.pendingInputBytes, 21)
        let buffer = queues[0].writableBuffer(64, fill: 0)
        queues[0].postChain([buffer])
        restored.notify(0)
        XCTAssertEqual(queues[0].usedElement(0).length, 21)
        XCTAssertEqual(queues[0].bytes(at: buffer.address, count: 21), Array("typed before the save".utf8))
    }

    func testInactiveTransportStaysInactive() throws {
        let d = try MMIODriver(device: VirtioRNG())
        d.negotiate()
        let restored = try restore(save(d.transport), device: VirtioRNG(), memory: d.memory)
        XCTAssertFalse(restored.transport.isActive)
        XCTAssertEqual(restored.status, d.status)
    }

    func testOtherDeviceTypeOrFeaturesAreRefused() throws {
        let d = try MMIODriver(device: VirtioRNG())
        d.start()
        let state = save(d.transport)
        let console = try MMIODriver(device: VirtioConsole(output: { _ in }), memory: d.memory)
        var r = StateReader(state)
        XCTAssertThrowsError(try console.transport.restoreState(from: &r))
        var cut = StateReader(Array(state.dropLast(3)))
        let rng = try MMIODriver(device: VirtioRNG(), memory: d.memory)
        XCTAssertThrowsError(try rng.transport.restoreState(from: &cut))
    }

    func testDevicesWithoutSavedStateAreReported() throws {
        XCTAssertFalse(try MMIODriver(device: MockDevice()).transport.canSnapshot)
        XCTAssertTrue(try MMIODriver(device: VirtioRNG()).transport.canSnapshot)
    }
}
