import Foundation
import KeepsakeLog

/// When a store backs itself up on its own (the Identity Box policy): after every
/// change of the address book, and optionally every N events or every T.
public struct AutomaticBackupPolicy: Sendable {
    /// Where backup files go.
    public var directory: URL
    /// Kind, key and selection of every backup. The first is full; the rest are
    /// incrementals that extend it (the `incremental` field is ignored).
    public var options: BackupOptions
    /// Back up once this many events were logged since the last backup.
    public var everyEvents: Int?
    /// Back up when this much time passed since the last backup and there is something new.
    public var every: Duration?
    /// Also send each new file there (for example the relay's backup provider:
    /// `ProviderBackups.Destination` in KeepsakeMessaging).
    public var destination: (any BackupDestination)?

    /// Backs up into `directory` with `options`, after each address book change and, when set, every N events or every T.
    public init(directory: URL, options: BackupOptions, everyEvents: Int? = nil, every: Duration? = nil) {
        self.directory = directory
        self.options = options
        self.everyEvents = everyEvents
        self.every = every
    }
}

/// What an automatic backup did.
public enum AutomaticBackupReport: Sendable {
    case wrote(BackupSummary)
    /// The backup failed (for instance `busy` while a restore runs); the next trigger tries again.
    case failed(BackupError)
    /// A file reached the destination; `location` says where, as the destination reports it.
    case uploaded(file: URL, location: String)
    /// A file did not reach the destination; the next trigger tries again.
    case uploadFailed(file: URL, reason: String)
}

/// Where automatic backups send each file they write, such as an off-device provider.
public protocol BackupDestination: Sendable {
    /// Sends a backup file `store` wrote with `key`; returns where it now is, for reports.
    func send(_ file: URL, from store: Store, key: BackupKey) async throws -> String
}

/// A running automatic backup policy. Keep it while backups should happen;
/// `stop()` (or releasing it) ends them.
public final class AutomaticBackups: Sendable {
    /// One report per backup attempt.
    public let reports: AsyncStream<AutomaticBackupReport>
    private let task: Task<Void, Never>

    init(store: Store, policy: AutomaticBackupPolicy) {
        let (reports, report) = AsyncStream<AutomaticBackupReport>.makeStream()
        self.reports = reports
        task = Task {
            let wakeups = Wakeups(on: store.projectionChanges(), every: policy.every)
            defer { report.finish() }
            var schedule = BackupSchedule(store: store, policy: policy)
            var notUploaded: [URL] = []
            for await _ in wakeups.stream {
                guard !Task.isCancelled else { break }
                if let outcome = schedule.backUpIfDue() {
                    report.yield(outcome)
                    if case let .wrote(summary) = outcome, policy.destination != nil { notUploaded.append(summary.file) }
                }
                guard let destination = policy.destination else { continue }
                while let file = notUploaded.first {
                    do {
                        let location = try await destination.send(file, from: store, key: policy.options.key)
                        report.yield(.uploaded(file: file, location: location))
                        notUploaded.removeFirst()
                    } catch {
                        report.yield(.uploadFailed(file: file, reason: "\(error)"))
                        break
                    }
                }
            }
        }
    }

    deinit { task.cancel() }

    /// Ends automatic backups; a backup under way finishes.
    public func stop() { task.cancel() }
}

/// Decides when the next automatic backup is due and makes it.
private struct BackupSchedule {
    let store: Store
    let policy: AutomaticBackupPolicy
    private var lastSequence: UInt64?
    private var lastTime = ContinuousClock.now

    init(store: Store, policy: AutomaticBackupPolicy) {
        self.store = store
        self.policy = policy
    }

    mutating func backUpIfDue() -> AutomaticBackupReport? {
        do {
            let head = try store.cursor().sequence
            let selection = BackupSelection(
                kind: policy.options.kind, elements: policy.options.elements, conversations: policy.options.conversations,
                extensionKinds: store.extensionKinds)
            let previous = try store.record(Store.lastBackupKey(policy.options.kind, selection), in: .lastBackups)
            let last = previous?.toSequence ?? 0
            guard head > last else { return nil }
            let countDue = policy.everyEvents.map { head - last >= UInt64($0) } ?? false
            let timeDue = policy.every.map { ContinuousClock.now - lastTime >= $0 } ?? false
            let addressBookChanged = try !store.log.records(after: last, limit: 1, including: Self.isContactChange).isEmpty
            guard previous == nil || countDue || timeDue || addressBookChanged else { return nil }
            var options = policy.options
            options.incremental = previous != nil
            let summary = try store.backup(into: policy.directory, options: options)
            lastTime = ContinuousClock.now
            return .wrote(summary)
        } catch {
            return .failed(BackupError(error))
        }
    }

    private static func isContactChange(_ kind: UInt32) -> Bool {
        kind == EventKind.contactAdded.rawValue || kind == EventKind.contactRemoved.rawValue
    }
}

extension Store {
    /// Starts backing this store up by `policy` in the background: a full backup
    /// first (unless one of the selection exists), then incrementals whenever one is due.
    public func startAutomaticBackups(_ policy: AutomaticBackupPolicy) -> AutomaticBackups {
        AutomaticBackups(store: self, policy: policy)
    }
}
