import NIOCore

/// A channel the peer asked to open, waiting for the application to accept or refuse it. A
/// `direct-tcpip` opening is decided once the target connection succeeded or failed; until then
/// it counts toward the connection's channel limit. Use it on the connection's event loop only.
public final class SSHChannelOpening {
    public let type: SSHChannelType
    /// Channels already open (or being opened) on this connection: what `max_sessions` counts.
    public let openChannels: Int
    fileprivate var decide: ((SSHSessionHandler?, String) -> SSHSessionChannel?)?

    fileprivate init(type: SSHChannelType, openChannels: Int, decide: @escaping (SSHSessionHandler?, String) -> SSHSessionChannel?) {
        self.type = type
        self.openChannels = openChannels
        self.decide = decide
    }

    /// Confirms the channel to the peer; `handler` receives its traffic. Nil if the connection
    /// ended in the meantime.
    @discardableResult
    public func accept(_ handler: SSHSessionHandler) -> SSHSessionChannel? {
        defer { decide = nil }
        return decide?(handler, "")
    }

    /// Tells the peer the channel could not be opened, and why.
    public func reject(_ reason: String) {
        _ = decide?(nil, reason)
        decide = nil
    }
}

/// RFC 4254 for one authenticated connection, as server or client: channels, their requests and
/// flow control, global requests and keepalives.
final class SSHConnectionLayer {
    /// Our receive window per channel, and the largest packet we accept.
    static let initialWindow: UInt32 = 2 << 20
    static let maximumPacket: UInt32 = 32768
    static let maximumChannels = 64

    enum Role {
        /// `acceptChannel` decides each opening the client asks for.
        case server(acceptChannel: (SSHSessionContext, SSHChannelOpening) -> Void)
        /// A client refuses every channel the server tries to open (no X11 or agent forwarding).
        case client
    }

    private let role: Role
    private let context: SSHSessionContext
    private let send: (ByteBuffer) throws -> Void
    private let fail: (Error) -> Void
    private var channels: [UInt32: SSHSessionChannel] = [:]
    /// Channels we asked the peer to open, by our id.
    private var opening: [UInt32: (handler: SSHSessionHandler, opened: (Result<SSHSessionChannel, SSHError>) -> Void)] = [:]
    /// Openings the peer asked for that the application has not decided yet.
    private var undecided = 0
    private var nextID: UInt32 = 0
    private var noMoreSessions = false
    private var isClosed = false
    /// Keepalives (our only global requests) sent since the peer last answered one: any
    /// answer proves it alive.
    private(set) var unansweredKeepalives = 0
    /// Answers still owed: every keepalive gets exactly one, in order.
    private var owedReplies = 0

    init(role: Role, context: SSHSessionContext, send: @escaping (ByteBuffer) throws -> Void, fail: @escaping (Error) -> Void) {
        self.role = role
        self.context = context
        self.send = send
        self.fail = fail
    }

    var openChannels: Int { channels.count + undecided + opening.count }

    private let transport = TransportWritability()

    /// The socket filled up or drained (its write-buffer watermarks): while full, no channel
    /// takes output; once drained, the channels that can take more again are told.
    func transportWritabilityChanged(_ writable: Bool) {
        guard writable != transport.isWritable else { return }
        transport.isWritable = writable
        guard writable else { return }
        for channel in Array(channels.values) where channel.isWritable { channel.handler?.writabilityChanged(on: channel) }
    }

    func receive(_ payload: ByteBuffer) throws {
        var message = payload
        guard let number = message.readInteger(as: UInt8.self) else { throw SSHError.protocolError("empty message") }
        switch MessageNumber(rawValue: number) {
        case .globalRequest: try globalRequest(&message)
        case .requestSuccess, .requestFailure:
            guard owedReplies > 0 else { throw SSHError.protocolError("a global reply that answers no request") }
            owedReplies -= 1
            unansweredKeepalives = 0
        case .channelOpen: try open(&message)
        case .channelOpenConfirmation: try openConfirmed(&message)
        case .channelOpenFailure: try openFailed(&message)
        case .channelWindowAdjust:
            guard let channel = try channel(&message), let bytes = message.readInteger(as: UInt32.self) else { throw SSHError.malformed("WINDOW_ADJUST") }
            try channel.windowAdjusted(bytes)
        case .channelData, .channelExtendedData:
            guard let channel = try channel(&message) else { throw SSHError.malformed("CHANNEL_DATA") }
            let extended = number == MessageNumber.channelExtendedData.rawValue
            if extended { _ = message.readInteger(as: UInt32.self) }
            guard let data = message.readSSHString() else { throw SSHError.malformed("CHANNEL_DATA") }
            guard data.readableBytes <= Int(channel.localWindow), data.readableBytes <= Int(Self.maximumPacket) else {
                throw SSHError.protocolError("channel data exceeds the window or the maximum packet size")
            }
            guard !channel.receivedEOF else { throw SSHError.protocolError("channel data after EOF") }
            channel.localWindow -= UInt32(data.readableBytes)
            channel.received(data.readableBytes)
            guard let handler = channel.handler else { return channel.consumed(data.readableBytes) }
            if extended {
                handler.receiveExtendedData(data, on: channel)
            } else {
                handler.receive(data, on: channel)
            }
        case .channelEOF:
            guard let channel = try channel(&message) else { throw SSHError.malformed("CHANNEL_EOF") }
            channel.receivedEOF = true
            channel.handler?.receiveEOF(on: channel)
        case .channelClose:
            guard let channel = try channel(&message) else { throw SSHError.malformed("CHANNEL_CLOSE") }
            channel.closeNow()
            channels[channel.localID] = nil
            finish(channel)
        case .channelRequest: try request(&message)
        case .channelSuccess, .channelFailure:
            guard let channel = try channel(&message) else { throw SSHError.malformed("CHANNEL_SUCCESS") }
            try channel.receivedReply(number == MessageNumber.channelSuccess.rawValue)
        default:
            try send(.message(.unimplemented) { $0.writeInteger(UInt32(0)) })
        }
    }

    /// The connection ended: every channel's handler hears of it.
    func connectionClosed() {
        isClosed = true
        let open = channels.values
        channels = [:]
        for channel in open { finish(channel) }
        let pending = opening.values
        opening = [:]
        for entry in pending { entry.opened(.failure(SSHError(.connectionLost, "the connection closed"))) }
    }

    private func finish(_ channel: SSHSessionChannel) {
        channel.failPendingReplies()
        channel.handler?.closed(channel)
        channel.handler = nil
    }

    private func channel(_ message: inout ByteBuffer) throws -> SSHSessionChannel? {
        guard let id = message.readInteger(as: UInt32.self) else { return nil }
        guard let channel = channels[id] else { throw SSHError.protocolError("message for unknown channel \(id)") }
        return channel
    }

    // MARK: Global requests

    private func globalRequest(_ message: inout ByteBuffer) throws {
        guard let name = message.readSSHText(limit: 128), let wantReply = message.readSSHBool() else { throw SSHError.malformed("GLOBAL_REQUEST") }
        var accepted = false
        if name == "no-more-sessions@openssh.com", case .server = role {
            noMoreSessions = true
            accepted = true
        }
        // keepalive@openssh.com and everything else: a failure reply is what the peer waits for.
        if wantReply { try send(.message(accepted ? .requestSuccess : .requestFailure)) }
    }

    /// Sends `keepalive@openssh.com`; any reply proves the peer is alive.
    func sendKeepalive() throws {
        unansweredKeepalives += 1
        owedReplies += 1
        try send(.message(.globalRequest) {
            $0.writeSSHString("keepalive@openssh.com")
            $0.writeSSHBool(true)
        })
    }

    // MARK: Opening channels

    private func allocateID() -> UInt32 {
        while channels[nextID] != nil || opening[nextID] != nil { nextID &+= 1 }
        defer { nextID &+= 1 }
        return nextID
    }

    /// Asks the peer to open a channel; `opened` is called with it, or with why it was refused.
    func openChannel(_ type: SSHChannelType, handler: SSHSessionHandler, opened: @escaping (Result<SSHSessionChannel, SSHError>) -> Void) {
        guard !isClosed else { return opened(.failure(SSHError(.connectionLost, "the connection is closed"))) }
        guard openChannels < Self.maximumChannels else {
            return opened(.failure(SSHError(.byApplication, "too many channels on this connection (max \(Self.maximumChannels))")))
        }
        let id = allocateID()
        opening[id] = (handler, opened)
        do {
            try send(.message(.channelOpen) {
                $0.writeSSHString(type.name)
                $0.writeInteger(id)
                $0.writeInteger(Self.initialWindow)
                $0.writeInteger(Self.maximumPacket)
                type.writeSpecificData(to: &$0)
            })
        } catch {
            fail(error)
        }
    }

    private func openConfirmed(_ message: inout ByteBuffer) throws {
        guard let id = message.readInteger(as: UInt32.self), let sender = message.readInteger(as: UInt32.self),
              let window = message.readInteger(as: UInt32.self), let maxPacket = message.readInteger(as: UInt32.self)
        else { throw SSHError.malformed("CHANNEL_OPEN_CONFIRMATION") }
        guard let entry = opening.removeValue(forKey: id) else { throw SSHError.protocolError("confirmation for channel \(id), which we did not open") }
        guard maxPacket > 0 else { throw SSHError.protocolError("channel maximum packet size of 0") }
        let channel = SSHSessionChannel(localID: id, remoteID: sender, remoteWindow: window, remoteMaxPacket: maxPacket,
                                        localWindow: Self.initialWindow, transport: transport, send: send, fail: fail)
        channel.handler = entry.handler
        channels[id] = channel
        entry.opened(.success(channel))
    }

    private func openFailed(_ message: inout ByteBuffer) throws {
        guard let id = message.readInteger(as: UInt32.self), let code = message.readInteger(as: UInt32.self) else {
            throw SSHError.malformed("CHANNEL_OPEN_FAILURE")
        }
        let text = message.readSSHText(limit: 1024) ?? ""
        guard let entry = opening.removeValue(forKey: id) else { throw SSHError.protocolError("open failure for channel \(id), which we did not open") }
        entry.opened(.failure(SSHError(.byApplication, "the server refused the channel (code \(code)): \(text)")))
    }

    private func open(_ message: inout ByteBuffer) throws {
        guard let typeName = message.readSSHText(limit: 64), let sender = message.readInteger(as: UInt32.self),
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
        guard case .server(let acceptChannel) = role else { return try refuse(1, "a client opens no channels for the server") }
        let type: SSHChannelType
        switch typeName {
        case "session":
            guard !noMoreSessions else { return try refuse(1, "no more sessions on this connection") }
            type = .session
        case "direct-tcpip":
            guard let host = message.readSSHText(limit: 255), let port = message.readInteger(as: UInt32.self),
                  let origin = message.readSSHText(limit: 255), let originPort = message.readInteger(as: UInt32.self)
            else { throw SSHError.malformed("direct-tcpip") }
            guard port <= 65535 else { return try refuse(1, "port \(port) is out of range") }
            type = .directTCPIP(DirectTCPIPRequest(host: host, port: Int(port), originatorAddress: origin, originatorPort: Int(originPort)))
        default:
            return try refuse(3, "channel type '\(typeName.prefix(64))' is not supported")
        }
        guard openChannels < Self.maximumChannels else { return try refuse(4, "too many channels on this connection (max \(Self.maximumChannels))") }
        guard maxPacket > 0 else { throw SSHError.protocolError("channel maximum packet size of 0") }
        let opening = SSHChannelOpening(type: type, openChannels: openChannels) { [weak self] handler, reason in
            guard let self, !self.isClosed else { return nil }
            self.undecided -= 1
            do {
                guard let handler else {
                    try refuse(1, reason)
                    return nil
                }
                let channel = SSHSessionChannel(localID: self.allocateID(), remoteID: sender, remoteWindow: window, remoteMaxPacket: maxPacket,
                                                localWindow: Self.initialWindow, transport: self.transport, send: self.send, fail: self.fail)
                channel.handler = handler
                self.channels[channel.localID] = channel
                try self.send(.message(.channelOpenConfirmation) {
                    $0.writeInteger(sender)
                    $0.writeInteger(channel.localID)
                    $0.writeInteger(Self.initialWindow)
                    $0.writeInteger(Self.maximumPacket)
                })
                return channel
            } catch {
                self.fail(error)
                return nil
            }
        }
        undecided += 1
        acceptChannel(context, opening)
    }

    // MARK: Channel requests

    private func request(_ message: inout ByteBuffer) throws {
        guard let channel = try channel(&message), let type = message.readSSHText(limit: 64), let wantReply = message.readSSHBool() else {
            throw SSHError.malformed("CHANNEL_REQUEST")
        }
        let parsed = try SessionRequest.parse(type: type, &message)
        let accepted = parsed.map { channel.handler?.handle($0, on: channel) ?? false } ?? false
        if wantReply {
            try send(.message(accepted ? .channelSuccess : .channelFailure) { $0.writeInteger(channel.remoteID) })
        }
    }
}
