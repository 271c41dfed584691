import Foundation
import Keepsake

/// The command to try next for a library error. The library's messages say
/// what happened and what to do in code; the command line adds its own commands.
enum ErrorHint {
    static func hint(for error: any Error) -> String? {
        switch error {
        case let error as KeepsakeError:
            switch error {
            case .projectionsDamaged, .database: "`keepsake rebuild` rebuilds the projections from the log (a damaged file is kept aside)"
            case .cursorFromAnotherLog, .cursorBeyondHead: "`keepsake cursor` prints this store's cursor"
            case .unknownConversation: "`keepsake conversations` lists the store's conversations"
            case .log(.damaged): "`keepsake check` lists the damage"
            default: nil
            }
        case let error as BackupError:
            switch error {
            case .otherAccount: "`keepsake restore --force` restores it anyway; `--account <id>` names the account you expect"
            case .storeHasInstallation: "`keepsake restore --force` makes this store the backed-up installation"
            case .chainKeySource, .noBaseForIncremental: "`keepsake backup` without `--incremental` makes a full backup"
            default: nil
            }
        case MessagingError.notJoined: "`keepsake installation add` joins the store's installation to an account"
        case is CursorParseError: "`keepsake cursor` prints a store's cursor"
        default: nil
        }
    }

    /// `error`, with its hint on a line of its own when it has one.
    static func adding(to error: any Error) -> any Error {
        hint(for: error).map { Hinted(description: "\(error)\n\($0)") } ?? error
    }

    private struct Hinted: Error, CustomStringConvertible {
        let description: String
    }
}
