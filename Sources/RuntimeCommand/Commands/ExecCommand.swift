import Control
import Glibc
import Host
import OCI

/// `exec`: another process in a running container, as runc's
/// `exec [--process FILE | flags] ID [CMD ARGS...]`. The process is described by an OCI
/// `process` object (the file, or the container's own process with CMD and the flags
/// applied); the container's VM process starts it in the guest. This command's host
/// process (itself, or with --detach a child `_exec` that outlives it) hands its stdin,
/// stdout and stderr over, passes signals on and exits with the process's status.
enum ExecCommand {
    static let command = RuntimeCommand.Command(name: "exec", summary: "run another process in the running container", run: run)

    static let scanner = ArgumentScanner(
        valued: ["process", "p", "pid-file", "console-socket", "cwd", "user", "u", "preserve-fds", "process-label",
                 "apparmor", "cgroup"],
        boolean: ["detach", "d", "tty", "t", "no-new-privs", "ignore-paused", "no-subreaper"],
        repeated: ["env", "e", "cap", "c", "additional-gids", "g"])

    /// What the command line asks for, before the container is looked at.
    struct Options: Equatable {
        var id: String
        var command: [String] = []
        var processFile: String?
        var detach = false
        var pidFile: String?
        var tty = false
        var env: [String] = []
        var cwd: String?
        var user: (uid: UInt32, gid: UInt32?)?
        var additionalGids: [UInt32] = []
        var capabilities: [String] = []
        var noNewPrivileges = false

        static func == (a: Options, b: Options) -> Bool {
            a.id == b.id && a.command == b.command && a.processFile == b.processFile && a.detach == b.detach
                && a.pidFile == b.pidFile && a.tty == b.tty && a.env == b.env && a.cwd == b.cwd
                && a.user?.uid == b.user?.uid && a.user?.gid == b.user?.gid && a.additionalGids == b.additionalGids
                && a.capabilities == b.capabilities && a.noNewPrivileges == b.noNewPrivileges
        }
    }

    static func parse(_ arguments: [String]) throws(RuntimeFailure) -> Options {
        let args = try scanner.scan(arguments, stopAtFirstPositional: true)
        guard let id = args.positional.first else { throw RuntimeFailure("exec needs a container ID", .usage) }
        var o = Options(id: id, command: Array(args.positional.dropFirst()))
        o.processFile = args.values["process"] ?? args.values["p"]
        guard o.processFile != nil || !o.command.isEmpty else {
            throw RuntimeFailure("exec needs --process FILE or a command after the container ID", .usage)
        }
        o.detach = args.flags.contains("detach") || args.flags.contains("d")
        o.tty = args.flags.contains("tty") || args.flags.contains("t")
        o.pidFile = args.values["pid-file"]
        o.cwd = args.values["cwd"]
        func all(_ names: Set<String>) -> [String] { args.repeatedInOrder.filter { names.contains($0.name) }.map(\.value) }
        o.env = all(["env", "e"])
        for e in o.env where e.firstIndex(of: "=").map({ $0 == e.startIndex }) ?? true {
            throw RuntimeFailure("--env \(e): not KEY=VALUE", .usage)
        }
        if let user = args.values["user"] ?? args.values["u"] {
            let parts = user.split(separator: ":", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let uid = UInt32(parts[0]),
                  parts.count == 1 || UInt32(parts[1]) != nil else {
                throw RuntimeFailure("--user \(user): not uid[:gid] in numbers", .usage)
            }
            o.user = (uid, parts.count == 2 ? UInt32(parts[1]) : nil)
        }
        for g in all(["additional-gids", "g"]) {
            guard let n = UInt32(g) else { throw RuntimeFailure("--additional-gids \(g): not a gid", .usage) }
            o.additionalGids.append(n)
        }
        o.capabilities = all(["cap", "c"])
        o.noNewPrivileges = args.flags.contains("no-new-privs")
        return o
    }

    /// The process object: the file's, or the container's process (`base`, from its
    /// config.json) with the command and the flags applied, as runc does.
    static func processObject(_ o: Options, base: ControlValue?) throws(RuntimeFailure) -> ControlValue {
        var process: [String: ControlValue]
        if let file = o.processFile {
            let bytes: [UInt8]
            do { bytes = try FileIO.readFile(file, limit: 1 << 20) } catch { throw RuntimeFailure("--process \(file): \(error)", .usage) }
            guard let value = try? JSONParser.parse(bytes), let object = value.object else {
                throw RuntimeFailure("--process \(file): not a JSON object", .usage)
            }
            process = object
        } else {
            process = base?.object ?? [:]
            process["args"] = .array(o.command.map { .string($0) })
            process["terminal"] = .bool(false)
            var env = process["env"]?.array ?? []
            for e in o.env {
                let key = e.prefix(while: { $0 != "=" }) + "="
                env.removeAll { $0.string?.hasPrefix(String(key)) ?? false }
                env.append(.string(e))
            }
            process["env"] = .array(env)
            if let cwd = o.cwd { process["cwd"] = .string(cwd) }
            var user = process["user"]?.object ?? [:]
            if let u = o.user {
                user["uid"] = .int(Int(u.uid))
                user["gid"] = .int(Int(u.gid ?? 0))
            }
            if !o.additionalGids.isEmpty { user["additionalGids"] = .array(o.additionalGids.map { .int(Int($0)) }) }
            process["user"] = .object(user)
            if !o.capabilities.isEmpty {
                var caps = process["capabilities"]?.object ?? [:]
                for set in ["bounding", "effective", "permitted", "ambient"] {
                    caps[set] = .array((caps[set]?.array ?? []) + o.capabilities.map { .string($0) })
                }
                process["capabilities"] = .object(caps)
            }
            if o.noNewPrivileges { process["noNewPrivileges"] = .bool(true) }
        }
        if o.tty { process["terminal"] = .bool(true) }
        let value = ControlValue.object(process)
        // Checked here for a clear line; the VM process checks again.
        do { _ = try ExecSpec.request(for: try ExecSpec.decodeProcess(value)) } catch { throw RuntimeFailure("\(error)", .usage) }
        return value
    }

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let o = try parse(arguments)
        let state = try context.store.state(of: o.id)
        guard state.status == "running" else {
            throw RuntimeFailure("cannot exec in container \(o.id): it is \(state.status), not running", .wrongState)
        }
        let process = try processObject(o, base: o.processFile == nil ? containerProcess(bundle: state.record.bundle) : nil)
        guard let vm = context.store.directory.record(of: o.id), vm.live else {
            throw RuntimeFailure("container \(o.id) is not running", .wrongState)
        }
        // Blocked before anything can reach us, and inherited by a detached host process.
        Signals.block(ExecHostProcess.forwarded)
        let connection = try ExecHostProcess.connect(process: process, socket: vm.controlSocketPath, id: o.id)
        if !o.detach {
            if let pidFile = o.pidFile { try writePIDFile(pidFile, getpid()) }
            return ExecHostProcess.relay(connection, log: context.log)
        }
        let pid = try ExecHostProcess.spawnDetached(connection: connection, context: context, id: o.id)
        close(connection)
        if let pidFile = o.pidFile {
            do { try writePIDFile(pidFile, pid) } catch {
                kill(pid, SIGKILL)
                throw error
            }
        }
        return 0
    }

    static func writePIDFile(_ path: String, _ pid: pid_t) throws(RuntimeFailure) {
        do { try FileIO.writeFileAtomically(path, Array("\(pid)".utf8)) } catch { throw RuntimeFailure("--pid-file \(path): \(error)") }
    }

    /// The container's own process object from its bundle, the base of `exec ID CMD`.
    static func containerProcess(bundle: String) -> ControlValue? {
        guard let bytes = try? FileIO.readFile(bundle + "/config.json", limit: OCISpec.maximumSize) else { return nil }
        return (try? JSONParser.parse(bytes))?["process"]
    }
}

/// `run`: engines call create and start; runc's one-shot form is not offered.
enum RunCommandStub {
    static let command = RuntimeCommand.Command(name: "run", summary: "not supported: use create and start", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        throw RuntimeFailure("run is not supported: call create, then start", .usage)
    }
}
