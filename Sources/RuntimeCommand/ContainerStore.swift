import Control
import Glibc
import Host

/// Containers' state on the host: `ROOT/ID/` as for svm's managed VMs (StateDirectory:
/// lock held by the VM process for its life, pid, control.sock, console.log with the
/// guest's serial console, exit.json), with `config.json` holding the container record
/// (bundle, root file system, creation time, annotations). ROOT is `--root`, by default
/// /run/svm-runtime.
struct ContainerStore {
    static let defaultRoot = "/run/svm-runtime"
    let directory: StateDirectory

    init(root: String) { directory = StateDirectory(root: root) }

    /// What `create` writes before the VM process starts.
    struct Record: Equatable {
        var id: String
        var bundle: String
        var rootfs: String
        var created: String
        var annotations: [String: String]

        var json: [UInt8] {
            JSONText.encode(.object([
                "id": .string(id), "bundle": .string(bundle), "rootfs": .string(rootfs), "created": .string(created),
                "annotations": .object(annotations.mapValues { .string($0) }),
            ])) + [0x0A]
        }

        init(id: String, bundle: String, rootfs: String, created: String, annotations: [String: String]) {
            self.id = id
            self.bundle = bundle
            self.rootfs = rootfs
            self.created = created
            self.annotations = annotations
        }

        init?(json bytes: [UInt8]) {
            guard let v = try? JSONParser.parse(bytes), let id = v["id"]?.string, let bundle = v["bundle"]?.string,
                  let rootfs = v["rootfs"]?.string, let created = v["created"]?.string else { return nil }
            var annotations: [String: String] = [:]
            for (k, a) in v["annotations"]?.object ?? [:] { if let s = a.string { annotations[k] = s } }
            self.init(id: id, bundle: bundle, rootfs: rootfs, created: created, annotations: annotations)
        }
    }

    /// The OCI state of one container (runtime-spec `runtime.md`, plus runc's extra fields).
    struct State {
        var record: Record
        var status: String
        var pid: Int32

        var json: ControlValue {
            .object([
                "ociVersion": .string(RuntimeInfo.ociVersion), "id": .string(record.id), "status": .string(status),
                "pid": .int(Int(pid)), "bundle": .string(record.bundle), "rootfs": .string(record.rootfs),
                "created": .string(record.created), "owner": .string(""),
                "annotations": .object(record.annotations.mapValues { .string($0) }),
            ])
        }
    }

    func state(of id: String) throws(RuntimeFailure) -> State {
        guard let vm = directory.record(of: id) else { throw RuntimeFailure("container \(id) does not exist", .notFound) }
        guard let bytes = vm.config, let record = Record(json: bytes) else {
            throw RuntimeFailure("container \(id): its state in \(vm.directory) is unreadable", .failed)
        }
        guard vm.live else { return State(record: record, status: "stopped", pid: 0) }
        guard let (reply, _) = try? ControlClient.send(.status, to: vm.controlSocketPath, timeout: 5), reply.ok,
              let phase = reply.fields["container"]?.string else {
            // A VM process that wrote its exit record is ending (its control server is
            // gone, its lock not yet): stopped, never "creating" again (buildah polls state
            // and takes running → creating as an error).
            if access(vm.directory + "/exit.json", F_OK) == 0 { return State(record: record, status: "stopped", pid: 0) }
            // Between the VM process's start and its control server: still being created.
            return State(record: record, status: "creating", pid: vm.pid ?? 0)
        }
        return State(record: record, status: phase == "stopped" ? "stopped" : phase, pid: vm.pid ?? 0)
    }

    /// Sends a request to a live container's VM process.
    func send(_ request: ControlRequest, to id: String) throws(RuntimeFailure) -> ControlReply {
        guard let vm = directory.record(of: id) else { throw RuntimeFailure("container \(id) does not exist", .notFound) }
        guard vm.live else { throw RuntimeFailure("container \(id) is not running", .wrongState) }
        let reply: ControlReply
        do { (reply, _) = try ControlClient.send(request, to: vm.controlSocketPath) } catch {
            throw RuntimeFailure("container \(id): \(error)", .failed)
        }
        guard reply.ok else { throw RuntimeFailure("container \(id): \(reply.error ?? "refused")", .wrongState) }
        return reply
    }

    /// Waits up to `timeout` seconds for a container's VM process to let go of its lock.
    func waitUntilStopped(_ id: String, timeout: Double) -> Bool {
        let deadline = MonotonicClock.now() + timeout
        while let vm = directory.record(of: id), vm.live {
            if MonotonicClock.now() > deadline { return false }
            usleep(20_000)
        }
        return true
    }
}

enum RuntimeInfo {
    static let ociVersion = "1.0.2"
    static let version = "0.1.0"
}
