import Control
import Host

/// `svm logs [-f] [--tail N] NAME`: the VM's console log (the last 16 MiB it printed);
/// `-f` follows it until the VM ends.
enum LogsCommand {
    static let command = SVMCommand.Command(name: "logs", summary: "print a VM's console log", run: run)

    struct Options {
        var follow = false
        var tail: Int?
        var help = false
    }

    static let options: [Option<Options>] = [
        .flag("--follow", "-f") { $0.follow = true },
        .value("--tail", "-n") { (o, v) throws(UsageError) in
            if v == "all" { o.tail = nil; return }
            guard let n = Int(v), n >= 0 else { throw UsageError("--tail \(v): must be a number of lines or all") }
            o.tail = n
        },
        .flag("--help", "-h") { $0.help = true },
    ]

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        var o = Options()
        var status: Int32 = 0
        guard let name = NamedVMCommand.parse(arguments, into: &o, options: options, command: "logs",
                                              help: HelpText.logs, wantsHelp: { $0.help }, status: &status) else { return status }
        let vms = ManagedVMs(environment: context.environment)
        let record: VMRecord
        switch vms.find(name) {
        case let .success(r): record = r
        case let .failure(f): return f.report()
        }
        let reader = ConsoleLogReader(path: record.consoleLogPath)
        // What is kept now, and where the current file ended: the follow goes on from
        // there, so nothing is shown twice or skipped.
        let (shown, start) = reader.snapshot()
        let text = o.tail.map { ConsoleLogReader.lastLines(shown, $0) } ?? shown
        guard writeAll(text, to: 1) else { return 0 }
        guard o.follow else { return 0 }
        reader.follow(from: start, output: { writeAll($0, to: 1) },
                      alive: { vms.directory.record(of: name)?.live == true })
        return 0
    }
}
