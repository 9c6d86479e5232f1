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

        while !hasEnded {
            if !pauseGate.open {
                // The exit just handled may be an I/O read whose value KVM puts into the
                // guest's registers on the next KVM_RUN. With immediate_exit still set,
                // KVM_RUN does exactly that and returns at once, so the registers a
                // snapshot reads while paused hold the whole instruction's effect.
                _ = try? vcpu.runOnce()
                pauseGate.pass(giveUp: { self.hasEnded })
                // `pause` set immediate_exit to get us here; `end` sets it after recording
                // the exit, which the loop condition sees, so clearing it cannot lose a stop.
                vcpu.clearStopRequest()
                continue
            }
            let exit: VCPUExit
            do { exit = try vcpu.enterGuest() } catch {
                end(.hostFailure("\(error)"))
                return
            }
            switch exit {
            case let .portIO(port, size, count, isOut, data):
                portExitCount.add(1, ordering: .relaxed)
                handlePortIO(port: port, size: size, count: count, isOut: isOut, data: data)
            case let .mmio(address, data, isWrite):
                mmioExitCount.add(1, ordering: .relaxed)
                if isWrite { devices.mmioBus.write(address, from: UnsafeRawBufferPointer(data)) }
                else { devices.mmioBus.read(address, into: data) }
            case let .internalError(suberror):
                if let failure = completeFailedInstruction(vcpu, suberror: suberror) {
                    end(.crashed(failure))
                    return
                }
            case .shutdown:
                // Triple fault. Linux resets this way only if the i8042 did not work, which
                // svm's does, so this is a crash.
                let panic = monitor.panicReason
                end(panic.map { MachineExit.panic($0) } ?? .crashed("vCPU \(vcpu.id) triple-faulted (CPU shutdown)"))
                return
            case let .systemEvent(type):
                switch type {
                case VCPU.systemEventReset: guestReset()
                case VCPU.systemEventCrash: end(.crashed("guest reported a crash"))
                default: end(.powerOff)
                }
                return
            case .halt, .interrupted:
                // hlt exits only without an in-kernel LAPIC, which svm always has.
                continue
            case let .failedEntry(reason):
                end(.hostFailure("KVM could not enter vCPU \(vcpu.id): hardware entry failure reason 0x\(String(reason, radix: 16))"))
                return
            case let .unknown(reason):
                end(.hostFailure("vCPU \(vcpu.id): unexpected KVM exit reason \(reason)"))
                return
            }
        }
    }

    /// Port I/O goes to the port bus a byte at a time: svm's port devices are byte-wide,
    /// and a wider access reaches consecutive ports, little-endian, as on an ISA bus.
    /// `count` > 1 for string instructions (rep outsb/insb): consecutive elements.
    @inline(__always)
    func handlePortIO(port: UInt16, size: Int, count: Int, isOut: Bool, data: UnsafeMutableRawPointer) {
        let bus = devices.portBus
        for offset in 0..<(size * count) {
            let address = UInt64(port) &+ UInt64(offset % size)
            let byte = UnsafeMutableRawBufferPointer(start: data + offset, count: 1)
            if isOut { bus.write(address, from: UnsafeRawBufferPointer(byte)) } else { bus.read(address, into: byte) }
        }
    }
}
