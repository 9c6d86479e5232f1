import CKVM
import KVM
import Snapshot

/// How the KVM state of vCPUs and of the VM is laid out in a snapshot's state file: the
/// kernel structures as they are (their sizes checked on reading), MSRs as index/value pairs.
enum KVMStateCoding {
    static func put(_ s: VCPUSnapshot, to w: inout StateWriter) {
        w.putRaw(s.mpState)
        w.putRaw(s.regs)
        w.putRaw(s.sregs)
        w.putRaw(s.xsave)
        w.putRaw(s.xcrs)
        w.putRaw(s.debugRegisters)
        w.putRaw(s.lapic)
        w.putRaw(s.events)
        w.put(UInt32(s.msrs.count))
        for m in s.msrs {
            w.put(m.index)
            w.put(m.value)
        }
    }

    static func vcpu(from r: inout StateReader) throws(SnapshotError) -> VCPUSnapshot {
        let mp = try r.getRaw(kvm_mp_state.self, "MP state")
        let regs = try r.getRaw(kvm_regs.self, "registers")
        let sregs = try r.getRaw(kvm_sregs.self, "special registers")
        let xsave = try r.getRaw(kvm_xsave.self, "XSAVE area")
        let xcrs = try r.getRaw(kvm_xcrs.self, "XCRs")
        let debug = try r.getRaw(kvm_debugregs.self, "debug registers")
        let lapic = try r.getRaw(kvm_lapic_state.self, "LAPIC")
        let events = try r.getRaw(kvm_vcpu_events.self, "vCPU events")
        let count = try r.get(UInt32.self, "MSR count")
        guard count <= 4096 else { throw .malformed("\(count) MSRs") }
        var msrs: [(index: UInt32, value: UInt64)] = []
        for _ in 0..<count {
            let index = try r.get(UInt32.self, "MSR index")
            msrs.append((index, try r.get(UInt64.self, "MSR value")))
        }
        return VCPUSnapshot(mpState: mp, regs: regs, sregs: sregs, xsave: xsave, xcrs: xcrs, debugRegisters: debug,
                            lapic: lapic, msrs: msrs, events: events)
    }

    static func put(_ s: VMSnapshot, to w: inout StateWriter) {
        w.putRaw(s.picMaster)
        w.putRaw(s.picSlave)
        w.putRaw(s.ioapic)
        w.putRaw(s.pit)
        w.putRaw(s.clock)
    }

    static func vm(from r: inout StateReader) throws(SnapshotError) -> VMSnapshot {
        VMSnapshot(picMaster: try r.getRaw(kvm_irqchip.self, "PIC master"),
                   picSlave: try r.getRaw(kvm_irqchip.self, "PIC slave"),
                   ioapic: try r.getRaw(kvm_irqchip.self, "IOAPIC"),
                   pit: try r.getRaw(kvm_pit_state2.self, "PIT"),
                   clock: try r.getRaw(kvm_clock_data.self, "clock"))
    }
}

/// The fingerprint of what the guest was given that must be the same on restore: the CPUID
/// table of every vCPU (after svm's own changes) and the MSRs KVM saves.
enum CPUFeatureFingerprint {
    static func of(_ setup: CPUIDSetup, msrIndices: [UInt32]) -> String {
        var c = Checksum()
        for id in 0..<UInt32(setup.cpuCount) {
            for var e in setup.entries(forVCPU: id) {
                e.padding = (0, 0, 0)
                withUnsafeBytes(of: e) { c.add($0) }
            }
        }
        for i in msrIndices { c.add(UInt64(i)) }
        return c.hex
    }
}
