import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Caps the relay's open connections below its descriptor limit, so a flood of
/// idle sockets cannot lock everyone out: a connection over the cap gets a 503
/// JSON error at once and is closed, and connections under it are closed by
/// the idle timeout when they send no complete request head in time.
final class ConnectionLimiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    /// Open connections across the relay.
    final class Count: Sendable {
        let open = Atomic<Int>(0)
    }

    private let count: Count
    private let limit: Int
    private var counted = false

    init(count: Count, limit: Int) {
        self.count = count
        self.limit = limit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        guard count.open.add(1, ordering: .relaxed).newValue > limit else { return }
        let body = ByteBuffer(string: #"{"error":{"code":"too_many_connections","message":"the relay has too many open connections; try again shortly"}}"#)
        let head = HTTPResponse(status: .serviceUnavailable, headerFields: [
            .contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close", .retryAfter: "1",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if counted { count.open.subtract(1, ordering: .relaxed) }
        counted = false
    }

    /// The default cap: the process's descriptor limit less a reserve for its
    /// own files (databases, backup files, the listening socket).
    static func defaultLimit() -> Int {
        guard let limit = Sockets.descriptorLimit(), limit < 1 << 31 else { return 10_000 }
        return max(16, min(limit - 64, 100_000))
    }
}
