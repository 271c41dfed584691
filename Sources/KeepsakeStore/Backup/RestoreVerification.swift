import Foundation
import Synchronization
import KeepsakeLog

/// How a restore verifies its files. Into a store that holds events: every
/// file, before anything is applied (`init` does it). Into an empty store: on
/// another thread while they are applied, under a provisional claim on the log
/// (`ProvisionalClaim`) that is kept once every file passed; the restore
/// discards it when anything fails first (`abandon`).
final class RestoreVerification {
    /// The claim to append under while not every file is verified; nil after that.
    private(set) var claim: ProvisionalClaim?
    /// The files in chain order, once all are verified.
    private(set) var verified: [VerifiedBackup] = []
    private let log: EventLog
    private let startBackground: () -> BackgroundVerification
    private var background: BackgroundVerification?
    private var reported = BackgroundVerification.Position()
    private let totalBytes: Int

    init(
        _ chain: BackupChain, key: BackupKey, extensionKinds: [UInt32: ExtensionEventKind], into log: EventLog, empty: Bool,
        stoppingWhen shouldStop: @escaping @Sendable () -> Bool, progress: (RestoreProgress) -> Void, clock: ProgressClock
    ) throws(BackupError) {
        self.log = log
        totalBytes = chain.readers.reduce(0) { $0 + $1.fileSize }
        startBackground = { BackgroundVerification(chain: chain, key: key, extensionKinds: extensionKinds, stoppingWhen: shouldStop) }
        if empty {
            do { claim = try log.claimProvisionally() } catch { throw .store(.log(error)) }
            return
        }
        verified = try chain.verify(key: key, extensionKinds: extensionKinds, decode: false, stoppingWhen: shouldStop) { file, chunk, bytes in
            progress(.verifying(file: file, chunk: chunk))
            progress(.estimated(clock.estimate(done: bytes)))
        }
    }

    /// Bytes of the files verified so far.
    var verifiedBytes: Int { claim == nil && background == nil ? totalBytes : background?.progress.bytes ?? 0 }

    /// Starts verifying on another thread, when the files are not verified yet
    /// (the restore calls it once the head is visible, so the two do not compete).
    func startInBackground() {
        guard claim != nil, background == nil else { return }
        background = startBackground()
    }

    /// Reports the background verification's progress, throws what it found
    /// wrong, and keeps the claim once every file passed (`waiting` for that).
    func settle(waiting: Bool = false, progress: (RestoreProgress) -> Void) throws(BackupError) {
        guard let background, let standing = claim else { return }
        let finished = waiting ? Result { () throws(BackupError) in try background.wait() } : background.result
        let position = background.progress
        if position != reported {
            reported = position
            progress(.verifying(file: position.file, chunk: position.chunk))
        }
        guard let finished else { return }
        verified = try finished.get()
        do { try log.keep(standing) } catch { throw .store(.log(error)) }
        claim = nil
    }

    /// Stops verifying after a failure; returns the claim still standing, which the restore must discard.
    func abandon() -> ProvisionalClaim? {
        background?.cancelAndWait()
        return claim
    }
}

/// A backup chain's verification (`BackupChain.verify`) running on its own
/// thread, while a restore into an empty store applies the same files under a
/// provisional claim. The restore asks between chunks how far it got and how it ended.
final class BackgroundVerification: Sendable {
    /// How far the verification got: the file, its chunks checked, and bytes of all files checked.
    struct Position: Sendable, Equatable {
        var file = 0
        var chunk = 0
        var bytes = 0
    }

    private let outcome = Mutex<Result<[VerifiedBackup], BackupError>?>(nil)
    private let position = Mutex(Position())
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    /// Starts verifying `chain` (which belongs to the verification from now on);
    /// it stops early when `shouldStop` says so or `cancelAndWait` is called.
    init(chain: BackupChain, key: BackupKey, extensionKinds: [UInt32: ExtensionEventKind], stoppingWhen shouldStop: @escaping @Sendable () -> Bool) {
        let owned = OwnedChain(chain: chain)
        Thread.detachNewThread { [self] in
            let result = Result { () throws(BackupError) in
                try owned.chain.verify(
                    key: key, extensionKinds: extensionKinds, decode: false,
                    stoppingWhen: { shouldStop() || self.stopped.load(ordering: .relaxed) }
                ) { file, chunk, bytes in
                    self.position.withLock { $0 = Position(file: file, chunk: chunk, bytes: bytes) }
                }
            }
            outcome.withLock { $0 = result }
            done.signal()
        }
    }

    /// How far it got so far.
    var progress: Position { position.withLock { $0 } }

    /// The files in chain order once all are verified, the error once one failed, nil while it runs.
    var result: Result<[VerifiedBackup], BackupError>? { outcome.withLock { $0 } }

    /// Waits for the end and returns the verified files, or throws what failed.
    func wait() throws(BackupError) -> [VerifiedBackup] {
        done.wait()
        done.signal()
        guard let result else { preconditionFailure("the verification thread always leaves an outcome") }
        return try result.get()
    }

    /// Asks it to stop, and waits until it has.
    func cancelAndWait() {
        stopped.store(true, ordering: .relaxed)
        done.wait()
        done.signal()
    }
}

/// Hands a chain (and its readers) to the thread that owns it from then on.
private struct OwnedChain: @unchecked Sendable {
    let chain: BackupChain
}
