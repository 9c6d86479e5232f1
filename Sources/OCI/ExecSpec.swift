import Control
import Sandbox

/// `svm-runtime exec`'s process: an OCI `process` object (the file of `--process`, or one
/// built from the command line) decoded as config.json's is, and turned into the guest's
/// exec request. Errors name the field ("exec process: args must be an array").
public enum ExecSpec {
    /// Decodes a `process` object strictly (a field of the wrong type is an error).
    public static func decodeProcess(_ value: ControlValue) throws(OCIError) -> OCISpec.Process {
        guard value.object != nil else { throw OCIError("exec process: not a JSON object") }
        do { return try OCISpec.decodeProcess(Fields(value, at: "")) } catch {
            throw OCIError(reworded(error.description))
        }
    }

    /// Decodes the bytes of a process.json file.
    public static func decodeProcess(json bytes: [UInt8]) throws(OCIError) -> OCISpec.Process {
        let value: ControlValue
        do { value = try JSONParser.parse(bytes) } catch { throw OCIError("exec process: \(error)") }
        return try decodeProcess(value)
    }

    /// The guest's request for `process` (its id is set by the VM process). What the VM
    /// cannot do yet is refused with one line: a terminal. rlimits and the umask are the
    /// container's (the guest applies those of the container's process).
    public static func request(for process: OCISpec.Process) throws(OCIError) -> ExecProcess {
        if process.terminal {
            throw OCIError("exec: a terminal (--tty, process.terminal) is not supported yet: run without -t")
        }
        guard let first = process.args.first, !first.isEmpty else { throw OCIError("exec process: args is empty") }
        guard process.cwd.hasPrefix("/") else { throw OCIError("exec process: cwd \(process.cwd) is not absolute") }
        for env in process.env where env.firstIndex(of: "=").map({ $0 == env.startIndex }) ?? true {
            throw OCIError("exec process: env entry \(env.debugDescription) is not KEY=VALUE")
        }
        var capabilities: ContainerJob.Capabilities?
        if let c = process.capabilities {
            do {
                capabilities = .init(
                    bounding: try CapabilityNames.mask(c.bounding, field: "capabilities.bounding"),
                    effective: try CapabilityNames.mask(c.effective, field: "capabilities.effective"),
                    permitted: try CapabilityNames.mask(c.permitted, field: "capabilities.permitted"),
                    inheritable: try CapabilityNames.mask(c.inheritable, field: "capabilities.inheritable"),
                    ambient: try CapabilityNames.mask(c.ambient, field: "capabilities.ambient"))
            } catch { throw OCIError(reworded(error.description)) }
        }
        let request = ExecProcess(id: 0, argv: process.args, env: process.env, cwd: process.cwd, uid: process.user.uid,
                                  gid: process.user.gid, additionalGids: process.user.additionalGids,
                                  noNewPrivileges: process.noNewPrivileges, capabilities: capabilities)
        if let problem = request.problem { throw OCIError("exec process: \(problem)") }
        return request
    }

    private static func reworded(_ message: String) -> String {
        message.hasPrefix("config.json: ") ? "exec process: " + message.dropFirst("config.json: ".count) : message
    }
}
