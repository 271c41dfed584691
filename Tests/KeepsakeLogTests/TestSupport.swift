import Foundation
@testable import KeepsakeLog

/// A temporary directory removed when the value is released.
final class TemporaryDirectory {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-log-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func text(
    _ s: String, kind: UInt32 = 1, sealed: Bool = false, subject: [UInt8]? = nil,
    effect: RecordEffect = .none, id: EventID? = nil
) -> RecordDraft {
    RecordDraft(id: id, kind: kind, time: 1_700_000_000_000, subject: subject, effect: effect, sealed: sealed, payload: Array(s.utf8))
}

extension LogRecord {
    var text: String? { payload.map { String(decoding: $0, as: UTF8.self) } }
}
