
/// A request on a VM's control socket: one JSON object on one line (docs/control.md).
/// Adding a request is a case here and a line in `parse` and in the VM's handler.
public enum ControlRequest: Equatable, Sendable {
    case status
    case pause
    case resume
    /// Ask the guest to shut down; end the VM after `timeout` seconds if it has not.
    case stop(timeout: Double)
    case kill
    /// After the ok reply, the connection carries the console both ways.
    case attach
    /// Containers (svm-runtime): run the process that waits in the guest.
    case start
    /// Containers: deliver a signal to the process, or with `all` to all of the guest's.
    case signal(Int32, all: Bool)
    /// Containers (svm-runtime exec): run another process, described by an OCI `process`
    /// object. After the ok reply the connection is handed over: the client sends its
    /// stdin, stdout and stderr with SCM_RIGHTS, then `{"signal":N}` lines; the VM process
    /// answers with one `{"exit":N}` line (and `"error"` when it did not run) and closes.
    case exec(process: ControlValue)
    /// Save the VM into the new directory `path` (absolute: the VM process has its own
    /// working directory); with `resume` it goes on afterwards, else it ends.
    case snapshot(path: String, resume: Bool)

    /// Requests longer than this (the line, without its newline) are refused.
    public static let maximumLineLength = 64 << 10
    /// The longest stop timeout accepted: a day.
    public static let maximumStopTimeout = 86_400.0

    public var name: String {
        switch self {
        case .status: "status"
        case .pause: "pause"
        case .resume: "resume"
        case .stop: "stop"
        case .kill: "kill"
        case .attach: "attach"
        case .start: "start"
        case .signal: "signal"
        case .exec: "exec"
        case .snapshot: "snapshot"
        }
    }

    /// After an ok reply, the connection belongs to the handler (`ControlHandler.takeOver`).
    public var handsOverConnection: Bool {
        switch self {
        case .attach, .exec: true
        default: false
        }
    }

    /// Decodes one request line (without the newline).
    public static func parse(_ line: [UInt8]) throws(ControlProtocolError) -> ControlRequest {
        guard line.count <= maximumLineLength else { throw .tooLong(line.count) }
        guard case let .object(object)? = try? JSONParser.parse(line) else { throw .malformed }
        guard let field = object["request"] else { throw .missingRequest }
        guard let name = field.string else { throw .badField("request", "a string") }
        switch name {
        case "status": return .status
        case "pause": return .pause
        case "resume": return .resume
        case "kill": return .kill
        case "attach": return .attach
        case "start": return .start
        case "exec":
            guard let process = object["process"], process.object != nil else { throw .badField("process", "an object") }
            return .exec(process: process)
        case "snapshot":
            guard let path = object["path"]?.string, path.hasPrefix("/"), !path.utf8.contains(0) else {
                throw .badField("path", "an absolute path")
            }
            var resume = false
            if let r = object["resume"] {
                guard let b = r.bool else { throw .badField("resume", "true or false") }
                resume = b
            }
            return .snapshot(path: path, resume: resume)
        case "signal":
            guard let n = object["signal"]?.int, (1...64).contains(n) else { throw .badField("signal", "a signal number from 1 to 64") }
            var all = false
            if let a = object["all"] {
                guard let b = a.bool else { throw .badField("all", "true or false") }
                all = b
            }
            return .signal(Int32(n), all: all)
        case "stop":
            var timeout = 10.0
            if let t = object["timeout"] {
                guard let seconds = t.double, seconds.isFinite, seconds >= 0, seconds <= maximumStopTimeout else {
                    throw .badField("timeout", "a number of seconds from 0 to \(Int(maximumStopTimeout))")
                }
                timeout = seconds
            }
            return .stop(timeout: timeout)
        default:
            throw .unknownRequest(name)
        }
    }

    /// The request as a line, newline included.
    public func encoded() -> [UInt8] {
        var object: [String: ControlValue] = ["request": .string(name)]
        if case let .stop(timeout) = self { object["timeout"] = .double(timeout) }
        if case let .signal(number, all) = self {
            object["signal"] = .int(Int(number))
            object["all"] = .bool(all)
        }
        if case let .exec(process) = self { object["process"] = process }
        if case let .snapshot(path, resume) = self {
            object["path"] = .string(path)
            object["resume"] = .bool(resume)
        }
        return ControlWire.line(object)
    }
}

/// What is wrong with a request line; the reply says it and the connection closes.
public enum ControlProtocolError: Error, Equatable, CustomStringConvertible, Sendable {
    case tooLong(Int)
    case malformed
    case missingRequest
    case badField(String, String)
    case unknownRequest(String)

    public var description: String {
        switch self {
        case let .tooLong(n): "request of \(n) bytes is longer than \(ControlRequest.maximumLineLength)"
        case .malformed: "request is not a JSON object"
        case .missingRequest: "request has no \"request\" field"
        case let .badField(name, expected): "\"\(name)\" must be \(expected)"
        case let .unknownRequest(name): "unknown request \"\(name)\""
        }
    }
}

/// A reply: `{"ok":true, ...fields}` or `{"ok":false,"error":"..."}`, one line.
public struct ControlReply: Equatable, Sendable {
    public var ok: Bool
    public var error: String?
    public var fields: [String: ControlValue]

    public static func ok(_ fields: [String: ControlValue] = [:]) -> ControlReply {
        ControlReply(ok: true, error: nil, fields: fields)
    }

    public static func failure(_ message: String) -> ControlReply {
        ControlReply(ok: false, error: message, fields: [:])
    }

    public func encoded() -> [UInt8] {
        var object = fields
        object["ok"] = .bool(ok)
        if let error { object["error"] = .string(error) }
        return ControlWire.line(object)
    }

    public static func parse(_ line: [UInt8]) throws(ControlProtocolError) -> ControlReply {
        guard line.count <= ControlRequest.maximumLineLength else { throw .tooLong(line.count) }
        guard case var .object(object)? = try? JSONParser.parse(line) else { throw .malformed }
        guard let ok = object.removeValue(forKey: "ok")?.bool else { throw .badField("ok", "true or false") }
        let error = object.removeValue(forKey: "error")?.string
        return ControlReply(ok: ok, error: error, fields: object)
    }
}

enum ControlWire {
    static func line(_ object: [String: ControlValue]) -> [UInt8] {
        JSONText.encode(.object(object)) + [UInt8(ascii: "\n")]
    }
}
