import ArgumentParser
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
        subcommands: [
            Init.self, Append.self, Conversations.self, Messages.self, Search.self, Log.self,
            CursorCommand.self, Rebuild.self, Check.self, Generate.self, Demo.self,
            BackupCommand.self, RestoreCommand.self, VerifyCommand.self, BackupsCommand.self, Bench.self,
            AccountCommand.self, InstallationCommand.self, Send.self, Sync.self, GroupCommand.self, HistoryCommand.self, Serve.self,
        ]
    )
}
