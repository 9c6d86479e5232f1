import Control

/// `list [--format table|json] [--quiet]`: every container under --root.
enum ListCommand {
    static let command = RuntimeCommand.Command(name: "list", summary: "list containers", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let args = try ArgumentScanner(valued: ["format", "f"], boolean: ["quiet", "q"]).scan(arguments)
        let format = args.values["format"] ?? args.values["f"] ?? "table"
        guard format == "table" || format == "json" else { throw RuntimeFailure("--format \(format): not table or json", .usage) }
        let states = context.store.directory.list().compactMap { try? context.store.state(of: $0.name) }
        if args.flags.contains("quiet") || args.flags.contains("q") {
            for s in states { print(s.record.id) }
        } else if format == "json" {
            print(String(decoding: JSONText.encode(.array(states.map(\.json))), as: UTF8.self))
        } else {
            print("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
            for s in states { print("\(s.record.id)\t\(s.pid)\t\(s.status)\t\(s.record.bundle)\t\(s.record.created)\troot") }
        }
        return 0
    }
}
