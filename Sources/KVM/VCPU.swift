import Host
import CKVM
import Glibc

/// One virtual CPU: its fd, the shared `kvm_run` page (read in place, never copied),
/// and register access.
///
/// Sendable invariant: a VCPU is driven by one thread (its own); other threads only set
/// `immediate_exit` through `requestStop()` and signal the thread, which KVM allows.
public final class VCPU: @unchecked Sendable {
    public let id: UInt32
    public let fd: Int32
    public let run: UnsafeMutablePointer<kvm_run>
    let runSize: Int

    init(id: UInt32, fd: Int32, run: UnsafeMutableRawPointer, runSize: Int) {
        self.id = id
        self.fd = fd
        self.run = run.bindMemory(to: kvm_run.self, capacity: 1)
        self.runSize = runSize
    }

    deinit {
        munmap(UnsafeMutableRawPointer(run), runSize)
        close(fd)
    }

    /// KVM_RUN. Returns false when interrupted by a signal (EINTR) or by `immediate_exit`,
    /// true when `run.pointee.exit_reason` holds an exit to handle.
    @inline(__always)
    public func runOnce() throws(HostError) -> Bool {
        if ckvm_ioctl(fd, CKVM_KVM_RUN, UInt(0)) == 0 { return true }
        let e = errno
        if e == EINTR || e == EAGAIN { return false }
        throw HostError("KVM_RUN on vCPU \(id)", errno: e)
    }

    /// Makes the next (or current, after a signal) KVM_RUN return at once.
    public func requestStop() {
        run.pointee.immediate_exit = 1
    }

    public func getRegisters() throws(HostError) -> kvm_regs {
        var r = kvm_regs()
        _ = try check("KVM_GET_REGS") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_REGS, &r) }
        return r
    }

    public func setRegisters(_ regs: kvm_regs) throws(HostError) {
        var r = regs
        _ = try check("KVM_SET_REGS") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_REGS, &r) }
    }

    public func getSpecialRegisters() throws(HostError) -> kvm_sregs {
        var s = kvm_sregs()
        _ = try check("KVM_GET_SREGS") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_SREGS, &s) }
        return s
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(HostError) {
        var s = sregs
        _ = try check("KVM_SET_SREGS") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_SREGS, &s) }
    }

    public func setFPU(_ fpu: kvm_fpu) throws(HostError) {
        var f = fpu
        _ = try check("KVM_SET_FPU") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_FPU, &f) }
    }

    public func setCPUID(_ entries: [kvm_cpuid_entry2]) throws(HostError) {
        let n = UInt32(entries.count)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: ckvm_cpuid2_size(n), alignment: 8)
        defer { buffer.deallocate() }
        memset(buffer, 0, ckvm_cpuid2_size(n))
        buffer.bindMemory(to: kvm_cpuid2.self, capacity: 1).pointee.nent = n
        let dst = (buffer + MemoryLayout<kvm_cpuid2>.size).bindMemory(to: kvm_cpuid_entry2.self, capacity: entries.count)
        for (i, e) in entries.enumerated() { dst[i] = e }
        _ = try check("KVM_SET_CPUID2") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_CPUID2, buffer) }
    }

    /// Writes MSRs; returns how many KVM accepted (it stops at the first it refuses).
    @discardableResult
    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(HostError) -> Int {
        let n = UInt32(msrs.count)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: ckvm_msrs_size(n), alignment: 8)
        defer { buffer.deallocate() }
        memset(buffer, 0, ckvm_msrs_size(n))
        buffer.bindMemory(to: kvm_msrs.self, capacity: 1).pointee.nmsrs = n
        let dst = (buffer + MemoryLayout<kvm_msrs>.size).bindMemory(to: kvm_msr_entry.self, capacity: msrs.count)
        for (i, m) in msrs.enumerated() {
            dst[i] = kvm_msr_entry(index: m.index, reserved: 0, data: m.value)
        }
        return Int(try check("KVM_SET_MSRS") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_MSRS, buffer) })
    }

    public func getEvents() throws(HostError) -> kvm_vcpu_events {
        var e = kvm_vcpu_events()
        _ = try check("KVM_GET_VCPU_EVENTS") { ckvm_ioctl_ptr(fd, CKVM_KVM_GET_VCPU_EVENTS, &e) }
        return e
    }

    public func setEvents(_ events: kvm_vcpu_events) throws(HostError) {
        var e = events
        _ = try check("KVM_SET_VCPU_EVENTS") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_VCPU_EVENTS, &e) }
    }

    /// Injects a hardware exception (no error code) to be delivered on the next KVM_RUN.
    public func injectException(vector: UInt8) throws(HostError) {
        var e = try getEvents()
        e.exception.injected = 1
        e.exception.nr = vector
        e.exception.has_error_code = 0
        e.exception.pending = 0
        e.exception.error_code = 0
        e.flags = 0
        try setEvents(e)
    }

    /// Guest linear → physical address through the guest's current page tables.
    public func translate(_ linear: UInt64) -> UInt64? {
        var t = kvm_translation()
        t.linear_address = linear
        guard ckvm_ioctl_ptr(fd, CKVM_KVM_TRANSLATE, &t) == 0, t.valid != 0 else { return nil }
        return t.physical_address
    }
}
