import CKVM
import Glibc
import Host

/// Every piece of a vCPU's state that KVM lets a VMM read and write, for snapshots and for
/// moving a guest to another VM. Each getter has its setter; the round trips are tested on
/// real KVM (Tests/KVMTests).
extension VCPU {
    public func getFPU() throws(HostError) -> kvm_fpu {
        var f = kvm_fpu()
        _ = try check("KVM_GET_FPU") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_FPU, &f) }
        return f
    }

    public func getXSAVE() throws(HostError) -> kvm_xsave {
        var x = kvm_xsave()
        _ = try check("KVM_GET_XSAVE") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_XSAVE, &x) }
        return x
    }

    public func setXSAVE(_ xsave: kvm_xsave) throws(HostError) {
        var x = xsave
        _ = try check("KVM_SET_XSAVE") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_XSAVE, &x) }
    }

    public func getXCRs() throws(HostError) -> kvm_xcrs {
        var x = kvm_xcrs()
        _ = try check("KVM_GET_XCRS") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_XCRS, &x) }
        return x
    }

    public func setXCRs(_ xcrs: kvm_xcrs) throws(HostError) {
        var x = xcrs
        _ = try check("KVM_SET_XCRS") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_XCRS, &x) }
    }

    public func getMPState() throws(HostError) -> kvm_mp_state {
        var m = kvm_mp_state()
        _ = try check("KVM_GET_MP_STATE") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_MP_STATE, &m) }
        return m
    }

    public func setMPState(_ state: kvm_mp_state) throws(HostError) {
        var m = state
        _ = try check("KVM_SET_MP_STATE") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_MP_STATE, &m) }
    }

    public func getDebugRegisters() throws(HostError) -> kvm_debugregs {
        var d = kvm_debugregs()
        _ = try check("KVM_GET_DEBUGREGS") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_DEBUGREGS, &d) }
        return d
    }

    public func setDebugRegisters(_ regs: kvm_debugregs) throws(HostError) {
        var d = regs
        _ = try check("KVM_SET_DEBUGREGS") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_DEBUGREGS, &d) }
    }

    public func getLAPIC() throws(HostError) -> LAPICState {
        var l = kvm_lapic_state()
        _ = try check("KVM_GET_LAPIC") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_LAPIC, &l) }
        return LAPICState(raw: l)
    }

    public func setLAPIC(_ state: LAPICState) throws(HostError) {
        var l = state.raw
        _ = try check("KVM_SET_LAPIC") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_LAPIC, &l) }
    }

    /// Reads the MSRs at `indices` (KVMSystem.msrIndexList() lists what KVM saves); returns
    /// the values KVM gave, in order. KVM stops at the first MSR it cannot read, so fewer
    /// than asked means the next one is not readable.
    public func getMSRs(_ indices: [UInt32]) throws(HostError) -> [(index: UInt32, value: UInt64)] {
        let n = UInt32(indices.count)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: ckvm_msrs_size(n), alignment: 8)
        defer { buffer.deallocate() }
        memset(buffer, 0, ckvm_msrs_size(n))
        buffer.bindMemory(to: kvm_msrs.self, capacity: 1).pointee.nmsrs = n
        let entries = (buffer + MemoryLayout<kvm_msrs>.size).bindMemory(to: kvm_msr_entry.self, capacity: indices.count)
        for (i, index) in indices.enumerated() { entries[i] = kvm_msr_entry(index: index, reserved: 0, data: 0) }
        let read = Int(try check("KVM_GET_MSRS") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_MSRS, buffer) })
        return (0..<read).map { (entries[$0].index, entries[$0].data) }
    }
}

/// The LAPIC's 1 KiB register page as KVM exchanges it, with typed access to its 32-bit
/// registers (offsets as in the Intel SDM: 0x80 TPR, 0x350 LINT0, 0x360 LINT1, …).
public struct LAPICState {
    public var raw: kvm_lapic_state

    public static let taskPriority = 0x80
    public static let lint0 = 0x350
    public static let lint1 = 0x360

    public subscript(register offset: Int) -> UInt32 {
        get {
            precondition(offset >= 0 && offset + 4 <= 1024 && offset % 4 == 0, "LAPIC register offset \(offset)")
            return withUnsafeBytes(of: raw.regs) { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
        }
        set {
            precondition(offset >= 0 && offset + 4 <= 1024 && offset % 4 == 0, "LAPIC register offset \(offset)")
            withUnsafeMutableBytes(of: &raw.regs) { $0.storeBytes(of: newValue, toByteOffset: offset, as: UInt32.self) }
        }
    }

    /// Sets the delivery mode (bits 8-10) of an LVT entry: 7 ExtINT, 4 NMI.
    public mutating func setDeliveryMode(_ offset: Int, _ mode: UInt32) {
        self[register: offset] = (self[register: offset] & ~0x700) | (mode << 8)
    }
}

/// The VM-wide state: the in-kernel interrupt controllers, the PIT and the clock.
extension VirtualMachine {
    /// `KVM_IRQCHIP_PIC_MASTER`, `_PIC_SLAVE`, `_IOAPIC`.
    public enum IRQChip: UInt32, CaseIterable {
        case picMaster = 0
        case picSlave = 1
        case ioapic = 2
    }

    public func getIRQChip(_ chip: IRQChip) throws(HostError) -> kvm_irqchip {
        var c = kvm_irqchip()
        c.chip_id = chip.rawValue
        _ = try check("KVM_GET_IRQCHIP") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_IRQCHIP, &c) }
        return c
    }

    public func setIRQChip(_ state: kvm_irqchip) throws(HostError) {
        var c = state
        _ = try check("KVM_SET_IRQCHIP") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_IRQCHIP, &c) }
    }

    public func getPIT2() throws(HostError) -> kvm_pit_state2 {
        var p = kvm_pit_state2()
        _ = try check("KVM_GET_PIT2") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_PIT2, &p) }
        return p
    }

    public func setPIT2(_ state: kvm_pit_state2) throws(HostError) {
        var p = state
        _ = try check("KVM_SET_PIT2") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_PIT2, &p) }
    }

    public func getClock() throws(HostError) -> kvm_clock_data {
        var c = kvm_clock_data()
        _ = try check("KVM_GET_CLOCK") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_CLOCK, &c) }
        return c
    }

    /// Sets the guest's kvmclock; only `clock` (and `flags` 0) is used.
    public func setClock(_ data: kvm_clock_data) throws(HostError) {
        var c = kvm_clock_data()
        c.clock = data.clock
        _ = try check("KVM_SET_CLOCK") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_CLOCK, &c) }
    }
}

extension KVMSystem {
    /// The MSRs KVM saves and restores for a vCPU (KVM_GET_MSR_INDEX_LIST).
    public func msrIndexList() throws(HostError) -> [UInt32] {
        var capacity: UInt32 = 256
        while true {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: ckvm_msr_list_size(capacity), alignment: 8)
            defer { buffer.deallocate() }
            buffer.bindMemory(to: kvm_msr_list.self, capacity: 1).pointee.nmsrs = capacity
            let r = ckvm_ioctl_ptr(fd, CKVM_KVM_GET_MSR_INDEX_LIST, buffer)
            let count = buffer.bindMemory(to: kvm_msr_list.self, capacity: 1).pointee.nmsrs
            if r < 0 {
                // E2BIG: `nmsrs` now says how many there are.
                guard errno == E2BIG, count > capacity else { throw .last("KVM_GET_MSR_INDEX_LIST") }
                capacity = count
                continue
            }
            let indices = (buffer + MemoryLayout<kvm_msr_list>.size).bindMemory(to: UInt32.self, capacity: Int(count))
            return (0..<Int(count)).map { indices[$0] }
        }
    }
}
