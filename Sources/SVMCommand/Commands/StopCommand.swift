/// `svm stop [-t SECONDS] NAME`: asks the guest to shut down (its init stops its program and
/// powers off), waits up to SECONDS (default 10) for the VM to end, then ends it; exits 0
/// once it is gone.
enum StopCommand {
    static let command = SVMCommand.Command(name: "stop", summary: "shut a VM down", run: run)

    struct Options {
        var timeout = 10.0
        var help = false
    }

    static let options: [Option<Options>] = [
        .value("--time", "-t") { (o, v) throws(UsageError) in
            guard let s = Double(v), s.isFinite, s >= 0, s <= 86_400 else {
                throw UsageError("-t \(v): must be a number of seconds from 0 to 86400")
            }
            o.timeout = s
        },
        .flag("--help", "-h") { $0.help = true },
    ]

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        var o = Options()
        var status: Int32 = 0
        guard let name = NamedVMCommand.parse(arguments, into: &o, options: options, command: "stop",
                                              help: HelpText.stop, wantsHelp: { $0.help }, status: &status) else { return status }
        switch stop(name, timeout: o.timeout, vms: ManagedVMs(environment: context.environment)) {
        case .success: return 0
        case let .failure(f): return f.report()
        }
    }

    static func stop(_ name: String, timeout: Double, vms: ManagedVMs) -> Result<Void, CommandFailure> {
        switch vms.find(name) {
        case let .failure(f): return .failure(f)
        case let .success(record):
            guard record.live else { return .success(()) }  // already stopped: nothing to do
            if case let .failure(f) = vms.ask(record, .stop(timeout: timeout)) {
                // It may have ended between the look and the ask.
                if !vms.waitUntilGone(name, timeout: 0) { return .failure(f) }
                return .success(())
            }
            // The VM ends itself after `timeout`; allow for its tear-down on top.
            if vms.waitUntilGone(name, timeout: timeout + 10) { return .success(()) }
            return KillCommand.kill(name, vms: vms)
        }
    }
}
