import Control
import Glibc

/// `delete [--force] ID`: removes a stopped or created container's state (a created one's
/// VM is ended first, its virtiofsds with it); a running one needs --force.
enum DeleteCommand {
    static let command = RuntimeCommand.Command(name: "delete", summary: "remove a stopped or created container (--force: a running one too)", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let args = try ArgumentScanner(valued: [], boolean: ["force", "f"]).scan(arguments)
        let id = try RuntimeCommand.containerID(args.positional, command: "delete")
        guard let vm = context.store.directory.record(of: id) else { throw RuntimeFailure("container \(id) does not exist", .notFound) }
        if vm.live {
            // As runc: a container whose process never started is deleted without --force
            // (buildah deletes its RUN step's container so after a failure); a running one
            // needs --force.
            let status = (try? context.store.state(of: id).status) ?? "running"
            guard args.flags.contains("force") || args.flags.contains("f") || status == "created" || status == "creating" else {
                throw RuntimeFailure("cannot delete container \(id): it is \(status) (kill it, or delete --force)", .wrongState)
            }
            _ = try? ControlClient.send(.kill, to: vm.controlSocketPath, timeout: 5)
            if !context.store.waitUntilStopped(id, timeout: 10), let pid = vm.pid, pid > 1 {
                // It holds the lock, so this pid is still the VM process (not a reused one).
                kill(pid, SIGKILL)
                _ = context.store.waitUntilStopped(id, timeout: 5)
            }
        }
        let record = vm.config.flatMap(ContainerStore.Record.init(json:))
        do { try context.store.directory.remove(id) } catch { throw RuntimeFailure("\(error)", .failed) }
        // After the container is gone; a failure is a warning (runtime-spec).
        if let record, let hooks = CreateCommand.hooks(bundle: record.bundle), hooks["poststop"] != nil {
            do { try HookRunner.run("poststop", of: hooks, state: .init(record: record, status: "stopped", pid: 0)) } catch {
                context.log.warning("\(error)")
            }
        }
        return 0
    }
}
