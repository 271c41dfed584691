import Foundation

/// A query an app can run once or follow (`Store.observe`): what it reads, and
/// how to fetch its value.
///
/// Like GRDB's `ValueObservation`, a followed query is fetched again whenever a
/// projector transaction changes a table it reads, and its new value is
/// delivered when it differs from the last one.
public struct StoreQuery<Value: Sendable & Equatable>: Sendable {
    /// The tables the query reads; a change to any of them refreshes it.
    public let tables: Set<ProjectedTable>
    private let fetch: @Sendable (Store) throws(KeepsakeError) -> Value

    /// A query that reads `tables` and fetches its value with `fetch`.
    public init(tables: Set<ProjectedTable>, fetch: @escaping @Sendable (Store) throws(KeepsakeError) -> Value) {
        self.tables = tables
        self.fetch = fetch
    }

    /// Runs the query now.
    public func value(in store: Store) throws(KeepsakeError) -> Value {
        try fetch(store)
    }
}

extension StoreQuery where Value == [ConversationSummary] {
    /// The conversation list, most recent activity first, with unread counts.
    public static func conversations(limit: Int? = nil) -> Self {
        StoreQuery(tables: [.conversations, .messages, .members]) { store throws(KeepsakeError) in try store.conversations(limit: limit) }
    }
}

extension StoreQuery where Value == MessagePage {
    /// The newest page of a conversation's messages.
    public static func messages(in conversation: ConversationID, limit: Int = 50) -> Self {
        StoreQuery(tables: [.messages]) { store throws(KeepsakeError) in try store.messages(in: conversation, limit: limit) }
    }
}

extension StoreQuery where Value == [ConversationID: Int] {
    /// Unread counts of the conversations that have unread messages.
    public static func unreadCounts() -> Self {
        StoreQuery(tables: [.conversations, .messages]) { store throws(KeepsakeError) in
            Dictionary(uniqueKeysWithValues: try store.conversations().filter { $0.unreadCount > 0 }.map { ($0.id, $0.unreadCount) })
        }
    }
}

extension Store {
    /// The query's value now, then its new value after every change of this
    /// store's projections that touches a table it reads (appends by any task,
    /// restores, syncs), in order, without polling. Equal consecutive values
    /// are delivered once; a consumer slower than the changes gets the newest value. The sequence ends when the consumer stops iterating
    /// or its task is cancelled; it throws when the query fails.
    ///
    /// Appends made by another process are seen once this store projects them
    /// (its next append, or `catchUp()`).
    public func observe<Value>(_ query: StoreQuery<Value>) -> AsyncThrowingStream<Value, Error> {
        // Every change is kept: coalescing could drop one that touched the
        // query's tables behind a later one that did not.
        let changes = changeFeed.subscribe(keepingAll: true)
        return AsyncThrowingStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let task = Task {
                do {
                    var last = try query.value(in: self)
                    continuation.yield(last)
                    for await change in changes where !change.tables.isDisjoint(with: query.tables) {
                        let value = try query.value(in: self)
                        guard value != last else { continue }
                        last = value
                        continuation.yield(value)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Runs `body` with this store away from the caller's thread, so a UI's main
    /// actor stays free during a read or an append: `try await store.perform { try $0.conversations() }`.
    @discardableResult
    public func perform<T: Sendable>(_ body: @escaping @Sendable (Store) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try body(self) })
            }
        }
    }

    /// Projects what other processes appended since this store last looked,
    /// announcing the change to observers. Appends of this store project at once.
    public func catchUp() throws(KeepsakeError) {
        try catchUpProjections()
    }
}
