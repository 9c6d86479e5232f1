import CKVM
import Host

/// Why KVM_RUN returned, decoded from the shared `kvm_run` page in place: no copy of the
/// page, no allocation. Pointers into the page (port I/O data, MMIO data) are valid until
/// the next KVM_RUN on the same vCPU, which is the only time the exit is handled.
public enum VCPUExit {
    /// `in`/`out` (and their string forms: `count` elements of `size` bytes at `data`).
    case portIO(port: UInt16, size: Int, count: Int, isOut: Bool, data: UnsafeMutableRawPointer)
    /// A guest access to an address without RAM: `data` holds the bytes of a write, and
    /// receives those of a read.
    case mmio(address: UInt64, data: UnsafeMutableRawBufferPointer, isWrite: Bool)
    /// KVM could not handle something itself; `suberror` 1 is an emulation failure.
    case internalError(suberror: UInt32)
    /// The vCPU shut down (a triple fault).
    case shutdown
    /// A reset, crash or power-off request (`KVM_SYSTEM_EVENT_*`).
    case systemEvent(type: UInt32)
    /// `hlt` (only without an in-kernel LAPIC).
    case halt
    /// The hardware refused to enter the guest.
    case failedEntry(reason: UInt64)
    /// A signal or `immediate_exit` (KVM_RUN returned EINTR), or KVM_EXIT_INTR.
    case interrupted
    /// An exit svm does not expect.
    case unknown(reason: UInt32)

    @inline(__always)
    static func decode(_ run: UnsafeMutablePointer<kvm_run>) -> VCPUExit {
        switch run.pointee.exit_reason {
        case UInt32(KVM_EXIT_IO):
            let io = run.pointee.io
            return .portIO(port: io.port, size: Int(io.size), count: Int(io.count),
                           isOut: io.direction == UInt8(KVM_EXIT_IO_OUT),
                           data: UnsafeMutableRawPointer(ckvm_io_data(run)!))
        case UInt32(KVM_EXIT_MMIO):
            let length = Int(min(run.pointee.mmio.len, 8))
            // The data array sits inside the page that `run` points to; its address is stable.
            let base = UnsafeMutableRawPointer(run) + ckvm_mmio_data_offset()
            return .mmio(address: run.pointee.mmio.phys_addr,
                         data: UnsafeMutableRawBufferPointer(start: base, count: length),
                         isWrite: run.pointee.mmio.is_write != 0)
        case UInt32(KVM_EXIT_INTERNAL_ERROR): return .internalError(suberror: run.pointee.internal.suberror)
        case UInt32(KVM_EXIT_SHUTDOWN): return .shutdown
        case UInt32(KVM_EXIT_SYSTEM_EVENT): return .systemEvent(type: run.pointee.system_event.type)
        case UInt32(KVM_EXIT_HLT): return .halt
        case UInt32(KVM_EXIT_FAIL_ENTRY): return .failedEntry(reason: run.pointee.fail_entry.hardware_entry_failure_reason)
        case UInt32(KVM_EXIT_INTR): return .interrupted
        default: return .unknown(reason: run.pointee.exit_reason)
        }
    }
}

extension VCPU {
    /// One KVM_RUN, and why it returned.
    @inline(__always)
    public func enterGuest() throws(HostError) -> VCPUExit {
        guard try runOnce() else { return .interrupted }
        return VCPUExit.decode(self.run)
    }

    /// After `.internalError` with an emulation failure: the bytes of the instruction KVM
    /// could not emulate, when KVM reports them (KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES).
    public func emulationFailureInstruction() -> [UInt8]? {
        let failure = self.run.pointee.emulation_failure
        guard failure.ndata >= 2,
              failure.flags & UInt64(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) != 0 else { return nil }
        let count = min(Int(failure.insn_size), 15)
        return withUnsafeBytes(of: failure.insn_bytes) { Array($0.prefix(count)) }
    }

    /// Undoes `requestStop` (a paused vCPU about to run again).
    public func clearStopRequest() {
        self.run.pointee.immediate_exit = 0
    }

    /// The system event types of `.systemEvent`.
    public static let systemEventReset = UInt32(KVM_SYSTEM_EVENT_RESET)
    public static let systemEventCrash = UInt32(KVM_SYSTEM_EVENT_CRASH)
    /// Suberror of an emulation failure.
    public static let emulationFailure = UInt32(KVM_INTERNAL_ERROR_EMULATION)
}
