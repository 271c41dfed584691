import Foundation
import Synchronization

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
            let sizes = owned.chain.readers.map(\.fileSize)
            let result = Result { () throws(BackupError) in
                try owned.chain.verify(
                    key: key, extensionKinds: extensionKinds, decode: false,
                    stoppingWhen: { shouldStop() || self.stopped.load(ordering: .relaxed) }
                ) { file, chunk, bytes in
                    self.position.withLock { $0 = Position(file: file, chunk: chunk, bytes: sizes[..<file].reduce(0, +) + bytes) }
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
