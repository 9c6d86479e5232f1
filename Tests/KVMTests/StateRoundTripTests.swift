import CKVM
import Glibc
import Host
import XCTest
@testable import KVM

/// Every getter/setter pair on real KVM: get, change a field KVM keeps, set, get again.
/// Then a real-mode guest's whole vCPU state moves to a vCPU of a second VM over the same
/// memory and the guest goes on counting there. Needs /dev/kvm; skips only without it.
final class StateRoundTripTests: XCTestCase {
    static let ramSize = 1 << 20

    struct Guest {
        let system: KVMSystem
        let vm: VirtualMachine
        let vcpu: VCPU
    }

    var mappings: [(UnsafeMutableRawPointer, Int)] = []

    override func tearDown() {
        for (p, n) in mappings { munmap(p, n) }
        mappings = []
    }

    func memory() -> UnsafeMutableRawPointer {
        let p = mmap(nil, Self.ramSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        mappings.append((p, Self.ramSize))
        return p
    }

    /// A VM with `ram` as its first megabyte, an irqchip and a PIT, and one vCPU in real
    /// mode at 0000:8000.
    func makeGuest(ram: UnsafeMutableRawPointer) throws -> Guest {
        try XCTSkipUnless(access("/dev/kvm", R_OK | W_OK) == 0, "needs /dev/kvm")
        let system = try KVMSystem()
        let vm = try system.createVM()
        try vm.setTSSAddress(0xFFFB_D000)
        try vm.setIdentityMapAddress(0xFFFB_C000)
        try vm.setUserMemoryRegion(slot: 0, guestAddress: 0, size: UInt64(Self.ramSize), host: ram)
        try vm.createIRQChip()
        try vm.createPIT2()
        let vcpu = try vm.createVCPU(id: 0)
        try vcpu.setCPUID(try system.supportedCPUID())
        var s = try vcpu.getSpecialRegisters()
        s.cs.base = 0
        s.cs.selector = 0
        try vcpu.setSpecialRegisters(s)
        var r = try vcpu.getRegisters()
        r.rip = 0x8000
        r.rflags = 2
        r.rax = 0
        try vcpu.setRegisters(r)
        return Guest(system: system, vm: vm, vcpu: vcpu)
    }

    func testRegistersAndSpecialRegisters() throws {
        let g = try makeGuest(ram: memory())
        var r = try g.vcpu.getRegisters()
        r.rbx = 0x1234_5678_9ABC
        try g.vcpu.setRegisters(r)
        XCTAssertEqual(try g.vcpu.getRegisters().rbx, 0x1234_5678_9ABC)
        var s = try g.vcpu.getSpecialRegisters()
        s.ds.base = 0x5000
        try g.vcpu.setSpecialRegisters(s)
        XCTAssertEqual(try g.vcpu.getSpecialRegisters().ds.base, 0x5000)
    }

    func testFPUAndXSAVEAndXCRs() throws {
        let g = try makeGuest(ram: memory())
        var f = try g.vcpu.getFPU()
        f.fcw = 0x27F
        try g.vcpu.setFPU(f)
        XCTAssertEqual(try g.vcpu.getFPU().fcw, 0x27F)
        var x = try g.vcpu.getXSAVE()
        // Bytes 0-1 of the legacy area are the FPU control word; bit 0 of XSTATE_BV (byte
        // 512, the XSAVE header) says the x87 state is there rather than in its init state.
        withUnsafeMutableBytes(of: &x.region) { raw in
            raw.storeBytes(of: UInt16(0x37F), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: raw.load(fromByteOffset: 512, as: UInt64.self) | 1, toByteOffset: 512, as: UInt64.self)
        }
        try g.vcpu.setXSAVE(x)
        XCTAssertEqual(try g.vcpu.getFPU().fcw, 0x37F)
        var back = try g.vcpu.getXSAVE()
        XCTAssertEqual(withUnsafeBytes(of: &back.region) { $0.load(fromByteOffset: 0, as: UInt16.self) }, 0x37F)
        let xcrs = try g.vcpu.getXCRs()
        try g.vcpu.setXCRs(xcrs)
        let again = try g.vcpu.getXCRs()
        XCTAssertEqual(again.nr_xcrs, xcrs.nr_xcrs)
        if xcrs.nr_xcrs > 0 {
            XCTAssertEqual(again.xcrs.0.value, xcrs.xcrs.0.value)
            XCTAssertEqual(again.xcrs.0.value & 1, 1, "XCR0 always has x87")
        }
    }

    func testMSRsOfTheIndexList() throws {
        let g = try makeGuest(ram: memory())
        let list = try g.system.msrIndexList()
        XCTAssertGreaterThan(list.count, 10)
        let sysenterCS: UInt32 = 0x174
        XCTAssertTrue(list.contains(sysenterCS))
        let all = try g.vcpu.getMSRs(list)
        XCTAssertEqual(all.count, list.count, "KVM could not read every MSR of its own list")
        XCTAssertEqual(try g.vcpu.setMSRs(all.map { ($0.index, $0.value) }), all.count)
        try g.vcpu.setMSRs([(sysenterCS, 0x10)])
        XCTAssertEqual(try g.vcpu.getMSRs([sysenterCS]).first?.value, 0x10)
    }

    func testLAPICEventsMPStateAndDebugRegisters() throws {
        let g = try makeGuest(ram: memory())
        var lapic = try g.vcpu.getLAPIC()
        lapic[register: LAPICState.taskPriority] = 0x20
        lapic.setDeliveryMode(LAPICState.lint1, 4)
        try g.vcpu.setLAPIC(lapic)
        let back = try g.vcpu.getLAPIC()
        XCTAssertEqual(back[register: LAPICState.taskPriority], 0x20)
        XCTAssertEqual((back[register: LAPICState.lint1] >> 8) & 7, 4)

        var events = try g.vcpu.getEvents()
        events.nmi.pending = 1
        events.flags = UInt32(CKVM_VCPUEVENT_VALID_NMI_PENDING)
        try g.vcpu.setEvents(events)
        XCTAssertEqual(try g.vcpu.getEvents().nmi.pending, 1)

        var mp = try g.vcpu.getMPState()
        XCTAssertEqual(mp.mp_state, UInt32(KVM_MP_STATE_RUNNABLE))
        mp.mp_state = UInt32(KVM_MP_STATE_HALTED)
        try g.vcpu.setMPState(mp)
        XCTAssertEqual(try g.vcpu.getMPState().mp_state, UInt32(KVM_MP_STATE_HALTED))

        var debug = try g.vcpu.getDebugRegisters()
        debug.db.0 = 0xDEAD_0000
        try g.vcpu.setDebugRegisters(debug)
        XCTAssertEqual(try g.vcpu.getDebugRegisters().db.0, 0xDEAD_0000)
    }

    func testIRQChipPITAndClock() throws {
        let g = try makeGuest(ram: memory())
        var pic = try g.vm.getIRQChip(.picMaster)
        pic.chip.pic.imr = 0xA5
        try g.vm.setIRQChip(pic)
        XCTAssertEqual(try g.vm.getIRQChip(.picMaster).chip.pic.imr, 0xA5)
        var slave = try g.vm.getIRQChip(.picSlave)
        slave.chip.pic.imr = 0x5A
        try g.vm.setIRQChip(slave)
        XCTAssertEqual(try g.vm.getIRQChip(.picSlave).chip.pic.imr, 0x5A)
        var ioapic = try g.vm.getIRQChip(.ioapic)
        // Redirection entry 3 (redirtbl, a union Swift does not import, starts at byte 24 of
        // struct kvm_ioapic_state): masked, vector 0x33.
        let entry3 = 24 + 3 * 8
        withUnsafeMutableBytes(of: &ioapic.chip) { $0.storeBytes(of: UInt64(0x1_0033), toByteOffset: entry3, as: UInt64.self) }
        try g.vm.setIRQChip(ioapic)
        var back = try g.vm.getIRQChip(.ioapic)
        XCTAssertEqual(withUnsafeBytes(of: &back.chip) { $0.load(fromByteOffset: entry3, as: UInt64.self) }, 0x1_0033)

        var pit = try g.vm.getPIT2()
        pit.channels.2.count = 0x1234
        try g.vm.setPIT2(pit)
        XCTAssertEqual(try g.vm.getPIT2().channels.2.count, 0x1234)

        var clock = try g.vm.getClock()
        let later = clock.clock + 1_000_000_000_000  // 1000 s on
        clock.clock = later
        try g.vm.setClock(clock)
        XCTAssertGreaterThanOrEqual(try g.vm.getClock().clock, later)
    }

    /// `inc ax; out 0x80, al; jmp back`: the exit decodes as port I/O, and the whole state
    /// moved to another VM's vCPU continues the count there.
    func testAGuestMovesToASecondVMAndGoesOnCounting() throws {
        let ram = memory()
        let code: [UInt8] = [0x40, 0xE6, 0x80, 0xEB, 0xFB]
        for (i, b) in code.enumerated() { ram.storeBytes(of: b, toByteOffset: 0x8000 + i, as: UInt8.self) }
        let first = try makeGuest(ram: ram)
        for n in 1...100 {
            guard case let .portIO(port, size, count, isOut, data) = try first.vcpu.enterGuest() else {
                return XCTFail("exit \(n) was not port I/O")
            }
            XCTAssertEqual(port, 0x80)
            XCTAssertEqual(size, 1)
            XCTAssertEqual(count, 1)
            XCTAssertTrue(isOut)
            XCTAssertEqual(data.load(as: UInt8.self), UInt8(truncatingIfNeeded: n))
        }
        XCTAssertEqual(try first.vcpu.getRegisters().rax & 0xFFFF, 100)

        let second = try makeGuest(ram: ram)
        let list = try first.system.msrIndexList()
        try second.vcpu.setSpecialRegisters(try first.vcpu.getSpecialRegisters())
        try second.vcpu.setRegisters(try first.vcpu.getRegisters())
        try second.vcpu.setMSRs(try first.vcpu.getMSRs(list).map { ($0.index, $0.value) })
        try second.vcpu.setXSAVE(try first.vcpu.getXSAVE())
        try second.vcpu.setXCRs(try first.vcpu.getXCRs())
        try second.vcpu.setLAPIC(try first.vcpu.getLAPIC())
        try second.vcpu.setEvents(try first.vcpu.getEvents())
        try second.vcpu.setMPState(try first.vcpu.getMPState())
        try second.vcpu.setDebugRegisters(try first.vcpu.getDebugRegisters())
        for chip in VirtualMachine.IRQChip.allCases { try second.vm.setIRQChip(try first.vm.getIRQChip(chip)) }
        try second.vm.setPIT2(try first.vm.getPIT2())
        for _ in 1...100 { _ = try second.vcpu.enterGuest() }
        XCTAssertEqual(try second.vcpu.getRegisters().rax & 0xFFFF, 200, "the moved guest did not go on from 100")
    }

    func testMMIOExitDecodesAddressAndData() throws {
        let ram = memory()
        // mov ax, 0xFFFF; mov ds, ax; mov byte [0x10], 0x5A; hlt: the write goes to
        // FFFF:0010 = 0x100000, just past the 1 MiB of RAM, so it is MMIO.
        let code: [UInt8] = [0xB8, 0xFF, 0xFF, 0x8E, 0xD8, 0xC6, 0x06, 0x10, 0x00, 0x5A, 0xF4]
        for (i, b) in code.enumerated() { ram.storeBytes(of: b, toByteOffset: 0x8000 + i, as: UInt8.self) }
        let g = try makeGuest(ram: ram)
        guard case let .mmio(address, data, isWrite) = try g.vcpu.enterGuest() else { return XCTFail("no MMIO exit") }
        XCTAssertEqual(address, 0x10_0000)
        XCTAssertTrue(isWrite)
        XCTAssertEqual(data.count, 1)
        XCTAssertEqual(data[0], 0x5A)
    }
}
