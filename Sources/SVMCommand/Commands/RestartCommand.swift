import Control

/// `svm restart [-t SECONDS] NAME`: stops the VM as `svm stop` does (if it runs), then boots
/// it again, detached, from the options saved in its state directory, under the same name.
enum RestartCommand {
    static let command = SVMCommand.Command(name: "restart", summary: "stop a VM and boot it again", run: run)

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        var o = StopCommand.Options()
        var status: Int32 = 0
        guard let name = NamedVMCommand.parse(arguments, into: &o, options: StopCommand.options, command: "restart",
                                              help: HelpText.restart, wantsHelp: { $0.help }, status: &status) else { return status }
        let vms = ManagedVMs(environment: context.environment)
        let record: VMRecord
        switch vms.find(name) {
        case let .success(r): record = r
        case let .failure(f): return f.report()
        }
        guard let options = ManagedVMs.savedOptions(record) else {
            return CommandFailure("VM \(name): no readable config.json in \(record.directory)", status: .badInput).report()
        }
        if case let .failure(f) = StopCommand.stop(name, timeout: o.timeout, vms: vms) { return f.report() }
        let claim: VMClaim
        do { claim = try vms.directory.claim(name) } catch {
            return CommandFailure("\(error)", status: .badInput).report()
        }
        do { try claim.writeConfig(ManagedVMs.encode(options)) } catch {
            claim.discard()
            return CommandFailure("\(error)", status: .hostFailure).report()
        }
        return Detach.start(claim: claim, root: vms.directory.root)
    }
}
