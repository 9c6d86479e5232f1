import Control
import Machine
import Snapshot

/// What the command line keeps in a snapshot's manifest besides the Machine's own
/// entries: the svm version that wrote it (a restore by another version is refused, since
/// device state layouts may differ) and the VM's boot options, from which `svm restore`
/// rebuilds the same devices.
enum SnapshotAnnotations {
    static let versionKey = "svm-version"
    static let optionsKey = "boot-options"

    static func make(options: BootOptions) -> [(key: String, value: String)] {
        var saved = options
        saved.name = nil
        saved.detach = false
        // JSONText escapes control characters, so the options are one line.
        let json = String(decoding: JSONText.encode(saved.controlValue), as: UTF8.self)
        return [(versionKey, SVMCommand.version), (optionsKey, json)]
    }

    /// The saved options, after checking the version; a failure is the one line to print.
    static func options(from manifest: Manifest, directory: String) -> Result<BootOptions, CommandFailure> {
        guard let version = manifest[versionKey] else {
            return .failure(CommandFailure("\(directory): the snapshot's manifest names no svm version", status: .snapshotRefused))
        }
        guard version == SVMCommand.version else {
            return .failure(CommandFailure("\(directory): the snapshot was made by \(version); this is \(SVMCommand.version)", status: .snapshotRefused))
        }
        guard let json = manifest[optionsKey], let options = BootOptions(configJSON: Array(json.utf8)) else {
            return .failure(CommandFailure("\(directory): the snapshot's manifest has no readable boot options", status: .snapshotRefused))
        }
        return .success(options)
    }
}
