import CKVM
import Glibc
import Host
import KVM

extension Machine {
    /// Runs the VM until it ends and returns how. Blocks the calling thread, which
    /// supervises: terminating signals, the timeout, a panic that never resets.
    /// Call `Signals.blockTerminatingSignals()` first if svm should own SIGINT/SIGTERM.
    public func run(signalFD: Int32? = nil) -> MachineExit {
        Signals.installKickHandler()
        var threads: [HostThread] = []
        for vcpu in vcpus {
            let t = HostThread(name: "svm-vcpu\(vcpu.id)") { [self] in self.vcpuLoop(vcpu) }
            do { try t.start() } catch {
                stop(.hostFailure("\(error)"))
                break
            }
            threads.append(t)
        }
        let input = startConsoleInput()
        var eventLoop: DeviceEventLoop?
        if !virtio.devices.isEmpty {
            do { eventLoop = try DeviceEventLoop(devices: virtio) } catch { stop(.hostFailure("\(error)")) }
        }

        let start = Machine.monotonicSeconds()
        let deadline = config.timeout.map { start + $0 }
        var fds = [pollfd(fd: stopEvent.fd, events: Int16(POLLIN), revents: 0)]
        if let s = signalFD { fds.append(pollfd(fd: s, events: Int16(POLLIN), revents: 0)) }

        while !isStopping {
            var waitMs: Int32 = 500
            let now = Machine.monotonicSeconds()
            if let d = deadline {
                if now >= d { stop(.timedOut); break }
                waitMs = Int32(min(500, max(1, (d - now) * 1000)))
            }
            // A panic line with no reset after it (panic=N with N > 0, or stuck CPUs).
            if let (reason, at) = consoleState.withLock({ s in s.panicSeenAt.map { (s.panicReason ?? "", $0) } }),
               now - at > Machine.panicGraceSeconds {
                stop(.panic(reason))
                break
            }
            _ = poll(&fds, nfds_t(fds.count), waitMs)
            if fds.count > 1, fds[1].revents != 0, let signo = Signals.readSignal(from: fds[1].fd) {
                stop(.interrupted(signal: signo))
            }
        }

        // Kick every vCPU out of KVM_RUN and wait for it.
        for vcpu in vcpus { vcpu.requestStop() }
        for t in threads { t.signal(Signals.vcpuKick) }
        for t in threads { t.join() }
        input?.stop()
        eventLoop?.stop()
        return exitState.withLock { $0 } ?? .hostFailure("VM stopped without a reason")
    }

    static let panicGraceSeconds = 10.0

    /// The loop of one vCPU thread: KVM_RUN, handle the exit, repeat until stopped.
    func vcpuLoop(_ vcpu: VCPU) {
        // This thread must receive the kick signal; terminating signals stay blocked.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, Signals.vcpuKick)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)

        let run = vcpu.run
        while !isStopping {
            let exited: Bool
            do { exited = try vcpu.runOnce() } catch {
                stop(.hostFailure("\(error)"))
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
                    stop(.crashed(failure))
                    return
                }
            case UInt32(KVM_EXIT_SHUTDOWN):
                // Triple fault. Linux resets this way only if the i8042 did not work, which
                // svm's does, so this is a crash.
                let panic = consoleState.withLock { $0.panicReason }
                stop(panic.map { MachineExit.panic($0) } ?? .crashed("vCPU \(vcpu.id) triple-faulted (CPU shutdown)"))
                return
            case UInt32(KVM_EXIT_SYSTEM_EVENT):
                switch run.pointee.system_event.type {
                case UInt32(KVM_SYSTEM_EVENT_RESET): guestReset()
                case UInt32(KVM_SYSTEM_EVENT_CRASH): stop(.crashed("guest reported a crash"))
                default: stop(.powerOff)
                }
                return
            case UInt32(KVM_EXIT_HLT):
                // Only without an in-kernel LAPIC, which svm always has.
                continue
            case UInt32(KVM_EXIT_FAIL_ENTRY):
                let reason = run.pointee.fail_entry.hardware_entry_failure_reason
                stop(.hostFailure("KVM could not enter vCPU \(vcpu.id): hardware entry failure reason 0x\(String(reason, radix: 16))"))
                return
            case UInt32(KVM_EXIT_INTR):
                continue
            default:
                stop(.hostFailure("vCPU \(vcpu.id): unexpected KVM exit reason \(run.pointee.exit_reason)"))
                return
            }
        }
    }

    @inline(__always)
    func handlePortIO(_ run: UnsafeMutablePointer<kvm_run>) {
        let io = run.pointee.io
        let data = ckvm_io_data(run)!
        let size = Int(io.size)
        var offset = 0
        // `count` > 1 for string instructions (rep outsb/insb): consecutive elements.
        for _ in 0..<Int(io.count) {
            for byte in 0..<size {
                // Multi-byte accesses to byte-wide devices: consecutive ports, little-endian.
                let port = io.port &+ UInt16(byte)
                if io.direction == UInt8(KVM_EXIT_IO_OUT) {
                    ports.write(port: port, value: data[offset])
                } else {
                    data[offset] = ports.read(port: port)
                }
                offset += 1
            }
        }
    }

    /// virtio-mmio windows go to their transports; anything else reads as all ones and
    /// drops writes.
    @inline(__always)
    func handleMMIO(_ run: UnsafeMutablePointer<kvm_run>) {
        let address = run.pointee.mmio.phys_addr
        let length = Int(min(run.pointee.mmio.len, 8))
        let isWrite = run.pointee.mmio.is_write != 0
        let virtio = self.virtio
        withUnsafeMutableBytes(of: &run.pointee.mmio.data) { raw in
            let data = UnsafeMutableRawBufferPointer(rebasing: raw[0..<length])
            if !virtio.handle(address: address, data: data, isWrite: isWrite), !isWrite {
                _ = data.initializeMemory(as: UInt8.self, repeating: 0xFF)
            }
        }
    }
}
