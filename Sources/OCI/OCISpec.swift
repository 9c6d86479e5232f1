import Control

/// The parts of a bundle's config.json (opencontainers/runtime-spec `config.md`) that a
/// container in a VM uses, decoded strictly: a field of the wrong type is an error that
/// names it, never a default. What the VM cannot honour is sorted in `OCIPolicy`.
public struct OCISpec: Equatable, Sendable {
    public struct User: Equatable, Sendable {
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
        public var additionalGids: [UInt32] = []
        public var umask: UInt32?
    }

    public struct ResourceLimit: Equatable, Sendable {
        public var type: String
        public var soft: UInt64
        public var hard: UInt64
    }

    public struct Capabilities: Equatable, Sendable {
        public var bounding: [String] = []
        public var effective: [String] = []
        public var permitted: [String] = []
        public var inheritable: [String] = []
        public var ambient: [String] = []
    }

    public struct Process: Equatable, Sendable {
        public var args: [String]
        public var env: [String] = []
        public var cwd: String = "/"
        public var user = User()
        public var terminal = false
        public var consoleSize: (rows: UInt16, columns: UInt16)?
        public var rlimits: [ResourceLimit] = []
        public var noNewPrivileges = false
        public var capabilities: Capabilities?

        public static func == (a: Process, b: Process) -> Bool {
            a.args == b.args && a.env == b.env && a.cwd == b.cwd && a.user == b.user && a.terminal == b.terminal
                && a.consoleSize?.rows == b.consoleSize?.rows && a.consoleSize?.columns == b.consoleSize?.columns
                && a.rlimits == b.rlimits && a.noNewPrivileges == b.noNewPrivileges && a.capabilities == b.capabilities
        }
    }

    public struct Mount: Equatable, Sendable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String] = []
    }

    public struct Namespace: Equatable, Sendable {
        public var type: String
        public var path: String?
    }

    public var ociVersion: String
    public var process: Process?
    public var rootPath: String
    public var rootReadOnly = false
    public var hostname: String?
    public var mounts: [Mount] = []
    public var annotations: [String: String] = [:]
    public var namespaces: [Namespace] = []
    public var uidMappings = 0
    public var gidMappings = 0
    public var memoryLimit: Int64?
    public var cpuQuota: Int64?
    public var cpuPeriod: UInt64?
    /// Hook names present (prestart, createRuntime, ...), each with its hooks' paths.
    public var hooks: [String: [Hook]] = [:]

    public struct Hook: Equatable, Sendable {
        public var path: String
        public var args: [String] = []
        public var env: [String] = []
        public var timeout: Int?
    }

    /// Decodes config.json's bytes (at most `maximumSize`).
    public static let maximumSize = 4 << 20

    public static func decode(_ bytes: [UInt8]) throws(OCIError) -> OCISpec {
        guard bytes.count <= maximumSize else { throw OCIError("config.json: \(bytes.count) bytes, more than \(maximumSize)") }
        let value: ControlValue
        do { value = try JSONParser.parse(bytes) } catch { throw OCIError("config.json: \(error)") }
        return try decode(value)
    }

    public static func decode(_ value: ControlValue) throws(OCIError) -> OCISpec {
        let d = Fields(value, at: "")
        guard d.isObject else { throw OCIError("config.json: not a JSON object") }
        let version = try d.string("ociVersion") ?? ""
        guard version.hasPrefix("1.") else {
            throw OCIError("config.json: ociVersion \(version.isEmpty ? "missing" : "\"\(version)\"") is not supported (1.x is)")
        }
        guard let root = try d.object("root") else { throw OCIError("config.json: root.path is missing") }
        guard let rootPath = try root.string("path"), !rootPath.isEmpty else { throw OCIError("config.json: root.path is missing") }
        var spec = OCISpec(ociVersion: version, rootPath: rootPath)
        spec.rootReadOnly = try root.bool("readonly") ?? false
        spec.hostname = try d.string("hostname")
        if let p = try d.object("process") { spec.process = try decodeProcess(p) }
        for m in try d.objects("mounts") {
            guard let dest = try m.string("destination") else { throw OCIError("config.json: \(m.path).destination is missing") }
            spec.mounts.append(Mount(destination: dest, type: try m.string("type"), source: try m.string("source"),
                                     options: try m.strings("options")))
        }
        if let a = try d.object("annotations") {
            for (key, v) in a.members {
                guard let s = v.string else { throw OCIError("config.json: annotations.\(key) must be a string") }
                spec.annotations[key] = s
            }
        }
        if let linux = try d.object("linux") {
            for n in try linux.objects("namespaces") {
                guard let type = try n.string("type") else { throw OCIError("config.json: \(n.path).type is missing") }
                spec.namespaces.append(Namespace(type: type, path: try n.string("path")))
            }
            spec.uidMappings = try linux.objects("uidMappings").count
            spec.gidMappings = try linux.objects("gidMappings").count
            if let r = try linux.object("resources") {
                if let mem = try r.object("memory") { spec.memoryLimit = try mem.int64("limit") }
                if let cpu = try r.object("cpu") {
                    spec.cpuQuota = try cpu.int64("quota")
                    spec.cpuPeriod = try cpu.uint64("period")
                }
            }
        }
        if let hooks = try d.object("hooks") {
            for (name, _) in hooks.members {
                spec.hooks[name] = try hooks.objects(name).map { h throws(OCIError) in
                    guard let path = try h.string("path") else { throw OCIError("config.json: \(h.path).path is missing") }
                    return Hook(path: path, args: try h.strings("args"), env: try h.strings("env"),
                                timeout: try h.int64("timeout").map { Int($0) })
                }
            }
        }
        return spec
    }

    static func decodeProcess(_ p: Fields) throws(OCIError) -> Process {
        var process = Process(args: try p.strings("args"))
        process.env = try p.strings("env")
        process.cwd = try p.string("cwd") ?? "/"
        process.terminal = try p.bool("terminal") ?? false
        process.noNewPrivileges = try p.bool("noNewPrivileges") ?? false
        if let size = try p.object("consoleSize") {
            process.consoleSize = (UInt16(clamping: try size.uint64("height") ?? 0), UInt16(clamping: try size.uint64("width") ?? 0))
        }
        if let u = try p.object("user") {
            process.user.uid = try u.uint32("uid") ?? 0
            process.user.gid = try u.uint32("gid") ?? 0
            process.user.umask = try u.uint32("umask")
            process.user.additionalGids = try u.array("additionalGids").enumerated().map { i, v throws(OCIError) in
                guard let n = v.int, n >= 0, n <= Int(UInt32.max) else {
                    throw OCIError("config.json: process.user.additionalGids[\(i)] must be a gid")
                }
                return UInt32(n)
            }
        }
        for r in try p.objects("rlimits") {
            guard let type = try r.string("type") else { throw OCIError("config.json: \(r.path).type is missing") }
            process.rlimits.append(ResourceLimit(type: type, soft: try r.uint64("soft") ?? 0, hard: try r.uint64("hard") ?? 0))
        }
        if let c = try p.object("capabilities") {
            process.capabilities = Capabilities(bounding: try c.strings("bounding"), effective: try c.strings("effective"),
                                                permitted: try c.strings("permitted"), inheritable: try c.strings("inheritable"),
                                                ambient: try c.strings("ambient"))
        }
        return process
    }
}

/// Typed access to one JSON object of config.json; every error names the field's path.
struct Fields {
    let value: ControlValue
    let path: String

    init(_ value: ControlValue, at path: String) {
        self.value = value
        self.path = path
    }

    var isObject: Bool { value.object != nil }
    var members: [(String, ControlValue)] { (value.object ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func field(_ key: String) -> ControlValue? {
        guard let v = value[key], v != .null else { return nil }
        return v
    }

    private func wrong(_ key: String, _ expected: String) -> OCIError {
        OCIError("config.json: \(name(key)) must be \(expected)")
    }

    func string(_ key: String) throws(OCIError) -> String? {
        guard let v = field(key) else { return nil }
        guard let s = v.string else { throw wrong(key, "a string") }
        return s
    }

    func bool(_ key: String) throws(OCIError) -> Bool? {
        guard let v = field(key) else { return nil }
        guard let b = v.bool else { throw wrong(key, "true or false") }
        return b
    }

    func int64(_ key: String) throws(OCIError) -> Int64? {
        guard let v = field(key) else { return nil }
        guard let i = v.int else { throw wrong(key, "an integer") }
        return Int64(i)
    }

    /// Up to 2^64 - 1 (RLIM_INFINITY), which the parser holds as a double.
    func uint64(_ key: String) throws(OCIError) -> UInt64? {
        guard let v = field(key) else { return nil }
        if let i = v.int, i >= 0 { return UInt64(i) }
        if case let .double(d) = v, d >= 0, d <= 18446744073709551615.0, d == d.rounded() {
            return d >= 18446744073709551615.0 ? UInt64.max : UInt64(d)
        }
        throw wrong(key, "an integer from 0 to 2^64-1")
    }

    func uint32(_ key: String) throws(OCIError) -> UInt32? {
        guard let v = try uint64(key) else { return nil }
        guard v <= UInt64(UInt32.max) else { throw wrong(key, "an integer from 0 to 2^32-1") }
        return UInt32(v)
    }

    func object(_ key: String) throws(OCIError) -> Fields? {
        guard let v = field(key) else { return nil }
        guard v.object != nil else { throw wrong(key, "an object") }
        return Fields(v, at: name(key))
    }

    func array(_ key: String) throws(OCIError) -> [ControlValue] {
        guard let v = field(key) else { return [] }
        guard let a = v.array else { throw wrong(key, "an array") }
        return a
    }

    func strings(_ key: String) throws(OCIError) -> [String] {
        try array(key).enumerated().map { i, v throws(OCIError) in
            guard let s = v.string else { throw OCIError("config.json: \(name(key))[\(i)] must be a string") }
            return s
        }
    }

    func objects(_ key: String) throws(OCIError) -> [Fields] {
        try array(key).enumerated().map { i, v throws(OCIError) in
            guard v.object != nil else { throw OCIError("config.json: \(name(key))[\(i)] must be an object") }
            return Fields(v, at: "\(name(key))[\(i)]")
        }
    }
}
