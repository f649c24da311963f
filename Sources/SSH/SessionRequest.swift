import NIOCore

/// A request on a channel (RFC 4254 §6 and OpenSSH's PROTOCOL §2.1): the client's requests that
/// set a session up, and the server's that end it.
public enum SessionRequest: Sendable, Equatable {
    case pty(PTYRequest)
    case environment(name: String, value: String)
    case shell
    case exec(command: String)
    case subsystem(name: String)
    case windowChange(columns: UInt32, rows: UInt32, widthPixels: UInt32, heightPixels: UInt32)
    case signal(name: String)
    /// The server closed the session's input (`eow@openssh.com`): the client stops sending.
    case endOfWrite
    case exitStatus(UInt32)
    /// `name` without the "SIG" prefix, e.g. "TERM".
    case exitSignal(name: String, coreDumped: Bool, message: String)

    var type: String {
        switch self {
        case .pty: "pty-req"
        case .environment: "env"
        case .shell: "shell"
        case .exec: "exec"
        case .subsystem: "subsystem"
        case .windowChange: "window-change"
        case .signal: "signal"
        case .endOfWrite: "eow@openssh.com"
        case .exitStatus: "exit-status"
        case .exitSignal: "exit-signal"
        }
    }

    /// Reads the type-specific part of a CHANNEL_REQUEST; nil for a type this engine does not serve
    /// (auth-agent-req@openssh.com, x11-req, …), which is then refused.
    static func parse(type: String, _ message: inout ByteBuffer) throws -> SessionRequest? {
        switch type {
        case "pty-req":
            guard let term = message.readSSHText(limit: 256), let columns = message.readInteger(as: UInt32.self),
                  let rows = message.readInteger(as: UInt32.self), let width = message.readInteger(as: UInt32.self),
                  let height = message.readInteger(as: UInt32.self), var encoded = message.readSSHString()
            else { throw SSHError.malformed("pty-req") }
            var modes: [UInt8: UInt32] = [:]
            while let opcode = encoded.readInteger(as: UInt8.self), opcode != 0, opcode < 160 {
                guard let value = encoded.readInteger(as: UInt32.self) else { throw SSHError.malformed("terminal modes") }
                modes[opcode] = value
            }
            return .pty(PTYRequest(term: term, columns: columns, rows: rows, widthPixels: width, heightPixels: height, modes: modes))
        case "env":
            guard let name = message.readSSHText(limit: 256), let value = message.readSSHText(limit: 16384) else { throw SSHError.malformed("env") }
            return .environment(name: name, value: value)
        case "shell": return .shell
        case "exec":
            guard let command = message.readSSHText(limit: 256 * 1024) else { throw SSHError.malformed("exec") }
            return .exec(command: command)
        case "subsystem":
            guard let name = message.readSSHText(limit: 256) else { throw SSHError.malformed("subsystem") }
            return .subsystem(name: name)
        case "window-change":
            guard let columns = message.readInteger(as: UInt32.self), let rows = message.readInteger(as: UInt32.self),
                  let width = message.readInteger(as: UInt32.self), let height = message.readInteger(as: UInt32.self)
            else { throw SSHError.malformed("window-change") }
            return .windowChange(columns: columns, rows: rows, widthPixels: width, heightPixels: height)
        case "signal":
            guard let name = message.readSSHText(limit: 32) else { throw SSHError.malformed("signal") }
            return .signal(name: name)
        case "eow@openssh.com": return .endOfWrite
        case "exit-status":
            guard let status = message.readInteger(as: UInt32.self) else { throw SSHError.malformed("exit-status") }
            return .exitStatus(status)
        case "exit-signal":
            guard let name = message.readSSHText(limit: 32), let core = message.readSSHBool(),
                  let text = message.readSSHText(limit: 1024), message.readSSHText(limit: 64) != nil
            else { throw SSHError.malformed("exit-signal") }
            return .exitSignal(name: name, coreDumped: core, message: text)
        default:
            return nil
        }
    }

    /// Writes the type-specific part (after type and want-reply).
    func write(to buffer: inout ByteBuffer) {
        switch self {
        case .pty(let pty):
            buffer.writeSSHString(pty.term)
            for value in [pty.columns, pty.rows, pty.widthPixels, pty.heightPixels] { buffer.writeInteger(value) }
            var modes = ByteBufferAllocator().buffer(capacity: 5 * pty.modes.count + 1)
            for opcode in pty.modes.keys.sorted() {
                modes.writeInteger(opcode)
                modes.writeInteger(pty.modes[opcode]!)
            }
            modes.writeInteger(UInt8(0))
            buffer.writeSSHString(modes)
        case .environment(let name, let value):
            buffer.writeSSHString(name)
            buffer.writeSSHString(value)
        case .shell, .endOfWrite: break
        case .exec(let command): buffer.writeSSHString(command)
        case .subsystem(let name): buffer.writeSSHString(name)
        case .windowChange(let columns, let rows, let width, let height):
            for value in [columns, rows, width, height] { buffer.writeInteger(value) }
        case .signal(let name): buffer.writeSSHString(name)
        case .exitStatus(let status): buffer.writeInteger(status)
        case .exitSignal(let name, let core, let message):
            buffer.writeSSHString(name)
            buffer.writeSSHBool(core)
            buffer.writeSSHString(message)
            buffer.writeSSHString("")
        }
    }
}

public struct PTYRequest: Sendable, Equatable {
    public var term: String
    public var columns: UInt32
    public var rows: UInt32
    public var widthPixels: UInt32
    public var heightPixels: UInt32
    /// Terminal modes (RFC 4254 §8): opcode → value.
    public var modes: [UInt8: UInt32]

    public init(term: String, columns: UInt32, rows: UInt32, widthPixels: UInt32 = 0, heightPixels: UInt32 = 0, modes: [UInt8: UInt32] = [:]) {
        self.term = term
        self.columns = columns
        self.rows = rows
        self.widthPixels = widthPixels
        self.heightPixels = heightPixels
        self.modes = modes
    }
}

/// What the client asks for when it opens a `direct-tcpip` channel (`ssh -W`, `-J`, `-L`).
public struct DirectTCPIPRequest: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var originatorAddress: String
    public var originatorPort: Int

    public init(host: String, port: Int, originatorAddress: String = "127.0.0.1", originatorPort: Int = 0) {
        self.host = host
        self.port = port
        self.originatorAddress = originatorAddress
        self.originatorPort = originatorPort
    }
}

/// The kinds of channel this engine opens and accepts.
public enum SSHChannelType: Sendable, Equatable {
    case session
    case directTCPIP(DirectTCPIPRequest)

    var name: String {
        switch self {
        case .session: "session"
        case .directTCPIP: "direct-tcpip"
        }
    }

    func writeSpecificData(to buffer: inout ByteBuffer) {
        guard case .directTCPIP(let request) = self else { return }
        buffer.writeSSHString(request.host)
        buffer.writeInteger(UInt32(request.port))
        buffer.writeSSHString(request.originatorAddress)
        buffer.writeInteger(UInt32(request.originatorPort))
    }
}
