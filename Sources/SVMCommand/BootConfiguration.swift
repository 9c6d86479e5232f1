import Host
import Machine
import Runner

/// From `svm boot` options to a MachineConfig, and from the Machine's errors back to the
/// flags the user typed: the library's errors name what was wrong, this names the flag.
enum BootConfiguration {
    /// Fills in the project's kernel and initramfs where no --kernel was given, so that a
    /// saved config boots the same guest again. Nil and a message if there is none.
    static func resolvingDefaults(_ options: BootOptions, environment: [String: String]) -> Result<BootOptions, UsageError> {
        guard options.firmware == nil else { return .success(options) }
        var o = options
        if o.kernel == nil {
            guard let kernel = DefaultGuest.kernel(environment: environment) else {
                return .failure(UsageError("no --kernel given and no project-built kernel in \(DefaultGuest.cacheDirectory(environment: environment))/default; build one with scripts/build-guest-kernel and scripts/build-initramfs"))
            }
            o.kernel = kernel
            if o.initrd == nil { o.initrd = DefaultGuest.initramfs(environment: environment) }
        }
        return .success(o)
    }

    /// The VM for `options` (defaults already resolved), with its serial console and the
    /// user console (`--console virtio`) going to `output`.
    static func machineConfig(_ options: BootOptions, output: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) -> MachineConfig {
        var config = MachineConfig(kernelPath: options.firmware ?? options.kernel ?? "")
        config.flatImage = options.firmware != nil
        config.memorySize = options.memory
        config.cpuCount = options.cpus
        config.timeout = options.timeout
        config.populateMemory = options.prefault
        config.serialOutput = output
        guard options.firmware == nil else { return config }
        config.initrdPath = options.initrd
        if let c = options.commandLine { config.commandLine = c }
        config.disks = options.disks
        config.networks = options.networks
        config.agentPort = true
        if options.virtioConsole {
            // The kernel prints to hvc0 (early messages still appear on the serial port
            // until hvc0 registers), and typing goes to hvc0.
            config.virtioConsoles = [VirtioConsoleConfig(role: .user, scanForGuestEvents: true) { bytes in
                bytes.withUnsafeBytes { output($0) }
            }]
            config.consoleInput = .user
            if options.commandLine == nil { config.commandLine = "console=hvc0" }
        }
        return config
    }

    /// The one line for a VM that could not be built, naming the flag where one is at fault.
    static func message(for error: MachineError) -> String {
        switch error {
        case let .cpuCount(n, max): "--cpus \(n): must be between 1 and \(max)"
        case let .memoryExceedsHost(requested, available):
            "--mem \(requested >> 20)M: the host has only \(available >> 20) MiB available"
        case let .disk(path, reason): "--disk \(path): \(reason)"
        case let .network(tap, reason): "--net tap=\(tap): \(reason)"
        case let .badMAC(text): "--net mac=\(text): not a MAC address"
        // VMProcess puts SOURCE:TAG at the front of the reason: the Machine knows only tags.
        case let .sharedFolder(_, reason): "--share \(reason)"
        default: "\(error)"
        }
    }

    static func status(for error: MachineError) -> Int32 {
        if case let .snapshot(e) = error {
            switch e {
            case .io: return ExitCode.hostFailure.rawValue
            case .unsupported: return ExitCode.badInput.rawValue
            default: return ExitCode.snapshotRefused.rawValue
            }
        }
        return error.isBadInput ? ExitCode.badInput.rawValue : ExitCode.hostFailure.rawValue
    }

    /// The line for how a VM ended, if there is something to say.
    static func message(for exit: MachineExit, timeout: Double?) -> String? {
        switch exit {
        case .reset, .powerOff, .userQuit: nil
        case .savedToSnapshot: "saved to a snapshot; the VM ended"
        case let .panic(reason): "guest kernel panicked: \(reason)"
        case let .crashed(reason): "guest crashed: \(reason)"
        case .timedOut: "timed out after \(timeout.map { String($0) } ?? "?") s; VM stopped"
        case let .interrupted(signal): "stopped by signal \(signal)"
        case .killed: "VM killed"
        case let .hostFailure(reason): reason
        }
    }
}
