import Control
import Glibc
import Host
import Machine

/// `svm __vm-process NAME [SNAPSHOT_DIR]`: the process of a detached VM, started by
/// `svm boot -d` or `svm restore -d` (with the snapshot it continues from) (not
/// for users; absent from --help). fd 3 holds the lock on the VM's state directory and
/// fd 4 is the pipe on which it reports `ready` or `fail STATUS MESSAGE` to `svm boot`.
enum VMProcessCommand {
    static let name = "__vm-process"
    static let command = SVMCommand.Command(name: name, summary: "", run: run)

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        let ready = Detach.readyDescriptor
        func fail(_ message: String, _ status: Int32, claim: VMClaim?) -> Int32 {
            claim?.discard()
            _ = writeAll(Array("fail \(status) \(message)\n".utf8), to: ready)
            return status
        }
        guard (1...2).contains(arguments.count), fcntl(Detach.lockDescriptor, F_GETFD) >= 0, fcntl(ready, F_GETFD) >= 0 else {
            SVMCommand.printErr("\(name) is started by svm boot --detach, not by hand")
            return ExitCode.badInput.rawValue
        }
        _ = fcntl(Detach.lockDescriptor, F_SETFD, FD_CLOEXEC)
        _ = fcntl(ready, F_SETFD, FD_CLOEXEC)
        let directory = StateDirectory(root: StateDirectory.root(environment: context.environment))
        let claim = VMClaim(name: arguments[0], directory: directory.path(of: arguments[0]), lockFD: Detach.lockDescriptor)
        guard let bytes = try? FileIO.readFile(claim.directory + "/config.json"),
              let options = BootOptions(configJSON: bytes) else {
            return fail("cannot read \(claim.directory)/config.json", ExitCode.hostFailure.rawValue, claim: claim)
        }
        let signalFD: Int32
        do { signalFD = try Signals.blockTerminatingSignals() } catch {
            return fail("\(error)", ExitCode.hostFailure.rawValue, claim: claim)
        }
        let vm: VMProcess
        do {
            vm = try VMProcess(name: claim.name, claim: claim, options: options)
            try vm.build(echo: nil, restoring: arguments.count == 2 ? arguments[1] : nil)
        } catch let error as MachineError {
            return fail(BootConfiguration.message(for: error), BootConfiguration.status(for: error), claim: claim)
        } catch {
            return fail("\(error)", ExitCode.hostFailure.rawValue, claim: claim)
        }
        do { try vm.start(kick: VCPUKick.install()) } catch {
            vm.finish(.hostFailure("\(error)"))
            return fail(BootConfiguration.message(for: error), BootConfiguration.status(for: error), claim: nil)
        }
        _ = writeAll(Array("ready\n".utf8), to: ready)
        close(ready)
        let exit = ForegroundConsole.run(vm.machine, input: nil, signalFD: signalFD)
        vm.finish(exit)
        return ExitCode.status(for: exit)
    }
}
