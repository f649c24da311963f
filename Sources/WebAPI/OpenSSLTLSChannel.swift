import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import OpenSSLTLS

/// A Hummingbird child channel with TLS through OpenSSL (`OpenSSLTLSHandler`) in front of the
/// HTTP one: the API's TLS runs in the same module as everything else (HummingbirdTLS's
/// equivalent wraps swift-nio-ssl, whose BoringSSL is outside the FIPS boundary).
/// In front of TLS, for the connection's whole life (an upgraded WebSocket included): the
/// listener's `ConnectionCap` and a `ReadTimeoutHandler`.
struct OpenSSLTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let context: ReloadableTLSContext
    let cap: ConnectionCap
    let readTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers(cap.handler(), ReadTimeoutHandler(timeout: readTimeout),
                                                            try OpenSSLTLSHandler(context: context.current))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1, with WebSocket upgrades for the routes of `webSocketRouter`, over TLS through OpenSSL.
    static func http1OverOpenSSLTLS<Sockets: HTTPResponderBuilder>(
        webSocketRouter: Sockets, configuration: HTTP1WebSocketUpgradeChannel.Configuration, context: ReloadableTLSContext,
        cap: ConnectionCap, readTimeout: TimeAmount
    ) -> HTTPServerBuilder where Sockets.Responder.Context: WebSocketRequestContext {
        let sockets = webSocketRouter.buildResponder()
        return .init { responder in
            OpenSSLTLSChannel(base: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: sockets, configuration: configuration),
                              context: context, cap: cap, readTimeout: readTimeout)
        }
    }
}
