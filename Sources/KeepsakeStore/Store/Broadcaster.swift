import Foundation
import Synchronization

/// Fans values out to any number of async subscribers. By default a slow
/// subscriber keeps only the newest value (for subscribers that re-read state
/// when woken); `keepingAll` keeps every value, for those that need each one.
final class Broadcaster<Element: Sendable>: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<Element>.Continuation]>([:])

    /// A new subscription; it ends when the returned stream is dropped or cancelled.
    func subscribe(keepingAll: Bool = false) -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream<Element>.makeStream(bufferingPolicy: keepingAll ? .unbounded : .bufferingNewest(1))
        let id = UUID()
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ value: Element) {
        for continuation in subscribers.withLock({ Array($0.values) }) {
            continuation.yield(value)
        }
    }

    func finish() {
        for continuation in subscribers.withLock({ Array($0.values) }) {
            continuation.finish()
        }
    }
}
