import CKVM
import InstructionFixup
import KVM
import Memory

/// Guest linear memory as the instruction fix-up reads it: through the vCPU's page tables
/// (KVM_TRANSLATE), then the bounds-checked guest RAM.
struct TranslatedGuestMemory: GuestLinearMemory {
    let vcpu: VCPU
    let memory: GuestMemory

    func readLinear(_ address: UInt64, size: Int) -> UInt64? {
        // An operand may straddle a page: translate each byte's page.
        var value: UInt64 = 0
        for i in 0..<size {
            guard let physical = vcpu.translate(address &+ UInt64(i)),
                  let byte = try? memory.read(UInt8.self, at: physical) else { return nil }
            value |= UInt64(byte) << (8 * UInt64(i))
        }
        return value
    }
}

extension Machine {
    static let maxInstructionLength = 15

    /// Handles KVM_EXIT_INTERNAL_ERROR. Emulation failures (suberror 1) on hosts that run
    /// guest kernel code through KVM's emulator are completed here; anything else ends
    /// the VM. Returns nil to resume, or the message to stop with.
    func completeFailedInstruction(_ vcpu: VCPU, suberror: UInt32) -> String? {
        guard suberror == VCPU.emulationFailure else {
            return "vCPU \(vcpu.id): KVM internal error, suberror \(suberror)"
        }
        do {
            var regs = try vcpu.getRegisters()
            let sregs = try vcpu.getSpecialRegisters()
            let bytes = failedInstructionBytes(vcpu, rip: regs.rip, csBase: sregs.cs.base)
            let longMode = sregs.efer & (1 << 10) != 0 && sregs.cs.l == 1
            let mode: CPUMode = longMode ? .long64 : (sregs.cs.db == 1 ? .protected32 : .real16)
            let bases = SegmentBases(es: sregs.es.base, cs: sregs.cs.base, ss: sregs.ss.base,
                                     ds: sregs.ds.base, fs: sregs.fs.base, gs: sregs.gs.base)
            let input = FixupRegisters(
                gpr: [regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi,
                      regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15],
                rip: regs.rip, rflags: regs.rflags)
            let outcome = InstructionFixup.complete(
                bytes: bytes, registers: input, mode: mode,
                memory: TranslatedGuestMemory(vcpu: vcpu, memory: memory), segmentBases: bases)
            let apply = { (out: FixupRegisters) in
                regs.rax = out.gpr[0]; regs.rcx = out.gpr[1]; regs.rdx = out.gpr[2]; regs.rbx = out.gpr[3]
                regs.rsp = out.gpr[4]; regs.rbp = out.gpr[5]; regs.rsi = out.gpr[6]; regs.rdi = out.gpr[7]
                regs.r8 = out.gpr[8]; regs.r9 = out.gpr[9]; regs.r10 = out.gpr[10]; regs.r11 = out.gpr[11]
                regs.r12 = out.gpr[12]; regs.r13 = out.gpr[13]; regs.r14 = out.gpr[14]; regs.r15 = out.gpr[15]
                regs.rip = out.rip
                regs.rflags = out.rflags
            }
            switch outcome {
            case let .resume(out):
                apply(out)
                try vcpu.setRegisters(regs)
            case let .resumeInjecting(out, vector):
                apply(out)
                try vcpu.setRegisters(regs)
                try vcpu.injectException(vector: vector)
            case let .unsupported(message):
                return "vCPU \(vcpu.id): \(message)"
            }
            fixupCount.add(1, ordering: .relaxed)
            return nil
        } catch {
            return "vCPU \(vcpu.id): completing an instruction KVM could not emulate: \(error)"
        }
    }

    /// The instruction bytes: from KVM's emulation-failure record when it provides them,
    /// otherwise read from guest memory at CS.base + RIP.
    func failedInstructionBytes(_ vcpu: VCPU, rip: UInt64, csBase: UInt64) -> [UInt8] {
        if let reported = vcpu.emulationFailureInstruction(), !reported.isEmpty {
            return Array(reported.prefix(Self.maxInstructionLength))
        }
        var bytes: [UInt8] = []
        let linear = csBase &+ rip
        for i in 0..<Self.maxInstructionLength {
            guard let p = vcpu.translate(linear &+ UInt64(i)),
                  let b = try? memory.read(UInt8.self, at: p) else { break }
            bytes.append(b)
        }
        return bytes
    }
}
