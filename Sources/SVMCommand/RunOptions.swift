import Machine
import Runner

/// `svm run` flags, parsed and checked for form. Options come first; the program starts at
/// `--` or at the first argument that is not an option, and everything after it is the
/// program's. Files are checked later, when the image is built.
public struct RunOptions: Sendable, Equatable {
    public var request: RunRequest
    public var help = false

    static let options: [Option<RunOptions>] = [
        .value("--mem", "-m") { (o, v) throws(UsageError) in o.request.memory = try OptionValues.memory(v, example: "256M, 1G") },
        .value("--cpus", "-p") { (o, v) throws(UsageError) in o.request.cpus = try OptionValues.cpus(v) },
        .value("--timeout", "-t") { (o, v) throws(UsageError) in o.request.timeout = try OptionValues.timeout(v) },
        .value("--env", "-e") { (o, v) throws(UsageError) in o.request.environment.append(try parseEnvironment(v)) },
        .value("--workdir", "-w") { (o, dir) throws(UsageError) in
            guard dir.hasPrefix("/"), !dir.utf8.contains(0) else {
                throw UsageError("--workdir \(dir): must be an absolute guest path")
            }
            o.request.workdir = dir
        },
        .value("--volume", "-v") { (o, v) throws(UsageError) in o.request.volumes.append(try parseVolume(v)) },
        .value("--net", "-n") { (o, v) throws(UsageError) in
            if v == "none" { o.request.networks = [] } else { o.request.networks.append(try BootOptions.parseNetwork(v)) }
        },
        .value("--kernel", "-k") { o, v in o.request.kernel = v },
        .flag("--root") { $0.request.root = true },
        .value("--user", "-u") { (o, v) throws(UsageError) in
            let parts = v.split(separator: ":", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw UsageError("--user \(v): must be UID or UID:GID (numbers)")
            }
            o.request.userID = uid
            o.request.groupID = parts.count == 2 ? UInt32(parts[1]) : nil
        },
        .flag("--copy-volumes") { $0.request.copyVolumes = true },
        .flag("--verbose") { $0.request.verbose = true },
        .flag("--tty") { $0.request.tty = true },
        .flag("--help", "-h") { $0.help = true },
    ]

    public static func parse(_ arguments: [String]) throws(UsageError) -> RunOptions {
        var o = RunOptions(request: RunRequest(program: ""))
        // --help anywhere before the program wins over everything else.
        let program = try OptionParser.parse(arguments, into: &o, options: options, command: "run", stopAtPositional: true)
        if o.help { return o }
        if o.request.root && o.request.userID != nil { throw UsageError("--root and --user cannot be combined") }
        guard let first = program.first, !first.isEmpty else {
            throw UsageError("no program given (svm run [options] -- PROGRAM [ARGS...])")
        }
        o.request.program = first
        o.request.arguments = Array(program.dropFirst())
        for a in program where a.utf8.contains(0) {
            throw UsageError("arguments cannot contain NUL bytes")
        }
        return o
    }

    /// `KEY=VALUE`: a non-empty key, any value (even empty).
    static func parseEnvironment(_ text: String) throws(UsageError) -> String {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw UsageError("--env \(text): must be KEY=VALUE")
        }
        guard !text.utf8.contains(0) else { throw UsageError("--env: a NUL byte cannot be passed") }
        return text
    }

    /// `HOST:GUEST[:ro|:rw]`; GUEST absolute, not "/", no "..".
    static func parseVolume(_ text: String) throws(UsageError) -> RunRequest.Volume {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var readOnly = false
        if parts.count == 3 {
            switch parts.removeLast() {
            case "ro": readOnly = true
            case "rw": readOnly = false
            case let other: throw UsageError("--volume \(text): unknown mode '\(other)' (ro or rw)")
            }
        }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw UsageError("--volume \(text): must be HOST:GUEST or HOST:GUEST:ro")
        }
        let guest = parts[1]
        guard guest.hasPrefix("/") else { throw UsageError("--volume \(text): \(guest) must be an absolute guest path") }
        let components = guest.split(separator: "/")
        guard !components.isEmpty, !components.contains(".."), !guest.utf8.contains(0) else {
            throw UsageError("--volume \(text): \(guest) cannot be a volume's guest path (\"/\" or a \"..\" component)")
        }
        if components.first == "svm" {
            throw UsageError("--volume \(text): /svm is where svm keeps the job and the volumes in the guest")
        }
        return RunRequest.Volume(hostPath: parts[0], guestPath: guest, readOnly: readOnly)
    }
}
