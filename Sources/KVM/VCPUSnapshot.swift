import CKVM
import Glibc
import Host

/// Everything KVM holds for one vCPU, read while the vCPU is outside KVM_RUN, and written
/// back (into the same or a new VM's vCPU) in the order KVM needs.
public struct VCPUSnapshot {
    public var mpState: kvm_mp_state
    public var regs: kvm_regs
    public var sregs: kvm_sregs
    public var xsave: kvm_xsave
    public var xcrs: kvm_xcrs
    public var debugRegisters: kvm_debugregs
    public var lapic: kvm_lapic_state
    public var msrs: [(index: UInt32, value: UInt64)]
    public var events: kvm_vcpu_events

    public init(mpState: kvm_mp_state, regs: kvm_regs, sregs: kvm_sregs, xsave: kvm_xsave, xcrs: kvm_xcrs,
                debugRegisters: kvm_debugregs, lapic: kvm_lapic_state, msrs: [(index: UInt32, value: UInt64)],
                events: kvm_vcpu_events) {
        self.mpState = mpState
        self.regs = regs
        self.sregs = sregs
        self.xsave = xsave
        self.xcrs = xcrs
        self.debugRegisters = debugRegisters
        self.lapic = lapic
        self.msrs = msrs
        self.events = events
    }
}

extension VCPU {
    /// Reads the whole state. `msrIndices` is KVM's list (`KVMSystem.msrIndexList()`); MSRs
    /// KVM lists but cannot read on this host are left out (KVM_GET_MSRS stops at the first
    /// one it refuses, so the read goes on after it).
    public func captureState(msrIndices: [UInt32]) throws(HostError) -> VCPUSnapshot {
        // Events and MP state first: they describe what was in flight at the pause.
        let events = try getEvents()
        let mp = try getMPState()
        var msrs: [(index: UInt32, value: UInt64)] = []
        var rest = msrIndices[...]
        while !rest.isEmpty {
            let read = try getMSRs(Array(rest))
            msrs += read
            rest = rest.dropFirst(read.count + 1)   // skip the unreadable one
        }
        return VCPUSnapshot(mpState: mp, regs: try getRegisters(), sregs: try getSpecialRegisters(),
                            xsave: try getXSAVE(), xcrs: try getXCRs(), debugRegisters: try getDebugRegisters(),
                            lapic: try getLAPIC().raw, msrs: msrs, events: events)
    }

    /// Writes a captured state (CPUID must already be set). The order follows what KVM
    /// checks: special registers (CR0/CR4/EFER) before XSAVE and the MSRs that depend on
    /// them, the LAPIC before the events that may name an interrupt, events last.
    public func restoreState(_ s: VCPUSnapshot) throws(HostError) {
        try setMPState(s.mpState)
        try setRegisters(s.regs)
        try setSpecialRegisters(s.sregs)
        try setXSAVE(s.xsave)
        try setXCRs(s.xcrs)
        try setDebugRegisters(s.debugRegisters)
        try setLAPIC(LAPICState(raw: s.lapic))
        let written = try setMSRs(s.msrs)
        guard written == s.msrs.count else {
            throw HostError("KVM_SET_MSRS: MSR 0x\(String(s.msrs[written].index, radix: 16)) refused", errno: EINVAL)
        }
        var events = s.events
        // Restore the NMI and SIPI fields and the shadow state too (KVM ignores them otherwise).
        events.flags = UInt32(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR
                              | KVM_VCPUEVENT_VALID_SHADOW)
        try setEvents(events)
    }
}

/// The VM-wide state KVM keeps: PIC master and slave, IOAPIC, PIT and the guest clock.
public struct VMSnapshot {
    public var picMaster: kvm_irqchip
    public var picSlave: kvm_irqchip
    public var ioapic: kvm_irqchip
    public var pit: kvm_pit_state2
    public var clock: kvm_clock_data

    public init(picMaster: kvm_irqchip, picSlave: kvm_irqchip, ioapic: kvm_irqchip, pit: kvm_pit_state2, clock: kvm_clock_data) {
        self.picMaster = picMaster
        self.picSlave = picSlave
        self.ioapic = ioapic
        self.pit = pit
        self.clock = clock
    }
}

extension VirtualMachine {
    public func captureState() throws(HostError) -> VMSnapshot {
        VMSnapshot(picMaster: try getIRQChip(.picMaster), picSlave: try getIRQChip(.picSlave),
                   ioapic: try getIRQChip(.ioapic), pit: try getPIT2(), clock: try getClock())
    }

    /// Writes a captured state. The clock is set to the saved value: the guest's kvmclock
    /// continues from where it was saved, never earlier.
    public func restoreState(_ s: VMSnapshot) throws(HostError) {
        try setIRQChip(s.picMaster)
        try setIRQChip(s.picSlave)
        try setIRQChip(s.ioapic)
        try setPIT2(s.pit)
        try setClock(s.clock)
    }
}
