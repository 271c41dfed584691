import Synchronization

/// Tells live subscribers of a topic that something was published on it.
///
/// Each subscriber gets a stream that holds at most one pending signal (a
/// burst of publishes is one wake-up; the subscriber then reads everything
/// new from its cursor), plus a tick every `keepAlive` so it can keep an idle
/// connection open.
final class TopicNotifier: Sendable {
    private let subscribers = Mutex<[String: [UInt64: AsyncStream<Void>.Continuation]]>([:])
    private let nextID = Atomic<UInt64>(0)
    let keepAlive: Duration

    init(keepAlive: Duration) { self.keepAlive = keepAlive }

    /// Signals on every publish to `topic` and every `keepAlive`, until dropped
    /// or until `stop` is called (the stream then ends).
    func signals(for topic: String) -> (stream: AsyncStream<Void>, stop: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = nextID.add(1, ordering: .relaxed).newValue
        subscribers.withLock { $0[topic, default: [:]][id] = continuation }
        let ticker = Task { [keepAlive] in
            while !Task.isCancelled {
                try? await Task.sleep(for: keepAlive)
                continuation.yield()
            }
        }
        continuation.onTermination = { [weak self] _ in
            ticker.cancel()
            self?.subscribers.withLock { all in
                all[topic]?[id] = nil
                if all[topic]?.isEmpty == true { all[topic] = nil }
            }
        }
        return (stream, { continuation.finish() })
    }

    func published(on topic: String) {
        subscribers.withLock { all in all[topic]?.values.forEach { $0.yield() } }
    }

    var subscriberCount: Int { subscribers.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
