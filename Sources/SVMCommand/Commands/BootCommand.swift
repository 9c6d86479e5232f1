import Glibc
import Host
import Machine
import Runner

/// `svm boot`: a VM with its console on this terminal, or with `-d` in the background.
enum BootCommand {
    static let command = SVMCommand.Command(name: "boot", summary: "boot a Linux kernel in a VM", run: run)

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        let parsed: BootOptions
        do { parsed = try BootOptions.parse(arguments) } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.badInput.rawValue
        }
        if parsed.help {
            print(HelpText.boot, terminator: "")
            return 0
        }
        let options: BootOptions
        switch BootConfiguration.resolvingDefaults(parsed, environment: context.environment) {
        case let .success(o): options = o
        case let .failure(error):
            SVMCommand.printErr("\(error)")
            return ExitCode.badInput.rawValue
        }
        return foreground(options)
    }

    /// The VM in this process, its console on stdin/stdout.
    static func foreground(_ options: BootOptions) -> Int32 {
        let signalFD: Int32
        do { signalFD = try Signals.blockTerminatingSignals() } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.hostFailure.rawValue
        }
        let config = BootConfiguration.machineConfig(options) { bytes in writeAll(bytes, to: 1) }
        let machine: Machine
        do { machine = try Machine(config: config) } catch {
            SVMCommand.printErr(BootConfiguration.message(for: error))
            return BootConfiguration.status(for: error)
        }
        let terminal = TerminalMode(fd: 0)
        terminal?.enterRaw()
        defer { terminal?.restore() }
        do { try machine.start(kick: VCPUKick.install()) } catch {
            terminal?.restore()
            SVMCommand.printErr(BootConfiguration.message(for: error))
            return BootConfiguration.status(for: error)
        }
        let exit = ForegroundConsole.run(machine, input: 0, signalFD: signalFD)
        terminal?.restore()
        if let message = BootConfiguration.message(for: exit, timeout: options.timeout) { SVMCommand.printErr(message) }
        if machine.diedAtFirstSystemCall {
            SVMCommand.printErr("the guest died at its first system call: this host's KVM leaves system calls half done, and this kernel lacks svm's fix (boot the kernel from scripts/build-guest-kernel)")
        }
        return ExitCode.status(for: exit)
    }
}
