import Foundation

/// A first-in first-out hand-over between one producer thread and one consumer,
/// holding at most `capacity` items so a fast producer cannot run ahead unbounded.
///
/// The producer always ends with `finish` (optionally with its error); the
/// consumer can cancel, after which `put` refuses new items.
final class BoundedQueue<Element>: @unchecked Sendable {
    // Invariant: every stored property is read and written with `condition` locked.
    private let condition = NSCondition()
    private let capacity: Int
    private var items: [Element] = []
    private var finished = false
    private var failure: (any Error)?
    private var cancelled = false

    init(capacity: Int) { self.capacity = capacity }

    /// Adds an item, waiting while the queue is full; false once the consumer cancelled.
    func put(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Marks the end of the items, or the producer's failure.
    func finish(throwing error: (any Error)? = nil) {
        condition.lock()
        finished = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    /// The next item, waiting for one; nil after the end; throws the producer's failure.
    func take() throws -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !finished { condition.wait() }
        if !items.isEmpty {
            condition.broadcast()
            return items.removeFirst()
        }
        if let failure { throw failure }
        return nil
    }

    /// Tells the producer to stop, and waits until it has (called `finish`).
    func cancelAndWait() {
        condition.lock()
        defer { condition.unlock() }
        cancelled = true
        condition.broadcast()
        while !finished { condition.wait() }
    }
}
