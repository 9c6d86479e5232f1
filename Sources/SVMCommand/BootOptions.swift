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
    /// `--share HOST_DIR:TAG[,ro]`: shared folders (virtio-fs, one virtiofsd each).
    public var shares: [ShareOption] = []
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
        .value("--share", "-s") { (o, v) throws(UsageError) in
            let share = try parseShare(v)
            guard !o.shares.contains(where: { $0.tag == share.tag }) else { throw UsageError("--share \(v): tag \(share.tag) is used twice") }
            o.shares.append(share)
        },
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
        // A flat firmware image has no kernel command line to find devices on, so svm
        // builds none for it: refuse them rather than drop them without a word.
        if o.firmware != nil {
            let devices = [(o.disks.isEmpty, "--disk"), (o.networks.isEmpty, "--net"), (o.shares.isEmpty, "--share"),
                           (!o.virtioConsole, "--console virtio"), (o.commandLine == nil, "--cmdline")]
            if let flag = devices.first(where: { !$0.0 })?.1 {
                throw UsageError("--firmware cannot be combined with \(flag) (a flat image gets no devices or command line)")
            }
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

    /// `HOST_DIR:TAG[,ro]` (also `readonly`). The directory is the part before the last
    /// colon, so a path may hold colons; the tag is what the guest mounts.
    static func parseShare(_ text: String) throws(UsageError) -> ShareOption {
        var options = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let main = options.removeFirst()
        guard let colon = main.lastIndex(of: ":") else { throw UsageError("--share \(text): expected HOST_DIR:TAG[,ro]") }
        let source = String(main[..<colon]), tag = String(main[main.index(after: colon)...])
        guard !source.isEmpty else { throw UsageError("--share \(text): needs a host directory") }
        guard !tag.isEmpty, tag.utf8.count <= 36 else { throw UsageError("--share \(text): the tag must be 1 to 36 bytes") }
        guard tag.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f }) else {
            throw UsageError("--share \(text): the tag may not hold spaces or control characters")
        }
        var share = ShareOption(source: source, tag: tag)
        for option in options {
            switch option {
            case "ro", "readonly": share.readOnly = true
            default: throw UsageError("--share \(text): unknown option '\(option)' (only ro)")
            }
        }
        return share
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

/// One `--share`: a host directory the guest mounts with `mount -t virtiofs TAG DIR`.
public struct ShareOption: Sendable, Codable, Equatable {
    public var source: String
    public var tag: String
    public var readOnly = false
    public init(source: String, tag: String, readOnly: Bool = false) {
        self.source = source
        self.tag = tag
        self.readOnly = readOnly
    }
}
