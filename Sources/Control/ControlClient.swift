import Glibc
import Host

/// The client side: one request to a VM's control socket and its reply.
public enum ControlClient {
    public enum Failure: Error, CustomStringConvertible {
        /// Nobody answers on the socket (the VM is gone) or it cannot be reached.
        case unreachable(HostError)
        /// The VM answered with something that is not a reply, or nothing in time.
        case badReply(String)
        public var description: String {
            switch self {
            case let .unreachable(e): "\(e)"
            case let .badReply(why): "bad reply from the VM: \(why)"
            }
        }
    }

    /// Sends `request` and returns the reply; for `attach` and `exec`, also the connection,
    /// which then carries the console or the exec (the caller closes it).
    public static func send(_ request: ControlRequest, to path: String, timeout: Double = 10) throws(Failure) -> (ControlReply, Int32?) {
        let fd: Int32
        do { fd = try UnixSocket.connect(path: path) } catch { throw .unreachable(error) }
        UnixSocket.setTimeout(fd, seconds: timeout)
        do { try FileIO.write(fd, request.encoded(), what: "send to \(path)") } catch {
            close(fd)
            throw .unreachable(error)
        }
        guard case let .line(bytes) = ControlLineReader.readLine(fd, limit: ControlRequest.maximumLineLength) else {
            close(fd)
            throw .badReply("no reply within \(timeout) s")
        }
        let reply: ControlReply
        do { reply = try ControlReply.parse(bytes) } catch {
            close(fd)
            throw .badReply("\(error)")
        }
        if request.handsOverConnection, reply.ok {
            UnixSocket.setTimeout(fd, seconds: 0)
            return (reply, fd)
        }
        close(fd)
        return (reply, nil)
    }
}
