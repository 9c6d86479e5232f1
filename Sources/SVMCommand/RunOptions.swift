import Machine
import Runner

/// `svm run` flags, parsed and checked for form. Options come first; the program starts at
/// `--` or at the first argument that is not an option, and everything after it is the
/// program's. Files are checked later, when the image is built.
public struct RunOptions: Sendable, Equatable {
    public var request: RunRequest
    public var help = false

    public typealias UsageError = BootOptions.UsageError

    public static func parse(_ arguments: [String]) throws(UsageError) -> RunOptions {
        var o = RunOptions(request: RunRequest(program: ""))
        var i = 0
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < arguments.count else { throw UsageError("\(flag) needs a value") }
            return arguments[i]
        }
        var programIndex: Int?
        while i < arguments.count {
            var arg = arguments[i]
            if arg == "--" {
                programIndex = i + 1
                break
            }
            if !arg.hasPrefix("-") || arg == "-" {
                programIndex = i
                break
            }
            var inlineValue: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                inlineValue = String(arg[arg.index(after: eq)...])
                arg = String(arg[..<eq])
            }
            func next() throws(UsageError) -> String {
                if let v = inlineValue { return v }
                return try value(arg)
            }
            func noValue() throws(UsageError) {
                if inlineValue != nil { throw UsageError("\(arg) takes no value") }
            }
            switch arg {
            case "--mem", "-m": o.request.memory = try OptionValues.memory(try next(), example: "256M, 1G")
            case "--cpus", "-p": o.request.cpus = try OptionValues.cpus(try next())
            case "--timeout", "-t": o.request.timeout = try OptionValues.timeout(try next())
            case "--env", "-e":
                o.request.environment.append(try parseEnvironment(try next()))
            case "--workdir", "-w":
                let dir = try next()
                guard dir.hasPrefix("/"), !dir.utf8.contains(0) else {
                    throw UsageError("--workdir \(dir): must be an absolute guest path")
                }
                o.request.workdir = dir
            case "--volume", "-v":
                o.request.volumes.append(try parseVolume(try next()))
            case "--net", "-n":
                let text = try next()
                if text == "none" {
                    o.request.networks = []
                } else {
                    o.request.networks.append(try BootOptions.parseNetwork(text))
                }
            case "--kernel", "-k":
                o.request.kernel = try next()
            case "--root":
                try noValue()
                o.request.root = true
            case "--verbose":
                try noValue()
                o.request.verbose = true
            case "--tty":
                try noValue()
                o.request.tty = true
            case "--help", "-h":
                o.help = true
                return o
            default:
                throw UsageError("unknown option \(arguments[i]) (see svm run --help)")
            }
            i += 1
        }
        guard let start = programIndex, start < arguments.count, !arguments[start].isEmpty else {
            throw UsageError("no program given (svm run [options] -- PROGRAM [ARGS...])")
        }
        o.request.program = arguments[start]
        o.request.arguments = Array(arguments[(start + 1)...])
        for a in arguments[start...] where a.utf8.contains(0) {
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
