import NIOCore

/// The server side of RFC 4254 for one authenticated connection: session channels, their
/// requests and flow control, and global requests.
final class SSHConnectionLayer {
    /// Our receive window per channel, and the largest packet we accept.
    static let initialWindow: UInt32 = 2 << 20
    static let maximumPacket: UInt32 = 32768
    static let maximumChannels = 64

    private let context: SSHSessionContext
    private let makeHandler: ((SSHSessionContext, SSHSessionChannel) -> SSHSessionHandler?)?
    private let send: (ByteBuffer) throws -> Void
    private let fail: (Error) -> Void
    private var channels: [UInt32: SSHSessionChannel] = [:]
    private var nextID: UInt32 = 0
    private var noMoreSessions = false

    init(context: SSHSessionContext, makeHandler: ((SSHSessionContext, SSHSessionChannel) -> SSHSessionHandler?)?,
         send: @escaping (ByteBuffer) throws -> Void, fail: @escaping (Error) -> Void) {
        self.context = context
        self.makeHandler = makeHandler
        self.send = send
        self.fail = fail
    }

    var openChannels: Int { channels.count }

    func receive(_ payload: ByteBuffer) throws {
        var message = payload
        guard let number = message.readInteger(as: UInt8.self) else { throw SSHError.protocolError("empty message") }
        switch MessageNumber(rawValue: number) {
        case .globalRequest: try globalRequest(&message)
        case .channelOpen: try open(&message)
        case .channelWindowAdjust:
            guard let channel = try channel(&message), let bytes = message.readInteger(as: UInt32.self) else { throw SSHError.malformed("WINDOW_ADJUST") }
            try channel.windowAdjusted(bytes)
        case .channelData, .channelExtendedData:
            guard let channel = try channel(&message) else { throw SSHError.malformed("CHANNEL_DATA") }
            if number == MessageNumber.channelExtendedData.rawValue { _ = message.readInteger(as: UInt32.self) }
            guard let data = message.readSSHString() else { throw SSHError.malformed("CHANNEL_DATA") }
            guard data.readableBytes <= Int(channel.localWindow), data.readableBytes <= Int(Self.maximumPacket) else {
                throw SSHError.protocolError("channel data exceeds the window or the maximum packet size")
            }
            guard !channel.receivedEOF else { throw SSHError.protocolError("channel data after EOF") }
            channel.localWindow -= UInt32(data.readableBytes)
            channel.received(data.readableBytes)
            if number == MessageNumber.channelData.rawValue {
                channel.handler?.receive(data, on: channel)
            } else {
                channel.consumed(data.readableBytes)   // extended data from a client has no use here
            }
        case .channelEOF:
            guard let channel = try channel(&message) else { throw SSHError.malformed("CHANNEL_EOF") }
            channel.receivedEOF = true
            channel.handler?.receiveEOF(on: channel)
        case .channelClose:
            guard let channel = try channel(&message) else { throw SSHError.malformed("CHANNEL_CLOSE") }
            channel.closeNow()
            channels[channel.localID] = nil
            channel.handler?.closed(channel)
            channel.handler = nil
        case .channelRequest: try request(&message)
        case .channelSuccess, .channelFailure, .requestSuccess, .requestFailure:
            return   // we send no requests that want replies
        default:
            try send(.message(.unimplemented) { $0.writeInteger(UInt32(0)) })
        }
    }

    /// The connection ended: every channel's handler hears of it.
    func connectionClosed() {
        let open = channels.values
        channels = [:]
        for channel in open {
            channel.handler?.closed(channel)
            channel.handler = nil
        }
    }

    private func channel(_ message: inout ByteBuffer) throws -> SSHSessionChannel? {
        guard let id = message.readInteger(as: UInt32.self) else { return nil }
        guard let channel = channels[id] else { throw SSHError.protocolError("message for unknown channel \(id)") }
        return channel
    }

    private func globalRequest(_ message: inout ByteBuffer) throws {
        guard let name = message.readSSHText(limit: 128), let wantReply = message.readSSHBool() else { throw SSHError.malformed("GLOBAL_REQUEST") }
        var accepted = false
        if name == "no-more-sessions@openssh.com" {
            noMoreSessions = true
            accepted = true
        }
        if wantReply { try send(.message(accepted ? .requestSuccess : .requestFailure)) }
    }

    private func open(_ message: inout ByteBuffer) throws {
        guard let type = message.readSSHText(limit: 64), let sender = message.readInteger(as: UInt32.self),
              let window = message.readInteger(as: UInt32.self), let maxPacket = message.readInteger(as: UInt32.self)
        else { throw SSHError.malformed("CHANNEL_OPEN") }
        func refuse(_ code: UInt32, _ text: String) throws {
            try send(.message(.channelOpenFailure) {
                $0.writeInteger(sender)
                $0.writeInteger(code)
                $0.writeSSHString(text)
                $0.writeSSHString("")
            })
        }
        guard type == "session" else { return try refuse(3, "channel type '\(type)' is not supported") }
        guard !noMoreSessions else { return try refuse(1, "no more sessions on this connection") }
        guard channels.count < Self.maximumChannels else { return try refuse(4, "too many channels on this connection (max \(Self.maximumChannels))") }
        guard maxPacket > 0 else { throw SSHError.protocolError("channel maximum packet size of 0") }
        while channels[nextID] != nil { nextID &+= 1 }
        let channel = SSHSessionChannel(localID: nextID, remoteID: sender, remoteWindow: window, remoteMaxPacket: maxPacket,
                                        localWindow: Self.initialWindow, send: send, fail: fail)
        nextID &+= 1
        guard let handler = makeHandler?(context, channel) else { return try refuse(1, "sessions are not available on this server") }
        channel.handler = handler
        channels[channel.localID] = channel
        try send(.message(.channelOpenConfirmation) {
            $0.writeInteger(sender)
            $0.writeInteger(channel.localID)
            $0.writeInteger(Self.initialWindow)
            $0.writeInteger(Self.maximumPacket)
        })
    }

    private func request(_ message: inout ByteBuffer) throws {
        guard let channel = try channel(&message), let type = message.readSSHText(limit: 64), let wantReply = message.readSSHBool() else {
            throw SSHError.malformed("CHANNEL_REQUEST")
        }
        let parsed: SessionRequest?
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
            parsed = .pty(PTYRequest(term: term, columns: columns, rows: rows, widthPixels: width, heightPixels: height, modes: modes))
        case "env":
            guard let name = message.readSSHText(limit: 256), let value = message.readSSHText(limit: 16384) else { throw SSHError.malformed("env") }
            parsed = .environment(name: name, value: value)
        case "shell": parsed = .shell
        case "exec":
            guard let command = message.readSSHText(limit: 256 * 1024) else { throw SSHError.malformed("exec") }
            parsed = .exec(command: command)
        case "subsystem":
            guard let name = message.readSSHText(limit: 256) else { throw SSHError.malformed("subsystem") }
            parsed = .subsystem(name: name)
        case "window-change":
            guard let columns = message.readInteger(as: UInt32.self), let rows = message.readInteger(as: UInt32.self),
                  let width = message.readInteger(as: UInt32.self), let height = message.readInteger(as: UInt32.self)
            else { throw SSHError.malformed("window-change") }
            parsed = .windowChange(columns: columns, rows: rows, widthPixels: width, heightPixels: height)
        case "signal":
            guard let name = message.readSSHText(limit: 32) else { throw SSHError.malformed("signal") }
            parsed = .signal(name: name)
        default:
            parsed = nil   // eow@openssh.com, auth-agent-req@openssh.com, x11-req, …: not served
        }
        let accepted = parsed.map { channel.handler?.handle($0, on: channel) ?? false } ?? false
        if wantReply {
            try send(.message(accepted ? .channelSuccess : .channelFailure) { $0.writeInteger(channel.remoteID) })
        }
    }
}
