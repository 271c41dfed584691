import Dispatch
import Foundation
import GRDB
import Synchronization

/// Publishes that arrive while the relay is writing are committed together:
/// one SQLite transaction (and one sync to disk) for a whole batch, instead of
/// one per publish.
///
/// Each publish runs in its own savepoint inside the batch, in arrival order,
/// so a refused publish (a failed check) changes nothing and does not affect
/// the others, and later publishes see what earlier ones wrote (deduplication,
/// epoch claims). Nobody is answered before the batch's transaction commits:
/// an acknowledged publish is as durable as with a transaction of its own.
final class GroupCommit: Sendable {
    /// One publish waiting for the writer: the work to run in its savepoint, and who waits for the cursor.
    private struct Waiting {
        let work: @Sendable (Database) throws -> Int64
        let continuation: CheckedContinuation<Int64, any Error>
    }

    private struct State {
        var waiting: [Waiting] = []
        /// Whether a drain is scheduled or running on the writer queue.
        var draining = false
    }

    private let database: any DatabaseWriter
    private let state = Mutex(State())
    private let writer = DispatchQueue(label: "keepsake.relay.group-commit")
    /// Most publishes in one transaction.
    static let maxBatch = 256

    init(database: any DatabaseWriter) {
        self.database = database
    }

    /// Runs `work` in the next batch's transaction (in its own savepoint) and
    /// returns its result once that transaction has committed.
    func write(_ work: @escaping @Sendable (Database) throws -> Int64) async throws -> Int64 {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { state -> Bool in
                state.waiting.append(Waiting(work: work, continuation: continuation))
                defer { state.draining = true }
                return !state.draining
            }
            if start { writer.async { self.drain() } }
        }
    }

    /// Commits batches until nobody waits.
    private func drain() {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                let batch = Array(state.waiting.prefix(Self.maxBatch))
                state.waiting.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            commit(batch)
        }
    }

    private func commit(_ batch: [Waiting]) {
        var results: [Result<Int64, any Error>]
        do {
            results = try database.write { db in
                batch.map { waiting in
                    // A savepoint whose work throws is rolled back, and the error is this publish's alone.
                    Result {
                        var cursor: Int64 = 0
                        try db.inSavepoint {
                            cursor = try waiting.work(db)
                            return .commit
                        }
                        return cursor
                    }
                }
            }
        } catch {
            // The transaction itself failed (a full disk, a broken database): nothing of the batch was stored.
            results = batch.map { _ in .failure(error) }
        }
        for (waiting, result) in zip(batch, results) { waiting.continuation.resume(with: result) }
    }
}
