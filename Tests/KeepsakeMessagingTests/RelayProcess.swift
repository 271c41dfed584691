import AsyncHTTPClient
import Foundation
import Keepsake
import KeepsakeRelay
import KeepsakeRelayClient
import KeepsakeTestServers
import KeepsakeWire
import Testing

/// A temporary directory removed when the value is released.
final class Scratch {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-messaging-\(UUID().uuidString)")

    func path(_ name: String) -> URL { url.appendingPathComponent(name) }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The `keepsake` executable built next to the test bundle.
let keepsakeExecutable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("keepsake")

/// Runs the CLI to completion with `environment` added; returns its status and output.
func keepsake(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
    try runProcess(keepsakeExecutable, arguments, environment: environment)
}

/// Runs `executable` to completion with `environment` added; returns its status, output and errors.
func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// A sealed envelope a message topic accepts, different for each `n` (its send time is now plus `n` ns).
func sampleEnvelope(_ n: Int) throws -> [UInt8] {
    let now = UInt64(Date().timeIntervalSince1970 * 1e9)
    return try Envelope.with { $0.header = Data(try EnvelopeHeader.with { $0.sentNs = now + UInt64(n) }.wireBytes()); $0.ciphertext = Data([1, 2]) }
        .wireBytes()
}

/// A real relay: `keepsake serve --port 0` in its own process on loopback,
/// terminated when the value is released.
final class RelayProcess {
    let process = Process()
    let url: URL
    let data: Scratch

    /// With `descriptorLimit`, the relay runs with that many file descriptors at most (`ulimit -n`);
    /// `environment` is added to the test's own. `onSQLite` keeps the relay on
    /// SQLite in the PostgreSQL pass, for a test that edits its database file.
    /// With `keepingLog`, what it writes to standard error goes to `log()` instead of the test's output.
    init(_ options: [String] = [], data: Scratch = Scratch(), descriptorLimit: Int? = nil, environment: [String: String] = [:],
         onSQLite: Bool = false, keepingLog: Bool = false) throws {
        self.data = data
        if keepingLog {
            try FileManager.default.createDirectory(at: data.url, withIntermediateDirectories: true)
            try Data().write(to: data.path("relay.log"))
            process.standardError = try FileHandle(forWritingTo: data.path("relay.log"))
        }
        var arguments = ["serve", "--port", "0", "--data", data.path("relay").path] + options
        if !onSQLite, let database = try Self.database(for: data, options: options) { arguments += ["--database", database] }
        if let descriptorLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", keepsakeExecutable.path] + arguments
        } else {
            process.executableURL = keepsakeExecutable
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw CocoaError(.fileReadUnknown) }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        url = URL(string: String(text.dropFirst("listening on ".count)))!
    }

    var client: RelayClient { RelayClient(baseURL: url) }

    /// With KEEPSAKE_TEST_RELAY_BACKEND=postgres (`make test`'s second pass), every
    /// relay keeps its data in a PostgreSQL database of its own, on the shared
    /// test server; a relay restarted on the same data folder gets the same database.
    static func database(for data: Scratch, options: [String]) throws -> String? {
        guard ProcessInfo.processInfo.environment["KEEPSAKE_TEST_RELAY_BACKEND"] == "postgres", !options.contains("--database") else { return nil }
        let remembered = data.path("database-url")
        if let url = try? String(contentsOf: remembered, encoding: .utf8) { return url }
        let url = try PostgresServer.shared.get().makeDatabase()
        try FileManager.default.createDirectory(at: data.url, withIntermediateDirectories: true)
        try url.write(to: remembered, atomically: true, encoding: .utf8)
        return url
    }

    /// The status `GET /v1/ready` answers: 200 when the relay's database and blob store answer.
    func readiness() async throws -> UInt {
        try await HTTPClient.shared.execute(HTTPClientRequest(url: url.absoluteString + "/v1/ready"), timeout: .seconds(30)).status.code
    }

    /// What `GET /metrics` answers, by series (name and labels as printed, `name{label="value",…}`).
    func metrics() async throws -> [String: Double] {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url.absoluteString + "/metrics"), timeout: .seconds(30))
        #expect(response.status == .ok && response.headers["content-type"] == ["text/plain; version=0.0.4; charset=utf-8"])
        let text = String(buffer: try await response.body.collect(upTo: 16 << 20))
        return Dictionary(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            return (String(line[..<space]), value)
        }) { $1 }
    }

    /// What the relay has logged so far, when started `keepingLog`.
    func log() throws -> String { try String(contentsOf: data.path("relay.log"), encoding: .utf8) }

    /// Ends the process at once, as a crash would.
    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        waitForExit()
    }

    /// Waits up to 30 s for the process to end. Not `waitUntilExit`: once, in
    /// the whole suite, Foundation missed a relay's exit and that call spun forever.
    private func waitForExit() {
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(10_000) }
    }

    deinit {
        process.terminate()
        waitForExit()
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}

/// A relay the messaging tests talk to: a `keepsake serve` process (end to
/// end, over HTTP) or an `InMemoryRelay` (the same topic rules, no sockets).
protocol TestRelay {
    associatedtype Client: RelayTransport
    var client: Client { get }
}

extension RelayProcess: TestRelay {}

extension InMemoryRelay: TestRelay {
    var client: InMemoryRelay { self }
}

/// One installation: a store and its messenger on the relay.
struct Device {
    let store: Store
    let messenger: Messenger

    init(_ name: String, in scratch: Scratch, relay: some TestRelay, options: Messenger.Options = Messenger.Options()) throws {
        store = try Store.open(at: scratch.path(name))
        messenger = Messenger(store: store, relay: relay.client, options: options)
    }

    /// Texts of a conversation, oldest first.
    func texts(in conversation: ConversationID) throws -> [String] {
        try store.messages(in: conversation, limit: 1_000).messages.reversed().map(\.text)
    }
}

extension RelayTransport {
    /// Claims a prekey of `installation`, signed as `claimant`'s installation.
    func claimPrekey(of installation: [UInt8], as claimant: Store) async throws -> ClaimedPrekey? {
        let path = Topic.prekey(installation: installation).path + "/claim"
        return try await claimPrekey(
            of: installation,
            authentication: claimant.authenticateRequest(method: "POST", path: path, contentDigest: RequestAuthentication.emptyBodyDigest))
    }

    /// The prekey stock of `owner`'s installation, read as the relay allows: signed by it.
    func prekeyStock(of owner: Store) async throws -> PrekeyStock {
        let installation = try #require(try owner.membership()).installation.bytes
        return try await prekeyStock(
            of: installation,
            authentication: owner.authenticateRequest(
                method: "GET", path: Topic.prekey(installation: installation).path, contentDigest: RequestAuthentication.emptyBodyDigest))
    }
}
