import Host
import Boot
import CKVM
import KVM

/// Puts the boot vCPU into the state a `BootEntry` asks for. Application processors are
/// left alone: with the in-kernel LAPIC they wait for INIT/SIPI from the guest.
enum VCPUSetup {
    static let msrMiscEnable: UInt32 = 0x1A0

    /// Registers every vCPU needs: sane FPU, fast strings, LINT0 = ExtINT and LINT1 = NMI
    /// (the "virtual wire" the MP table announces).
    static func configureCommon(_ vcpu: VCPU) throws(HostError) {
        var fpu = kvm_fpu()
        fpu.fcw = 0x37F
        fpu.mxcsr = 0x1F80
        try vcpu.setFPU(fpu)
        try vcpu.setMSRs([(msrMiscEnable, 1)])
        try configureLAPIC(vcpu)
    }

    static func configureLAPIC(_ vcpu: VCPU) throws(HostError) {
        var lapic = try vcpu.getLAPIC()
        lapic.setDeliveryMode(LAPICState.lint0, 7)  // ExtINT
        lapic.setDeliveryMode(LAPICState.lint1, 4)  // NMI
        try vcpu.setLAPIC(lapic)
    }

    static func enter(_ vcpu: VCPU, at entry: BootEntry) throws(HostError) {
        var s = try vcpu.getSpecialRegisters()
        let long = { if case .long64 = entry.mode { return true } else { return false } }()

        var code = kvm_segment()
        code.base = 0
        code.limit = 0xFFFF_FFFF
        code.selector = BootEntry.codeSelector
        code.type = 0xB  // execute/read, accessed
        code.present = 1
        code.dpl = 0
        code.s = 1
        code.g = 1
        code.l = long ? 1 : 0
        code.db = long ? 0 : 1

        var data = code
        data.selector = BootEntry.dataSelector
        data.type = 0x3  // read/write, accessed
        data.l = 0
        data.db = 1

        s.cs = code
        s.ds = data
        s.es = data
        s.fs = data
        s.gs = data
        s.ss = data

        // A busy 64-bit TSS in TR keeps VM entry's checks happy; the guest loads its own.
        var tr = kvm_segment()
        tr.limit = 0x67
        tr.type = 0xB
        tr.present = 1
        s.tr = tr

        s.gdt.base = entry.gdtBase
        s.gdt.limit = entry.gdtLimit
        s.idt.base = 0
        s.idt.limit = 0

        let cr0PE: UInt64 = 1, cr0ET: UInt64 = 1 << 4, cr0PG: UInt64 = 1 << 31
        let cr4PAE: UInt64 = 1 << 5
        let eferLME: UInt64 = 1 << 8, eferLMA: UInt64 = 1 << 10
        switch entry.mode {
        case let .long64(pml4):
            s.cr3 = pml4
            s.cr4 = cr4PAE
            s.cr0 = cr0PE | cr0ET | cr0PG
            s.efer = eferLME | eferLMA
        case .protected32:
            s.cr0 = cr0PE | cr0ET
            s.cr4 = 0
            s.efer = 0
        }
        try vcpu.setSpecialRegisters(s)

        var r = kvm_regs()
        r.rip = entry.rip
        r.rsi = entry.rsi
        r.rbx = entry.rbx
        r.rsp = entry.rsp
        r.rbp = entry.rsp
        r.rflags = 0x2
        try vcpu.setRegisters(r)
    }

    /// 16-bit real mode at 0000:`address` with flat 64 KiB segments, as after a reset
    /// but without the BIOS.
    static func enterRealMode(_ vcpu: VCPU, at address: UInt64) throws(HostError) {
        var s = try vcpu.getSpecialRegisters()
        for keyPath in [\kvm_sregs.cs, \.ds, \.es, \.fs, \.gs, \.ss] {
            s[keyPath: keyPath].base = 0
            s[keyPath: keyPath].selector = 0
            s[keyPath: keyPath].limit = 0xFFFF
        }
        s.cr0 &= ~1
        try vcpu.setSpecialRegisters(s)
        var r = kvm_regs()
        r.rip = address
        r.rsp = 0x7000
        r.rflags = 0x2
        try vcpu.setRegisters(r)
    }
}
