import Control
import Machine

/// config.json without Foundation's encoder (see `JSONText` for why). Keys are the
/// Codable names, so `JSONDecoder().decode(BootOptions.self, …)` reads it back; a
/// round-trip test keeps the two in step when a field is added.
extension BootOptions {
    var controlValue: ControlValue {
        var o: [String: ControlValue] = [
            "memory": .int(Int(memory)),
            "cpus": .int(cpus),
            "disks": .array(disks.map { .object(["path": .string($0.path), "readOnly": .bool($0.readOnly)]) }),
            "networks": .array(networks.map { n in
                var fields: [String: ControlValue] = ["tapName": .string(n.tapName)]
                if let mac = n.mac { fields["mac"] = .string(mac) }
                return .object(fields)
            }),
            "shares": .array(shares.map { .object(["source": .string($0.source), "tag": .string($0.tag), "readOnly": .bool($0.readOnly)]) }),
            "virtioConsole": .bool(virtioConsole),
            "prefault": .bool(prefault),
            "detach": .bool(detach),
            "help": .bool(help),
        ]
        if let kernel { o["kernel"] = .string(kernel) }
        if let initrd { o["initrd"] = .string(initrd) }
        if let firmware { o["firmware"] = .string(firmware) }
        if let commandLine { o["commandLine"] = .string(commandLine) }
        if let timeout { o["timeout"] = .double(timeout) }
        if let name { o["name"] = .string(name) }
        return .object(o)
    }
}

extension BootOptions {
    /// Reads config.json back. A missing field keeps its default; a field of the wrong type
    /// makes the whole file unreadable (nil), so a damaged config is never half-applied.
    init?(json: ControlValue) {
        guard let fields = json.object else { return nil }
        var o = BootOptions()
        func string(_ key: String) -> String?? {
            guard let v = fields[key], v != .null else { return .some(nil) }
            return v.string.map { .some($0) }
        }
        func flag(_ key: String, _ value: inout Bool) -> Bool {
            guard let v = fields[key] else { return true }
            guard let b = v.bool else { return false }
            value = b
            return true
        }
        guard let kernel = string("kernel"), let initrd = string("initrd"), let firmware = string("firmware"),
              let commandLine = string("commandLine"), let name = string("name") else { return nil }
        (o.kernel, o.initrd, o.firmware, o.commandLine, o.name) = (kernel, initrd, firmware, commandLine, name)
        if let v = fields["memory"] { guard let m = v.int, m > 0 else { return nil }; o.memory = UInt64(m) }
        if let v = fields["cpus"] { guard let c = v.int else { return nil }; o.cpus = c }
        if let v = fields["timeout"], v != .null { guard let t = v.double else { return nil }; o.timeout = t }
        guard flag("virtioConsole", &o.virtioConsole), flag("prefault", &o.prefault),
              flag("detach", &o.detach), flag("help", &o.help) else { return nil }
        if let v = fields["disks"] {
            guard let items = v.array else { return nil }
            for item in items {
                guard let path = item["path"]?.string, let readOnly = item["readOnly"]?.bool else { return nil }
                o.disks.append(DiskConfig(path: path, readOnly: readOnly))
            }
        }
        if let v = fields["networks"] {
            guard let items = v.array else { return nil }
            for item in items {
                guard let tap = item["tapName"]?.string else { return nil }
                let mac = item["mac"]
                guard mac == nil || mac == .null || mac?.string != nil else { return nil }
                o.networks.append(NetworkConfig(tapName: tap, mac: mac?.string))
            }
        }
        if let v = fields["shares"] {
            guard let items = v.array else { return nil }
            for item in items {
                guard let source = item["source"]?.string, let tag = item["tag"]?.string,
                      let readOnly = item["readOnly"]?.bool else { return nil }
                o.shares.append(ShareOption(source: source, tag: tag, readOnly: readOnly))
            }
        }
        self = o
    }

    /// config.json's bytes back to options; nil for anything unreadable.
    init?(configJSON bytes: [UInt8]) {
        guard let value = try? JSONParser.parse(bytes) else { return nil }
        self.init(json: value)
    }
}
