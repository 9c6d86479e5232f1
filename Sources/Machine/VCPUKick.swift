import Glibc
import Host

/// The signal that kicks a vCPU thread out of KVM_RUN (its handler does nothing: KVM_RUN
/// returns EINTR). Installing a handler is a process-wide act, so the library never does
/// it on its own: the program calls `install()` once, and `Machine.start` takes the
/// result, which is the proof that it was done.
public struct VCPUKick: Sendable {
    public let signal: Int32

    public static func install(signal: Int32 = SIGUSR1) -> VCPUKick {
        Signals.installNoOpHandler(signal)
        return VCPUKick(signal: signal)
    }

    private init(signal: Int32) { self.signal = signal }
}
