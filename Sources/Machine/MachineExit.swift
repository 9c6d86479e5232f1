/// How a VM ended. The command line maps each case to an exit status.
public enum MachineExit: Equatable, Sendable {
    /// The guest rebooted (i8042 reset): a clean end for a one-shot VM.
    case reset
    /// The guest powered off or halted.
    case powerOff
    /// The guest kernel panicked; the reason is the rest of its panic line.
    case panic(String)
    /// The guest crashed in a way the kernel could not report (triple fault, an
    /// instruction svm cannot complete, a vCPU stuck in an unrecoverable state).
    case crashed(String)
    /// `timeout` seconds passed.
    case timedOut
    /// The caller ended the VM because of a terminating signal it received.
    case interrupted(signal: Int32)
    /// The user pressed Ctrl-A x.
    case userQuit
    /// The host ended the VM: a kill request, or a shutdown request the guest did not
    /// complete within its grace period.
    case killed
    /// A host-side failure while running (a KVM ioctl failed).
    case hostFailure(String)
    /// The VM was saved to a snapshot and ended there, to go on when it is restored.
    case savedToSnapshot
}

/// Where a VM is in its life, as `svm ps` and the control socket report it.
public enum MachineState: Equatable, Sendable {
    case created
    case running
    case paused
    /// A shutdown was requested and the guest has until its grace period ends.
    case stopping
    case ended(MachineExit)

    public var name: String {
        switch self {
        case .created: "created"
        case .running: "running"
        case .paused: "paused"
        case .stopping: "stopping"
        case .ended: "exited"
        }
    }
}
