import Machine

/// `svm boot` flags, parsed and checked. Parsing never touches the file system; the
/// Machine reports missing or malformed files itself. Codable: what `restart` needs is
/// these options, saved in the VM's state directory as config.json.
public struct BootOptions: Sendable, Codable, Equatable {
    public var kernel: String?
    public var initrd: String?
    public var firmware: String?
    public var commandLine: String?
    public var memory: UInt64 = 512 << 20
    public var cpus = 1
    public var timeout: Double?
    public var disks: [DiskConfig] = []
    public var networks: [NetworkConfig] = []
    public var virtioConsole = false
    public var prefault = false
    /// The VM's name (`--name`); nil picks `svm-` and 8 hex digits.
    public var name: String?
    public var detach = false
    public var help = false

    public init() {}

    /// Guest RAM below this cannot hold a kernel; above it is bounded by the host check.
    public static let minimumMemory: UInt64 = 16 << 20

    static let options: [Option<BootOptions>] = [
        .value("--kernel", "-k") { o, v in o.kernel = v },
        .value("--initrd", "-i") { o, v in o.initrd = v },
        .value("--firmware") { o, v in o.firmware = v },
        .value("--cmdline", "-c") { o, v in o.commandLine = v },
        .value("--mem", "-m") { (o, v) throws(UsageError) in o.memory = try OptionValues.memory(v, example: "512M, 2G") },
        .value("--cpus", "-p") { (o, v) throws(UsageError) in o.cpus = try OptionValues.cpus(v) },
        .value("--timeout", "-t") { (o, v) throws(UsageError) in o.timeout = try OptionValues.timeout(v) },
        .value("--disk") { (o, v) throws(UsageError) in o.disks.append(try parseDisk(v)) },
        .value("--net", "-n") { (o, v) throws(UsageError) in o.networks.append(try parseNetwork(v)) },
        .value("--console") { (o, v) throws(UsageError) in
            switch v {
            case "serial": o.virtioConsole = false
            case "virtio": o.virtioConsole = true
            default: throw UsageError("--console \(v): must be serial or virtio")
            }
        },
        .value("--name") { (o, v) throws(UsageError) in o.name = try OptionValues.vmName(v) as String },
        .flag("--detach", "-d") { $0.detach = true },
        .flag("--prefault") { $0.prefault = true },
        .flag("--help", "-h") { $0.help = true },
    ]

    public static func parse(_ arguments: [String]) throws(UsageError) -> BootOptions {
        var o = BootOptions()
        let rest = try OptionParser.parse(arguments, into: &o, options: options, command: "boot")
        if let extra = rest.first { throw UsageError("unexpected argument \(extra) (see svm boot --help)") }
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
