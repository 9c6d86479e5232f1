import Machine

/// `svm boot` flags, parsed and checked. Parsing never touches the file system; the
/// Machine reports missing or malformed files itself.
public struct BootOptions: Sendable {
    public var kernel: String?
    public var initrd: String?
    public var firmware: String?
    public var commandLine: String?
    public var memory: UInt64 = 512 << 20
    public var cpus = 1
    public var timeout: Double?
    public var help = false
    public var disks: [DiskConfig] = []
    public var networks: [NetworkConfig] = []
    public var virtioConsole = false
    public var prefault = false

    public init() {}

    public struct UsageError: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    /// Guest RAM below this cannot hold a kernel; above it is bounded by the host check.
    public static let minimumMemory: UInt64 = 16 << 20

    public static func parse(_ arguments: [String]) throws(UsageError) -> BootOptions {
        var o = BootOptions()
        var i = 0
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < arguments.count else { throw UsageError("\(flag) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            var arg = arguments[i]
            var inlineValue: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                inlineValue = String(arg[arg.index(after: eq)...])
                arg = String(arg[..<eq])
            }
            func next() throws(UsageError) -> String {
                if let v = inlineValue { return v }
                return try value(arg)
            }
            switch arg {
            case "--kernel", "-k": o.kernel = try next()
            case "--initrd", "-i": o.initrd = try next()
            case "--firmware": o.firmware = try next()
            case "--cmdline", "-c": o.commandLine = try next()
            case "--mem", "-m": o.memory = try OptionValues.memory(try next(), example: "512M, 2G")
            case "--cpus", "-p": o.cpus = try OptionValues.cpus(try next())
            case "--timeout", "-t": o.timeout = try OptionValues.timeout(try next())
            case "--disk", "-d": o.disks.append(try parseDisk(try next()))
            case "--net", "-n": o.networks.append(try parseNetwork(try next()))
            case "--console":
                let text = try next()
                switch text {
                case "serial": o.virtioConsole = false
                case "virtio": o.virtioConsole = true
                default: throw UsageError("--console \(text): must be serial or virtio")
                }
            case "--prefault": o.prefault = true
            case "--help", "-h": o.help = true
            default:
                throw UsageError("unknown option \(arguments[i]) (see svm boot --help)")
            }
            i += 1
        }
        if o.firmware != nil && (o.kernel != nil || o.initrd != nil) {
            throw UsageError("--firmware cannot be combined with --kernel or --initrd")
        }
        return o
    }

    /// `PATH[,readonly]` (also `ro`).
    static func parseDisk(_ text: String) throws(UsageError) -> DiskConfig {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let path = parts.removeFirst()
        guard !path.isEmpty else { throw UsageError("--disk \(text): needs a path") }
        var disk = DiskConfig(path: path)
        for option in parts {
            switch option {
            case "readonly", "ro": disk.readOnly = true
            default: throw UsageError("--disk \(text): unknown option '\(option)' (only readonly)")
            }
        }
        return disk
    }

    /// `tap=NAME[,mac=XX:XX:XX:XX:XX:XX]`.
    static func parseNetwork(_ text: String) throws(UsageError) -> NetworkConfig {
        var tap: String?
        var mac: String?
        for option in text.split(separator: ",") {
            if option.hasPrefix("tap=") { tap = String(option.dropFirst(4)) }
            else if option.hasPrefix("mac=") { mac = String(option.dropFirst(4)) }
            else { throw UsageError("--net \(text): unknown option '\(option)' (tap=NAME[,mac=MAC])") }
        }
        guard let tap, !tap.isEmpty else { throw UsageError("--net \(text): needs tap=NAME") }
        return NetworkConfig(tapName: tap, mac: mac)
    }
}
