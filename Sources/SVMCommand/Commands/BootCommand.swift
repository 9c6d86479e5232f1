import Control
import Glibc
import Host
import Machine
import Runner

/// `svm boot`: a VM with its console on this terminal, or with `-d` in the background.
/// Either way it is a managed VM: a name, a state directory, a control socket.
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
        var options: BootOptions
        switch BootConfiguration.resolvingDefaults(parsed, environment: context.environment) {
        case let .success(o): options = o
        case let .failure(error):
            SVMCommand.printErr("\(error)")
            return ExitCode.badInput.rawValue
        }
        let name = options.name ?? VMNames.generate()
        options.name = name
        // Detach is how this VM was started, not part of what restart boots again.
        let detach = options.detach
        options.detach = false
        let vms = ManagedVMs(environment: context.environment)
        // A foreground VM takes SIGINT/SIGTERM/SIGHUP/SIGQUIT through a signalfd from before
        // it claims its state directory, so a signal at any moment ends it cleanly (the
        // directory removed, exit 128+N) instead of killing it with the directory left.
        var signalFD: Int32 = -1
        if !detach {
            do { signalFD = try Signals.blockTerminatingSignals() } catch {
                SVMCommand.printErr("\(error)")
                return ExitCode.hostFailure.rawValue
            }
        }
        let claim: VMClaim
        do { claim = try vms.directory.claim(name) } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.badInput.rawValue
        }
        do { try claim.writeConfig(ManagedVMs.encode(options)) } catch {
            claim.discard()
            SVMCommand.printErr("\(error)")
            return ExitCode.hostFailure.rawValue
        }
        if detach { return Detach.start(claim: claim, root: vms.directory.root) }
        // A foreground VM the user did not name is gone with its terminal session: its
        // state directory goes too. A named one stays for ps -a, logs and restart.
        return foreground(options, claim: claim, keepState: parsed.name != nil, signalFD: signalFD)
    }

    /// The VM in this process, its console on stdin/stdout (and in its log).
    /// With `restoring`, the VM continues from that snapshot instead of booting.
    static func foreground(_ options: BootOptions, claim: VMClaim, keepState: Bool, signalFD: Int32,
                           restoring: String? = nil) -> Int32 {
        let vm: VMProcess
        do {
            vm = try VMProcess(name: claim.name, claim: claim, options: options)
            try vm.build(echo: 1, restoring: restoring)
        } catch let error as MachineError {
            claim.discard()
            SVMCommand.printErr(BootConfiguration.message(for: error))
            return BootConfiguration.status(for: error)
        } catch {
            claim.discard()
            SVMCommand.printErr("\(error)")
            return ExitCode.hostFailure.rawValue
        }
        let terminal = TerminalMode(fd: 0)
        terminal?.enterRaw()
        defer { terminal?.restore() }
        do { try vm.start(kick: VCPUKick.install()) } catch {
            terminal?.restore()
            vm.finish(.hostFailure("\(error)"))
            SVMCommand.printErr(BootConfiguration.message(for: error))
            return BootConfiguration.status(for: error)
        }
        let exit = ForegroundConsole.run(vm.machine, input: 0, signalFD: signalFD)
        terminal?.restore()
        vm.finish(exit, recordExit: keepState)
        if !keepState { claim.discard() }
        report(exit, vm: vm)
        return ExitCode.status(for: exit)
    }

    static func report(_ exit: MachineExit, vm: VMProcess) {
        if let message = BootConfiguration.message(for: exit, timeout: vm.options.timeout) { SVMCommand.printErr(message) }
        if vm.machine.diedAtFirstSystemCall {
            SVMCommand.printErr("the guest died at its first system call: this host's KVM leaves system calls half done, and this kernel lacks svm's fix (boot the kernel from scripts/build-guest-kernel)")
        }
    }
}
