import ArgumentParser
import Foundation
import Keepsake
import KeepsakeRelayClient

/// `--relay` for commands that talk to a relay.
struct RelayLocation: ParsableArguments {
    @Option(help: ArgumentHelp("The relay's URL.", valueName: "url"))
    var relay: String = ProcessInfo.processInfo.environment["KEEPSAKE_RELAY"] ?? "http://127.0.0.1:8787"

    func client() throws -> RelayClient {
        guard let url = URL(string: relay), url.scheme == "http" || url.scheme == "https" else {
            throw ValidationError("'\(relay)' is not an http(s) URL")
        }
        return RelayClient(baseURL: url)
    }

    func messenger(for store: Store) throws -> Messenger { Messenger(store: store, relay: try client()) }
}

struct AccountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account",
        abstract: "Manage account keys.",
        subcommands: [Create.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an account key file and print the account ID.",
            discussion: """
            The key file (32 bytes, readable by you only) grants and revokes installations, \
            like a wallet. Keep it safe; the account ID is its public half.
            """
        )

        @Option(help: ArgumentHelp("Where to write the new key; never overwritten.", valueName: "file"))
        var keyFile: String

        func run() throws {
            let file = URL(fileURLWithPath: keyFile)
            guard !FileManager.default.fileExists(atPath: file.path) else { throw ValidationError("\(keyFile) exists; not overwriting it") }
            let key = try AccountKey.generate()
            try key.write(to: file)
            print(key.id)
        }
    }
}

struct InstallationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "installation",
        abstract: "Grant, list and revoke an account's installations.",
        subcommands: [Add.self, List.self, Revoke.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Join this store's installation to an account and publish its bundle and prekeys.")

        @OptionGroup var location: StoreLocation
        @OptionGroup var relay: RelayLocation
        @Option(help: ArgumentHelp("The account key file.", valueName: "file"))
        var accountKey: String
        @Option(help: "A name for this installation, shown in installation lists.")
        var role = ""

        func run() async throws {
            let store = try location.open(create: true)
            let membership = try await relay.messenger(for: store).join(AccountKey.read(from: URL(fileURLWithPath: accountKey)), role: role)
            print("installation \(membership.installation) joined account \(membership.account)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an account's installations, as the relay publishes them.")

        @OptionGroup var location: StoreLocation
        @OptionGroup var relay: RelayLocation
        @OptionGroup var format: OutputFormat
        @Argument(help: "The account ID (default: this store's account).")
        var account: String?

        func run() async throws {
            let store = try location.open()
            let messenger = try relay.messenger(for: store)
            guard let account = try account.map(AccountID.init(rawValue:)) ?? store.membership()?.account else { throw MessagingError.notJoined }
            let installations = try await messenger.installations(of: account)
            if format.json {
                printJSON(installations.map { i -> [String: Any] in
                    ["id": i.id.description, "role": i.role, "createdAt": i.createdAt.iso8601, "revoked": i.revokedAt != nil]
                })
            } else {
                for i in installations {
                    print("\(i.id)  \(i.role.isEmpty ? "-" : i.role)  created \(i.createdAt.iso8601)\(i.revokedAt.map { "  revoked \($0.iso8601)" } ?? "")")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an installation of the account: its messages from now on are refused.")

        @OptionGroup var location: StoreLocation
        @OptionGroup var relay: RelayLocation
        @Option(help: ArgumentHelp("The account key file.", valueName: "file"))
        var accountKey: String
        @Argument(help: "The installation to revoke.")
        var installation: InstallationID

        func run() async throws {
            let store = try location.open()
            try await relay.messenger(for: store).revoke(installation, with: AccountKey.read(from: URL(fileURLWithPath: accountKey)))
            print("revoked \(installation)")
        }
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a text to a conversation or, by account ID, in the direct conversation with that account.")

    @OptionGroup var location: StoreLocation
    @OptionGroup var relay: RelayLocation
    @OptionGroup var format: OutputFormat
    @Argument(help: "A conversation ID (32 hex digits) or an account ID (64 hex digits).")
    var to: String
    @Argument(help: "The text.")
    var text: String

    func run() async throws {
        let store = try location.open()
        let messenger = try relay.messenger(for: store)
        let receipt: SendReceipt
        if let conversation = ConversationID(to) {
            receipt = try await messenger.send(text, to: conversation)
        } else {
            receipt = try await messenger.send(text, toAccount: AccountID(to))
        }
        if format.json {
            printJSON(["message": receipt.message.description, "conversation": receipt.conversation.description,
                       "envelopes": receipt.envelopes, "pending": receipt.pending, "unreachable": receipt.unreachable])
        } else {
            print("sent \(receipt.message) in \(receipt.conversation) to \(receipt.envelopes) installation(s)"
                  + (receipt.pending > 0 ? ", \(receipt.pending) waiting for the relay" : "")
                  + (receipt.unreachable > 0 ? ", \(receipt.unreachable) without prekeys" : ""))
        }
    }
}

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pull this installation's inbox from the relay and process it.")

    @OptionGroup var location: StoreLocation
    @OptionGroup var relay: RelayLocation
    @OptionGroup var format: OutputFormat
    @Flag(help: "Keep following the inbox (server-sent events) and print each sync that brings something; stop with Ctrl-C.")
    var follow = false

    func run() async throws {
        let store = try location.open()
        let messenger = try relay.messenger(for: store)
        guard follow else { return show(try await messenger.sync()) }
        for try await report in messenger.live() {
            show(report)
            flushOutput()
        }
    }

    private func show(_ report: SyncReport) {
        if format.json {
            printJSON(["received": report.received.map(\.description), "duplicates": report.duplicates, "published": report.published,
                       "historyRequests": report.historyRequests.map(\.description), "historyApplied": report.historyApplied.map(\.description),
                       "historyFailures": report.historyFailures.map(\.description),
                       "commits": report.commits, "retransmissionsRequested": report.retransmissionsRequested, "resent": report.resent,
                       "resealed": report.resealed, "expiredEnvelopes": report.expiredEnvelopes,
                       "rejected": report.rejected.map { ["cursor": $0.cursor, "reason": $0.reason.description] },
                       "prekeys": report.prekeys.map {
                           ["oneTimeRemaining": $0.oneTimeRemaining, "oneTimeServedLastHour": $0.oneTimeServedLastHour,
                            "fallbackServedLastHour": $0.fallbackServedLastHour] as Any
                       } ?? NSNull()])
        } else {
            print("received \(report.received.count), commits \(report.commits), duplicates \(report.duplicates), rejected \(report.rejected.count)"
                  + (report.retransmissionsRequested > 0 ? ", asked \(report.retransmissionsRequested) sender(s) to resend" : "")
                  + (report.resent > 0 ? ", resent \(report.resent)" : "")
                  + (report.resealed > 0 ? ", sealed again \(report.resealed) text(s) that waited too long to send" : "")
                  + (report.expiredEnvelopes > 0 ? ", dropped \(report.expiredEnvelopes) envelope(s) that waited too long to send" : ""))
            for id in report.historyRequests { print("  history request \(id): approve with `keepsake history approve \(id) --pin <PIN>`") }
            for id in report.historyApplied { print("  history imported (request \(id))") }
            for failure in report.historyFailures { print("  history answer refused: \(failure)") }
            for rejected in report.rejected { print("  envelope \(rejected.cursor): \(rejected.reason)") }
            if let stock = report.prekeys, stock.oneTimeServedLastHour + stock.fallbackServedLastHour > 0 {
                print("  prekeys on the relay: \(stock.oneTimeRemaining) one-time left; served in the last hour: "
                      + "\(stock.oneTimeServedLastHour) one-time, \(stock.fallbackServedLastHour) fallback")
            }
        }
    }
}

struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "Create groups and change their members (each change is a commit, epoch n to n + 1).",
        subcommands: [Create.self, Add.self, Remove.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a group with other accounts; prints its conversation ID.")

        @OptionGroup var location: StoreLocation
        @OptionGroup var relay: RelayLocation
        @Option(help: "The group's title.")
        var title: String
        @Argument(help: "Account IDs of the other members.")
        var members: [String]

        func run() async throws {
            let store = try location.open()
            print(try await relay.messenger(for: store).createGroup(title: title, members: members.map(AccountID.init(rawValue:))))
        }
    }

    /// What adding and removing members share.
    struct Change: ParsableArguments {
        @OptionGroup var location: StoreLocation
        @OptionGroup var relay: RelayLocation
        @Argument(help: "The group's conversation ID.")
        var group: ConversationID
        @Argument(help: "Account IDs.")
        var accounts: [String]

        func messenger() throws -> Messenger { try relay.messenger(for: try location.open()) }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add accounts to a group; prints the new epoch.")
        @OptionGroup var change: Change

        func run() async throws {
            print("epoch \(try await change.messenger().addMembers(change.accounts.map(AccountID.init(rawValue:)), to: change.group))")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove accounts from a group; prints the new epoch.")
        @OptionGroup var change: Change

        func run() async throws {
            print("epoch \(try await change.messenger().removeMembers(change.accounts.map(AccountID.init(rawValue:)), from: change.group))")
        }
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Move message history between installations of one account (XIP-31).",
        discussion: """
        On the new installation: `history request`, and note the PIN. On an old one: `sync`, then \
        `history approve <request> --pin <PIN>` (or `deny`). Back on the new one: `sync` imports \
        the history; `history status` shows each request.
        """,
        subcommands: [Request.self, Pending.self, Approve.self, Deny.self, Status.self]
    )

    struct Request: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask the account's other installations for their history; prints the PIN.")
        @OptionGroup var location: StoreLocation
        @OptionGroup var relay: RelayLocation

        func run() async throws {
            let requests = try await relay.messenger(for: try location.open()).requestHistory()
            print("PIN \(requests[0].pin): approve on another installation of this account (keepsake history approve <request> --pin \(requests[0].pin))")
            for request in requests { print("request \(request.id) to installation \(request.peer)") }
        }
    }

    struct Pending: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "History requests waiting for this installation's answer (run `sync` first).")
        @OptionGroup var location: StoreLocation

        func run() throws {
            let pending = try location.open().historyRequests(role: .provider).filter { $0.status == .pending }
            if pending.isEmpty { print("no pending history requests") }
            for request in pending { print("\(request.id)  PIN \(request.pin)  from installation \(request.peer)  \(request.createdAt.iso8601)") }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a history request: upload this installation's history for it.",
            discussion: "The PIN must be the one the requesting device shows; without --pin it is asked for on a terminal.")
        @OptionGroup var location: StoreLocation
        @OptionGroup var relay: RelayLocation
        @Argument(help: "The request ID.") var request: HistoryRequestID
        @Option(help: "The PIN the requesting device shows.") var pin: String?

        func run() async throws {
            let store = try location.open()
            guard let pending = try store.historyRequest(request), pending.role == .provider else { throw HistorySyncError.unknownRequest(request) }
            var typed = pin
            if typed == nil, isatty(STDIN_FILENO) == 1 {
                print("Type the PIN the requesting device shows: ", terminator: "")
                flushOutput()
                typed = readLine()?.trimmingCharacters(in: .whitespaces)
            }
            guard let typed else { throw ValidationError("pass --pin with the PIN the requesting device shows") }
            guard typed == pending.pin else { throw ValidationError("the PIN does not match this request; nothing was sent") }
            try await relay.messenger(for: store).approveHistoryRequest(request)
            print("answered \(request): the history is on its way")
        }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a history request.")
        @OptionGroup var location: StoreLocation
        @OptionGroup var relay: RelayLocation
        @Argument(help: "The request ID.") var request: HistoryRequestID

        func run() async throws {
            try await relay.messenger(for: try location.open()).denyHistoryRequest(request)
            print("denied \(request)")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "This installation's history requests and what became of them.")
        @OptionGroup var location: StoreLocation
        @OptionGroup var format: OutputFormat

        func run() throws {
            let requests = try location.open().historyRequests()
            if format.json {
                printJSON(requests.map {
                    ["id": $0.id.description, "role": $0.role == .requester ? "requester" : "provider", "peer": $0.peer.description,
                     "pin": $0.pin, "status": $0.status.description, "reason": $0.reason]
                })
            } else {
                for r in requests {
                    print("\(r.id)  \(r.role == .requester ? "asked" : "asked by") \(r.peer)  PIN \(r.pin)  \(r.status)\(r.reason.isEmpty ? "" : ": \(r.reason)")")
                }
            }
        }
    }
}
