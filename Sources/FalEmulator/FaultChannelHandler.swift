import HTTPTypes
import NIOCore
import NIOHTTPTypes

#if canImport(Glibc)
import Glibc
#endif

/// Carries out connection-level faults that an HTTP response cannot express: a reset, or a body cut short.
///
/// Route handlers mark a response with the `x-emulator-fault` header (`reset`, or `truncate=N`); this handler,
/// sitting between Hummingbird and the HTTP codec, removes the marker and acts on it. Everything else passes.
final class FaultChannelHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let marker = HTTPField.Name("x-emulator-fault")!

    private enum Mode {
        case pass
        case discard
        case truncate(remaining: Int)
    }

    private var mode = Mode.pass

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        switch part {
        case .head(var head):
            guard let fault = head.headerFields[Self.marker] else {
                mode = .pass
                context.write(data, promise: promise)
                return
            }
            head.headerFields[Self.marker] = nil
            if fault == "reset" {
                mode = .discard
                promise?.succeed()
                reset(context)
            } else if fault.hasPrefix("truncate="), let bytes = Int(fault.dropFirst("truncate=".count)) {
                mode = .truncate(remaining: bytes)
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            } else {
                mode = .pass
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            }
        case .body(let buffer):
            switch mode {
            case .pass:
                context.write(data, promise: promise)
            case .discard:
                promise?.succeed()
            case .truncate(let remaining):
                if buffer.readableBytes < remaining {
                    mode = .truncate(remaining: remaining - buffer.readableBytes)
                    context.write(data, promise: promise)
                } else {
                    let slice = buffer.getSlice(at: buffer.readerIndex, length: remaining)!
                    mode = .discard
                    context.writeAndFlush(wrapOutboundOut(.body(slice)), promise: promise)
                    reset(context)
                }
            }
        case .end:
            switch mode {
            case .pass: context.write(data, promise: promise)
            case .discard, .truncate: promise?.succeed()
            }
        }
    }

    /// Closes with SO_LINGER 0 so the peer sees a real TCP reset, as after a crashed proxy.
    private func reset(_ context: ChannelHandlerContext) {
        let channel = context.channel
        if let provider = channel as? any SocketOptionProvider {
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
                channel.close(promise: nil)
            }
        } else {
            context.close(promise: nil)
        }
    }
}
