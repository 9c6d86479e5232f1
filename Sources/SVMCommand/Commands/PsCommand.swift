import Control
import Glibc
import Host

/// `svm ps [-a] [--format json]`: the managed VMs, live ones by default.
enum PsCommand {
    static let command = SVMCommand.Command(name: "ps", summary: "list VMs", run: run)

    struct Options {
        var all = false
        var json = false
        var help = false
    }

    static let options: [Option<Options>] = [
        .flag("--all", "-a") { $0.all = true },
        .value("--format") { (o, v) throws(UsageError) in
            switch v {
            case "json": o.json = true
            case "table": o.json = false
            default: throw UsageError("--format \(v): must be table or json")
            }
        },
        .flag("--help", "-h") { $0.help = true },
    ]

    /// One row of the listing.
    struct Row: Codable, Equatable {
        var name: String
        var state: String
        var status: Int?
        var pid: Int?
        var cpus: Int?
        var memory: Int?
        var uptime: Double?
        var kernel: String?
        /// Shared folders by tag: `tag`, `tag(ro)`, and `(failed)` when the VM reports its
        /// virtio-fs device or virtiofsd gone.
        var shares: [String] = []

        /// The JSON of `ps --format json`: absent values are left out.
        var controlValue: ControlValue {
            var o: [String: ControlValue] = ["name": .string(name), "state": .string(state)]
            if let status { o["status"] = .int(status) }
            if let pid { o["pid"] = .int(pid) }
            if let cpus { o["cpus"] = .int(cpus) }
            if let memory { o["memory"] = .int(memory) }
            if let uptime { o["uptime"] = .double(uptime) }
            if let kernel { o["kernel"] = .string(kernel) }
            o["shares"] = .array(shares.map { .string($0) })
            return .object(o)
        }
    }

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        var o = Options()
        do {
            let rest = try OptionParser.parse(arguments, into: &o, options: options, command: "ps")
            if let extra = rest.first { throw UsageError("unexpected argument \(extra)") }
        } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.badInput.rawValue
        }
        if o.help {
            print(HelpText.ps, terminator: "")
            return 0
        }
        let vms = ManagedVMs(environment: context.environment)
        let rows = vms.directory.list().map { row(for: $0, vms: vms) }.filter { o.all || $0.state == "running" || $0.state == "paused" || $0.state == "stopping" }
        if o.json {
            print(String(decoding: JSONText.encode(.array(rows.map(\.controlValue))), as: UTF8.self))
        } else {
            print(table(rows), terminator: "")
        }
        return 0
    }

    /// What a VM directory and, for a live VM, its control socket say.
    static func row(for record: VMRecord, vms: ManagedVMs) -> Row {
        let saved = ManagedVMs.savedOptions(record)
        var row = Row(name: record.name, state: "exited", status: nil, pid: record.pid.map(Int.init),
                      cpus: saved?.cpus, memory: saved.map { Int($0.memory) }, uptime: nil,
                      kernel: saved.flatMap { $0.firmware ?? $0.kernel },
                      shares: (saved?.shares ?? []).map { $0.tag + ($0.readOnly ? "(ro)" : "") })
        guard record.live else {
            row.status = record.exit?.status
            row.pid = nil
            return row
        }
        switch vms.ask(record, .status, timeout: 2) {
        case let .success(reply):
            row.state = reply.fields["state"]?.string ?? "running"
            row.pid = reply.fields["pid"]?.int ?? row.pid
            row.uptime = reply.fields["uptime"]?.double
            if let shares = reply.fields["shares"]?.array {
                row.shares = shares.map { s in
                    let tag = s["tag"]?.string ?? "?"
                    let failed = s["virtiofsd"]?.string != "running" || s["device"]?.string?.hasPrefix("failed") == true
                    return tag + (s["readOnly"]?.bool == true ? "(ro)" : "") + (failed ? "(failed)" : "")
                }
            }
        case .failure:
            // Alive (it holds the lock) but not answering yet: starting, or busy.
            row.state = "running"
        }
        return row
    }

    static func stateText(_ row: Row) -> String {
        guard row.state == "exited" else { return row.state }
        return row.status.map { "exited (\($0))" } ?? "exited (unknown)"
    }

    static func table(_ rows: [Row]) -> String {
        var lines = [["NAME", "STATE", "PID", "CPUS", "MEM", "UPTIME", "SHARES", "KERNEL"]]
        for r in rows {
            lines.append([r.name, stateText(r), r.pid.map(String.init) ?? "-", r.cpus.map(String.init) ?? "-",
                          r.memory.map { "\($0 >> 20)M" } ?? "-", r.uptime.map(duration) ?? "-",
                          r.shares.isEmpty ? "-" : r.shares.joined(separator: ","), r.kernel ?? "-"])
        }
        var widths = [Int](repeating: 0, count: lines[0].count)
        for l in lines { for (i, c) in l.enumerated() { widths[i] = max(widths[i], c.count) } }
        return lines.map { l in
            l.enumerated().map { i, c in i == l.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count + 2) }.joined()
        }.joined(separator: "\n") + "\n"
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        if s < 86400 { return "\(s / 3600)h\(s % 3600 / 60)m" }
        return "\(s / 86400)d\(s % 86400 / 3600)h"
    }
}
