import ArgumentParser
import Foundation
import Keepsake

@main
struct KeepsakeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keepsake",
        abstract: "An event-sourced store for end-to-end-encrypted messaging clients.",
        discussion: """
        Every change is an event in an append-only log (LMDB); conversations, messages, \
        contacts and the rest are SQLite projections rebuilt from it. Commands act on the \
        store named by --store, or $KEEPSAKE_STORE, or ./keepsake-data.
        """,
        groupedSubcommands: [
            CommandGroup(name: "Store", subcommands: [
                Init.self, Append.self, Conversations.self, Messages.self, Search.self, Log.self,
                CursorCommand.self, Rebuild.self, Check.self, Generate.self, Demo.self,
            ]),
            CommandGroup(name: "Backups", subcommands: [
                BackupCommand.self, RestoreCommand.self, VerifyCommand.self, BackupsCommand.self, Export.self,
            ]),
            CommandGroup(name: "Messaging", subcommands: [
                AccountCommand.self, InstallationCommand.self, Send.self, Sync.self, GroupCommand.self, HistoryCommand.self,
            ]),
            CommandGroup(name: "Server", subcommands: [Serve.self]),
            CommandGroup(name: "Bench", subcommands: [Bench.self]),
        ]
    )

    /// Runs the command; a file error from Foundation is reported by its path
    /// and POSIX cause ("Permission denied"), not as NSCocoaErrorDomain text.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch let error as NSError where error.domain == NSCocoaErrorDomain || error.domain == NSPOSIXErrorDomain {
            exit(withError: FileFailure(error))
        } catch {
            exit(withError: ErrorHint.adding(to: error))
        }
    }
}

/// A file operation that failed, told by its path and cause.
struct FileFailure: Error, CustomStringConvertible {
    let description: String

    init(_ error: NSError) {
        let reason = FileErrors.reason(error)
        let path = (error.userInfo[NSFilePathErrorKey] as? String) ?? (error.userInfo[NSURLErrorKey] as? URL)?.path
        description = path.map { "cannot use \($0): \(reason)" } ?? reason
    }
}
