import Control
import Glibc
import Host
import Machine
import Snapshot

/// `svm snapshot [--resume] NAME DIR`: saves the running VM NAME into the new directory DIR
/// (docs/snapshot.md). Without --resume the VM ends once the snapshot is on disk (status 0,
/// "saved to a snapshot"); `svm restore DIR` continues it.
enum SnapshotCommand {
    static let command = SVMCommand.Command(name: "snapshot", summary: "save a running VM to a directory", run: run)

    struct Options {
        var resume = false
        var help = false
    }

    static let options: [Option<Options>] = [
        .flag("--resume", "-r") { $0.resume = true },
        .flag("--help", "-h") { $0.help = true },
    ]

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        var o = Options()
        let rest: [String]
        do { rest = try OptionParser.parse(arguments, into: &o, options: options, command: "snapshot") } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.badInput.rawValue
        }
        if o.help {
            print(HelpText.snapshot, terminator: "")
            return 0
        }
        guard rest.count == 2 else {
            SVMCommand.printErr("svm snapshot needs a VM name and a directory (see svm snapshot --help)")
            return ExitCode.badInput.rawValue
        }
        let (name, directory) = (rest[0], absolute(rest[1]))
        let vms = ManagedVMs(environment: context.environment)
        // The VM writes and fsyncs up to its RAM size: allow for a slow disk.
        switch vms.find(name).flatMap({ vms.ask($0, .snapshot(path: directory, resume: o.resume), timeout: 600) }) {
        case let .failure(f): return f.report()
        case .success:
            if !o.resume { _ = vms.waitUntilGone(name, timeout: 10) }
            return 0
        }
    }

    /// `path` made absolute against this process's working directory (the VM process
    /// has its own).
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(cString: buffer)
        return (cwd == "/" ? "" : cwd) + "/" + path
    }
}

/// `svm restore [-d] [--name NAME] DIR`: a VM that continues from the snapshot in DIR, as a
/// managed VM like any `svm boot` (same console, exit statuses, ps/logs/stop). A snapshot
/// that is damaged, from another svm version, for other CPU features, or whose disks
/// changed is refused with one line and status 4.
enum RestoreCommand {
    static let command = SVMCommand.Command(name: "restore", summary: "continue a VM from a snapshot", run: run)

    struct Options {
        var name: String?
        var detach = false
        var help = false
    }

    static let options: [Option<Options>] = [
        .value("--name") { (o, v) throws(UsageError) in o.name = try OptionValues.vmName(v) as String },
        .flag("--detach", "-d") { $0.detach = true },
        .flag("--help", "-h") { $0.help = true },
    ]

    static func run(_ arguments: [String], _ context: CommandContext) -> Int32 {
        var o = Options()
        let rest: [String]
        do { rest = try OptionParser.parse(arguments, into: &o, options: options, command: "restore") } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.badInput.rawValue
        }
        if o.help {
            print(HelpText.restore, terminator: "")
            return 0
        }
        guard rest.count == 1 else {
            SVMCommand.printErr("svm restore needs one snapshot directory (see svm restore --help)")
            return ExitCode.badInput.rawValue
        }
        let directory = SnapshotCommand.absolute(rest[0])
        var st = stat()
        guard stat(directory, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            SVMCommand.printErr("\(rest[0]): not a snapshot directory")
            return ExitCode.badInput.rawValue
        }
        let manifest: Manifest
        do { manifest = try Machine.snapshotManifest(directory) } catch {
            SVMCommand.printErr("\(rest[0]): \(BootConfiguration.message(for: error))")
            return BootConfiguration.status(for: error)
        }
        var options: BootOptions
        switch SnapshotAnnotations.options(from: manifest, directory: rest[0]) {
        case let .success(saved): options = saved
        case let .failure(f): return f.report()
        }
        let name = o.name ?? VMNames.generate()
        options.name = name
        let vms = ManagedVMs(environment: context.environment)
        var signalFD: Int32 = -1
        if !o.detach {
            do { signalFD = try Signals.blockTerminatingSignals() } catch {
                SVMCommand.printErr("\(error)")
                return ExitCode.hostFailure.rawValue
            }
        }
        let claim: VMClaim
        do { claim = try vms.directory.claim(name) } catch {
            SVMCommand.printErr("\(error)")
            return ExitCode.badInput.rawValue
        }
        do { try claim.writeConfig(ManagedVMs.encode(options)) } catch {
            claim.discard()
            SVMCommand.printErr("\(error)")
            return ExitCode.hostFailure.rawValue
        }
        if o.detach { return Detach.start(claim: claim, root: vms.directory.root, restoring: directory) }
        return BootCommand.foreground(options, claim: claim, keepState: o.name != nil, signalFD: signalFD, restoring: directory)
    }
}
