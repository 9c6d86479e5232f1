import CKVM
import Glibc
import Host
import KVM

extension Machine {
    /// The loop of one vCPU thread: KVM_RUN, handle the exit, repeat until the VM ends.
    /// While the VM is paused the thread waits at `pauseGate`, outside KVM_RUN.
    func vcpuLoop(_ vcpu: VCPU, kick: VCPUKick) {
        // This thread must receive the kick signal; terminating signals stay blocked (the
        // mask is inherited from the thread that started the VM).
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, kick.signal)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)

        let run = vcpu.run
        while !hasEnded {
            if !pauseGate.open {
                pauseGate.pass(giveUp: { self.hasEnded })
                // `pause` set immediate_exit to get us here; `end` sets it after recording
                // the exit, which the loop condition sees, so clearing it cannot lose a stop.
                run.pointee.immediate_exit = 0
                continue
            }
            let exited: Bool
            do { exited = try vcpu.runOnce() } catch {
                end(.hostFailure("\(error)"))
                return
            }
            guard exited else { continue }
            switch run.pointee.exit_reason {
            case UInt32(KVM_EXIT_IO):
                portExitCount.add(1, ordering: .relaxed)
                handlePortIO(run)
            case UInt32(KVM_EXIT_MMIO):
                mmioExitCount.add(1, ordering: .relaxed)
                handleMMIO(run)
            case UInt32(KVM_EXIT_INTERNAL_ERROR):
                if let failure = completeFailedInstruction(vcpu) {
                    end(.crashed(failure))
                    return
                }
            case UInt32(KVM_EXIT_SHUTDOWN):
                // Triple fault. Linux resets this way only if the i8042 did not work, which
                // svm's does, so this is a crash.
                let panic = monitor.panicReason
                end(panic.map { MachineExit.panic($0) } ?? .crashed("vCPU \(vcpu.id) triple-faulted (CPU shutdown)"))
                return
            case UInt32(KVM_EXIT_SYSTEM_EVENT):
                switch run.pointee.system_event.type {
                case UInt32(KVM_SYSTEM_EVENT_RESET): guestReset()
                case UInt32(KVM_SYSTEM_EVENT_CRASH): end(.crashed("guest reported a crash"))
                default: end(.powerOff)
                }
                return
            case UInt32(KVM_EXIT_HLT):
                // Only without an in-kernel LAPIC, which svm always has.
                continue
            case UInt32(KVM_EXIT_FAIL_ENTRY):
                let reason = run.pointee.fail_entry.hardware_entry_failure_reason
                end(.hostFailure("KVM could not enter vCPU \(vcpu.id): hardware entry failure reason 0x\(String(reason, radix: 16))"))
                return
            case UInt32(KVM_EXIT_INTR):
                continue
            default:
                end(.hostFailure("vCPU \(vcpu.id): unexpected KVM exit reason \(run.pointee.exit_reason)"))
                return
            }
        }
    }

    /// Port I/O goes to the port bus a byte at a time: svm's port devices are byte-wide,
    /// and a wider access reaches consecutive ports, little-endian, as on an ISA bus.
    /// `count` > 1 for string instructions (rep outsb/insb): consecutive elements.
    @inline(__always)
    func handlePortIO(_ run: UnsafeMutablePointer<kvm_run>) {
        let io = run.pointee.io
        let data = UnsafeMutableRawPointer(ckvm_io_data(run)!)
        let total = Int(io.size) * Int(io.count)
        let bus = devices.portBus
        let isOut = io.direction == UInt8(KVM_EXIT_IO_OUT)
        for offset in 0..<total {
            let port = UInt64(io.port) &+ UInt64(offset % Int(io.size))
            let byte = UnsafeMutableRawBufferPointer(start: data + offset, count: 1)
            if isOut { bus.write(port, from: UnsafeRawBufferPointer(byte)) } else { bus.read(port, into: byte) }
        }
    }

    /// MMIO goes to the MMIO bus; an address no device owns reads as all ones.
    @inline(__always)
    func handleMMIO(_ run: UnsafeMutablePointer<kvm_run>) {
        let address = run.pointee.mmio.phys_addr
        let length = Int(min(run.pointee.mmio.len, 8))
        let isWrite = run.pointee.mmio.is_write != 0
        let bus = devices.mmioBus
        withUnsafeMutableBytes(of: &run.pointee.mmio.data) { raw in
            let data = UnsafeMutableRawBufferPointer(rebasing: raw[0..<length])
            if isWrite { bus.write(address, from: UnsafeRawBufferPointer(data)) } else { bus.read(address, into: data) }
        }
    }
}
