import Memory
import XCTest
@testable import Virtio

final class MMIOTransportTests: XCTestCase {
    typealias Reg = MMIODriver.Reg

    func testIdentityRegisters() throws {
        let d = try MMIODriver(device: MockDevice(type: 2))
        XCTAssertEqual(d.read(Reg.magic), 0x7472_6976)
        XCTAssertEqual(d.read(Reg.version), 2)
        XCTAssertEqual(d.read(Reg.deviceID), 2)
        XCTAssertEqual(d.read(Reg.vendorID), 0x554D_4551)
        XCTAssertEqual(VirtioMMIOTransport.windowSize, 0x200)
        // Registers are 32-bit only; narrower reads see nothing.
        XCTAssertEqual(d.transport.read(offset: Reg.magic, size: 2), 0)
        XCTAssertEqual(d.transport.read(offset: Reg.magic + 1, size: 4), 0)
        XCTAssertEqual(d.transport.read(offset: 0x200, size: 4), 0, "past the window")
        XCTAssertEqual(d.read(0x0b0), 0xffff_ffff, "no shared memory region")
    }

    func testConfigSpaceIsForwardedFrom0x100() throws {
        let dev = MockDevice()
        let d = try MMIODriver(device: dev)
        XCTAssertEqual(d.transport.read(offset: 0x100, size: 1), 0x10)
        XCTAssertEqual(d.transport.read(offset: 0x104, size: 4), 0x1716_1514)
        d.negotiate()
        d.transport.write(offset: 0x108, size: 2, value: 0xbeef)
        XCTAssertEqual(dev.record.withLock { $0.configWrites.count }, 1)
        XCTAssertEqual(dev.record.withLock { $0.configWrites.first?.0 }, 8)
    }

    func testFeatureNegotiationOverTwo32BitHalves() throws {
        let offered = VirtioFeature.version1 | VirtioFeature.eventIndex | (1 << 3) | (1 << 40)
        let d = try MMIODriver(device: MockDevice(features: offered))
        XCTAssertEqual(d.deviceFeatures, offered)
        d.write(Reg.deviceFeaturesSel, 2)
        XCTAssertEqual(d.read(Reg.deviceFeatures), 0, "no feature words past 1")

        let dev = MockDevice(features: offered)
        let d2 = try MMIODriver(device: dev)
        let wanted = VirtioFeature.version1 | (1 << 40) | (1 << 3)
        XCTAssertTrue(d2.negotiate(wanted))
        d2.start(features: wanted)
        XCTAssertEqual(dev.record.withLock { $0.activations.first?.features }, wanted)
        XCTAssertEqual(dev.record.withLock { $0.activations.first?.queues.first?.eventIndex }, false)
    }

    func testFeaturesOKIsRefusedForUnofferedFeatures() throws {
        let dev = MockDevice()
        let d = try MMIODriver(device: dev)
        XCTAssertFalse(d.negotiate(VirtioFeature.version1 | (1 << 7)))
        XCTAssertEqual(d.status, VirtioStatus.acknowledge | VirtioStatus.driver)
        // DRIVER_OK cannot follow a refused FEATURES_OK.
        d.write(Reg.status, 0xf)
        XCTAssertEqual(d.status & VirtioStatus.driverOK, 0)
        XCTAssertEqual(dev.activations, 0)
    }

    func testFeaturesOKIsRefusedWithoutVersion1() throws {
        let d = try MMIODriver(device: MockDevice())
        XCTAssertFalse(d.negotiate(VirtioFeature.eventIndex))
    }

    func testDriverFeaturesAreFrozenAfterFeaturesOK() throws {
        let dev = MockDevice()
        let d = try MMIODriver(device: dev)
        XCTAssertTrue(d.negotiate(VirtioFeature.version1))
        d.writeDriverFeatures(VirtioFeature.version1 | VirtioFeature.eventIndex)
        for i in 0..<2 { _ = d.setUpQueue(i, size: 16) }
        d.write(Reg.status, d.status | VirtioStatus.driverOK)
        XCTAssertEqual(dev.record.withLock { $0.activations.first?.features }, VirtioFeature.version1)
    }

    func testFullStartActivatesWithTheDriversQueues() throws {
        let dev = MockDevice(maxQueueSize: 64)
        let d = try MMIODriver(device: dev)
        d.write(Reg.queueSel, 0)
        XCTAssertEqual(d.read(Reg.queueNumMax), 64)
        d.write(Reg.queueSel, 2)
        XCTAssertEqual(d.read(Reg.queueNumMax), 0, "no third queue")
        let queues = d.start(queueSize: 32)
        XCTAssertEqual(d.status, 0xf)
        XCTAssertTrue(d.transport.isActive)
        let got = try XCTUnwrap(dev.record.withLock { $0.activations.first?.queues })
        XCTAssertEqual(got.map(\.size), [32, 32])
        XCTAssertEqual(got.map(\.descriptorTable), queues.map(\.descriptorTable))
        XCTAssertEqual(got.map(\.availRing), queues.map(\.availRing))
        XCTAssertEqual(got.map(\.usedRing), queues.map(\.usedRing))
        XCTAssertTrue(got[0].eventIndex)

        d.notify(1)
        d.transport.notify(queue: 0)
        d.transport.notify(queue: 2) // not a queue of this device
        d.transport.notify(queue: -1)
        XCTAssertEqual(dev.processed, [1, 0])
    }

    func testNotificationsBeforeDriverOKAreIgnored() throws {
        let dev = MockDevice()
        let d = try MMIODriver(device: dev)
        d.negotiate()
        d.notify(0)
        XCTAssertEqual(dev.processed, [])
    }

    func testQueueNotifyCanBeRoutedToTheMachine() throws {
        let dev = MockDevice()
        let m = try GuestMemory(size: 16 << 20)
        let routed = Counter()
        let t = VirtioMMIOTransport(device: dev, memory: m, interrupt: {}, queueNotification: { q in
            if q == 1 { routed.increment() }
        })
        t.write(offset: Reg.queueNotify, size: 4, value: 1)
        XCTAssertEqual(routed.value, 1)
        XCTAssertEqual(dev.processed, [])
    }

    func testWritingStatusZeroResetsDeviceAndQueues() throws {
        let dev = MockDevice()
        let d = try MMIODriver(device: dev)
        d.start(queueSize: 16)
        d.write(Reg.queueSel, 1)
        XCTAssertEqual(d.read(Reg.queueReady), 1)
        XCTAssertNotEqual(d.read(Reg.queueDescLow), 0)
        let resetsBefore = dev.resets // start() itself begins with a reset, like Linux

        d.write(Reg.status, 0)
        XCTAssertEqual(d.status, 0)
        XCTAssertEqual(dev.resets, resetsBefore + 1)
        XCTAssertFalse(d.transport.isActive)
        for q in 0..<2 as Range<UInt32> {
            d.write(Reg.queueSel, q)
            XCTAssertEqual(d.read(Reg.queueReady), 0)
            XCTAssertEqual(d.read(Reg.queueDescLow), 0)
            XCTAssertEqual(d.read(Reg.queueDriverLow), 0)
            XCTAssertEqual(d.read(Reg.queueDeviceLow), 0)
        }
        d.notify(0)
        XCTAssertEqual(dev.processed, [], "a reset device ignores notifications")
        // And it can be brought up again.
        d.start()
        XCTAssertEqual(dev.activations, 2)
    }

    /// A driver that resets the device in a loop (issue 13 item 5): every cycle ends in the
    /// same clean state, nothing accumulates, and the device still works at the end.
    func testResettingInALoopLeavesACleanDevice() throws {
        let dev = MockDevice()
        let d = try MMIODriver(device: dev)
        for cycle in 0..<2000 {
            if cycle % 2 == 0 { d.start(queueSize: 16) } else { d.write(Reg.status, 1) }  // up, or half-way
            d.write(Reg.status, 0)
            XCTAssertEqual(d.status, 0)
            XCTAssertFalse(d.transport.isActive)
            d.notify(0)
        }
        XCTAssertEqual(dev.processed, [], "a reset device ignores notifications")
        d.start()
        XCTAssertTrue(d.transport.isActive)
        XCTAssertEqual(dev.activations, 1001)
    }

    func testStatusStateMachineRejectsSkippedSteps() throws {
        let d = try MMIODriver(device: MockDevice())
        d.write(Reg.status, VirtioStatus.driver) // DRIVER without ACKNOWLEDGE
        XCTAssertEqual(d.status, 0)
        d.write(Reg.status, VirtioStatus.acknowledge)
        d.write(Reg.status, VirtioStatus.acknowledge | VirtioStatus.driver)
        d.write(Reg.status, VirtioStatus.acknowledge) // clearing a bit is not allowed
        XCTAssertEqual(d.status, 3)
        d.write(Reg.status, 3 | VirtioStatus.driverOK) // DRIVER_OK before FEATURES_OK
        XCTAssertEqual(d.status, 3)
        d.write(Reg.status, 3 | VirtioStatus.failed)
        XCTAssertEqual(d.status, 3 | VirtioStatus.failed)
    }

    func testInterruptStatusAndAck() throws {
        let d = try MMIODriver(device: MockDevice())
        d.start()
        d.transport.interrupt.signalUsedBuffer()
        d.transport.interrupt.signalConfigChange()
        XCTAssertEqual(d.read(Reg.interruptStatus), 3)
        XCTAssertEqual(d.interrupts.value, 2)
        XCTAssertEqual(d.read(Reg.configGeneration), 1)
        d.write(Reg.interruptACK, 1)
        XCTAssertEqual(d.read(Reg.interruptStatus), 2)
        d.write(Reg.interruptACK, 2)
        XCTAssertEqual(d.read(Reg.interruptStatus), 0)
    }

    // MARK: Bad queue configuration through the registers

    func testQueueSizeNotAPowerOfTwoIsRefused() throws {
        let dev = MockDevice()
        let d = try MMIODriver(device: dev)
        d.negotiate()
        let q = d.setUpQueue(0, size: 24)
        _ = q
        XCTAssertEqual(d.read(Reg.queueReady), 0)
        XCTAssertNotEqual(d.status & VirtioStatus.needsReset, 0)
        XCTAssertNotEqual(d.read(Reg.interruptStatus) & VirtioInterruptBit.configChange, 0)
        _ = d.setUpQueue(1, size: 16)
        d.write(Reg.status, d.status | VirtioStatus.driverOK)
        XCTAssertEqual(dev.activations, 0, "a device with a refused queue does not start")
        XCTAssertFalse(d.transport.isActive)
        // Reset clears NEEDS_RESET.
        d.write(Reg.status, 0)
        XCTAssertEqual(d.status, 0)
    }

    func testQueueSizeAboveMaximumIsRefused() throws {
        let d = try MMIODriver(device: MockDevice(maxQueueSize: 64))
        d.negotiate()
        _ = d.setUpQueue(0, size: 128)
        XCTAssertEqual(d.read(Reg.queueReady), 0)
        XCTAssertNotEqual(d.status & VirtioStatus.needsReset, 0)
    }

    func testQueueAddressesOutsideRAMAreRefused() throws {
        let bad: [(UInt64, UInt64, UInt64)] = [
            (16 << 20, 0x2000, 0x3000),              // descriptor table past RAM
            (0x1000, 0xffff_ffff_ffff_fff0, 0x3000), // avail ring wrapping around
            (0x1000, 0x2000, 0xc000_0000),           // used ring in the MMIO hole
            (0x1000, 0x2000, (16 << 20) - 64),       // used ring crossing the end
        ]
        for (desc, driver, device) in bad {
            let dev = MockDevice()
            let d = try MMIODriver(device: dev)
            d.negotiate()
            d.write(Reg.queueSel, 0)
            d.write(Reg.queueNum, 16)
            d.setQueueAddresses(desc: desc, driver: driver, device: device)
            d.write(Reg.queueReady, 1)
            XCTAssertEqual(d.read(Reg.queueReady), 0, "\(desc) \(driver) \(device)")
            XCTAssertNotEqual(d.status & VirtioStatus.needsReset, 0)
            _ = d.setUpQueue(1, size: 16)
            d.write(Reg.status, d.status | VirtioStatus.driverOK)
            XCTAssertEqual(dev.activations, 0)
        }
    }

    func testMissingQueueMeansNoActivation() throws {
        let dev = MockDevice()
        let d = try MMIODriver(device: dev)
        d.negotiate()
        _ = d.setUpQueue(0, size: 16) // queue 1 never set up
        d.write(Reg.status, d.status | VirtioStatus.driverOK)
        XCTAssertEqual(dev.activations, 0)
        XCTAssertNotEqual(d.status & VirtioStatus.needsReset, 0)
    }

    func testQueueRegistersAreReadOnlyOnceReadyOrRunning() throws {
        let d = try MMIODriver(device: MockDevice())
        d.start(queueSize: 16)
        d.write(Reg.queueSel, 0)
        d.write(Reg.queueNum, 8)
        d.write(Reg.queueDescLow, 0x5000)
        XCTAssertEqual(d.read(Reg.queueNum), 16)
        XCTAssertNotEqual(d.read(Reg.queueDescLow), 0x5000)
    }
}
