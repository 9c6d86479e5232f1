import Glibc
import Host
import Machine
import Runner

/// The `svm` program: dispatches subcommands and turns every outcome into one line on
/// stderr (when there is something to say) and an exit status.
public enum SVMCommand {
    public static let version = "svm 0.1.0"

    public static func main(_ arguments: [String]) -> Int32 {
        let start = RunTimings.now()
        guard let command = arguments.first else {
            printErr(HelpText.main, raw: true)
            return ExitStatus.badInput.rawValue
        }
        let rest = Array(arguments.dropFirst())
        switch command {
        case "boot": return boot(rest)
        case "run": return run(rest, start: start)
        case "--help", "-h", "help":
            print(HelpText.main, terminator: "")
            return 0
        case "--version", "-V":
            print(version)
            return 0
        default:
            printErr("unknown command '\(command)' (try svm --help)")
            return ExitStatus.badInput.rawValue
        }
    }

    static func boot(_ arguments: [String]) -> Int32 {
        let options: BootOptions
        do { options = try BootOptions.parse(arguments) } catch {
            printErr("\(error)")
            return ExitStatus.badInput.rawValue
        }
        if options.help {
            print(HelpText.boot, terminator: "")
            return 0
        }
        if let firmware = options.firmware {
            var config = MachineConfig(kernelPath: firmware)
            config.flatImage = true
            config.memorySize = options.memory
            config.cpuCount = options.cpus
            config.timeout = options.timeout
            config.populateMemory = options.prefault
            return runMachine(config)
        }
        let env = DefaultGuest.processEnvironment
        var initrd = options.initrd
        guard let kernel = options.kernel ?? DefaultGuest.kernel(environment: env) else {
            printErr("no --kernel given and no project-built kernel in \(DefaultGuest.cacheDirectory(environment: env))/default; build one with scripts/build-guest-kernel and scripts/build-initramfs")
            return ExitStatus.badInput.rawValue
        }
        if options.kernel == nil, initrd == nil { initrd = DefaultGuest.initramfs(environment: env) }

        var config = MachineConfig(kernelPath: kernel)
        config.initrdPath = initrd
        config.memorySize = options.memory
        config.cpuCount = options.cpus
        config.timeout = options.timeout
        config.populateMemory = options.prefault
        if let c = options.commandLine { config.commandLine = c }
        config.disks = options.disks
        config.networks = options.networks
        if options.virtioConsole {
            // The kernel prints to hvc0 (early messages still appear on the serial port
            // until hvc0 registers), and typing goes to hvc0.
            config.virtioConsoles = [VirtioConsoleConfig(scanForGuestEvents: true) { bytes in
                writeAll(bytes, to: 1)
            }]
            config.inputToVirtioConsole = true
            if options.commandLine == nil { config.commandLine = "console=hvc0" }
        }
        return runMachine(config)
    }

    /// `svm run`: usage errors and every failure of svm exit 125, like `docker run`, so
    /// that any other status is the program's own.
    static func run(_ arguments: [String], start: Double) -> Int32 {
        let options: RunOptions
        do { options = try RunOptions.parse(arguments) } catch {
            printErr("\(error)")
            return RunOutcome.failureStatus
        }
        if options.help {
            print(HelpText.run, terminator: "")
            return 0
        }
        return RunSession(request: options.request, environment: DefaultGuest.processEnvironment, start: start).execute()
    }

    static func runMachine(_ config: MachineConfig) -> Int32 {
        let signalFD: Int32
        do { signalFD = try Signals.blockTerminatingSignals() } catch {
            printErr("\(error)")
            return ExitStatus.hostFailure.rawValue
        }
        let machine: Machine
        do { machine = try Machine(config: config) } catch {
            printErr("\(error)")
            return error.isBadInput ? ExitStatus.badInput.rawValue : ExitStatus.hostFailure.rawValue
        }
        let terminal = config.consoleInputFD.flatMap { TerminalMode(fd: $0) }
        terminal?.enterRaw()
        let exit = machine.run(signalFD: signalFD)
        terminal?.restore()

        switch exit {
        case .reset, .powerOff, .userQuit: break
        case let .panic(reason):
            printErr("guest kernel panicked: \(reason)")
        case let .crashed(reason):
            printErr("guest crashed: \(reason)")
        case .timedOut:
            printErr("timed out after \(config.timeout.map { String($0) } ?? "?") s; VM stopped")
        case let .interrupted(signal):
            printErr("stopped by signal \(signal)")
        case let .hostFailure(reason):
            printErr(reason)
        }
        if machine.diedAtFirstSystemCall {
            printErr("the guest died at its first system call: this host's KVM leaves system calls half done, and this kernel lacks svm's fix (boot the kernel from scripts/build-guest-kernel)")
        }
        return ExitStatus.status(for: exit)
    }

    static func printErr(_ message: String, raw: Bool = false) {
        let text = raw ? message : "svm: \(message)\n"
        writeAll(Array(text.utf8), to: 2)
    }
}
