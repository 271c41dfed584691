import Foundation
import GRDB
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// Tags `Identifier` as a history request ID.
public enum HistoryRequestTag {}
/// Identifies a history sync request (16 random bytes).
public typealias HistoryRequestID = Identifier<HistoryRequestTag>

/// A history sync request (XIP-31), as this store knows it.
public struct HistoryRequest: Sendable, Equatable {
    /// Which side of the request this store is.
    public enum Role: Int, Sendable { case requester = 1, provider = 2 }
    /// Where a request stands; only `pending` moves on.
    public enum Status: Int, Sendable, CustomStringConvertible {
        case pending = 1, applied, expired, failed, answered, denied

        /// A short name for display.
        public var description: String {
            switch self {
            case .pending: "pending"
            case .applied: "applied"
            case .expired: "expired"
            case .failed: "failed"
            case .answered: "answered"
            case .denied: "denied"
            }
        }
    }

    /// The request's random ID, the same on both installations.
    public let id: HistoryRequestID
    /// `requester`: this installation asked; `provider`: another installation asked this one.
    public let role: Role
    /// The other installation.
    public let peer: InstallationID
    /// Four digits shown on both devices, so the user approves the right request.
    public let pin: String
    /// Where the provider uploads the history file (the requester's backup provider).
    public let uploadURL: URL
    /// Where the request stands.
    public let status: Status
    /// Why it failed, expired or was denied.
    public let reason: String
    /// When this store first recorded the request.
    public let createdAt: Date
    /// When its status last changed.
    public let updatedAt: Date
}

/// Why a history sync step did not go through (the XIP's create and apply errors).
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum HistorySyncError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The account has no other unrevoked installation to ask.
    case noOtherInstallations
    /// No request with this ID (for this role) exists here.
    case unknownRequest(HistoryRequestID)
    /// The request was already applied, answered, denied, or has failed or expired.
    case notPending(HistoryRequestID, HistoryRequest.Status)
    /// The installation that asked was revoked, or belongs to another account.
    case requesterNotTrusted(HistoryRequestID)
    /// The response came from another installation than the one asked.
    case wrongResponder(HistoryRequestID)
    /// The backup URL is not on the host the request named.
    case differentHost(expected: String, found: String)
    /// The downloaded file is not the one the response describes.
    case hashMismatch
    /// The response or its file expired.
    case expired
    case download(String)
    case upload(String)
    /// The file did not restore.
    case restore(String)

    /// What happened, and what to do.
    public var description: String {
        switch self {
        case .noOtherInstallations: "the account has no other unrevoked installation to ask for history"
        case let .unknownRequest(id): "no history request \(id) here"
        case let .notPending(id, status): "history request \(id) is \(status), not pending"
        case let .requesterNotTrusted(id): "history request \(id) comes from a revoked installation or another account"
        case let .wrongResponder(id): "the answer to history request \(id) came from another installation than the one asked"
        case let .differentHost(expected, found): "the backup is on \(found), not on \(expected) where it was asked to be uploaded"
        case .hashMismatch: "the downloaded history file is not the one the answer describes (hash mismatch)"
        case .expired: "the history backup expired before it was downloaded; ask again"
        case let .download(why): "could not download the history backup: \(why)"
        case let .upload(why): "could not upload the history backup: \(why)"
        case let .restore(why): "could not import the history backup: \(why)"
        }
    }
}

extension Store {
    /// History sync requests, newest first; `role` nil for both kinds.
    public func historyRequests(role: HistoryRequest.Role? = nil) throws(KeepsakeError) -> [HistoryRequest] {
        try readMessaging { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM history_requests WHERE ? IS NULL OR role = ? ORDER BY created_at DESC, request_id
                """, arguments: [role?.rawValue, role?.rawValue]).compactMap(Self.historyRequest)
        }
    }

    /// The history request with this ID, in either role, or nil.
    public func historyRequest(_ id: HistoryRequestID) throws(KeepsakeError) -> HistoryRequest? {
        try readMessaging { db in
            try Row.fetchOne(db, sql: "SELECT * FROM history_requests WHERE request_id = ?", arguments: [Data(id.bytes)])
                .flatMap(Self.historyRequest)
        }
    }

    private static func historyRequest(_ row: Row) -> HistoryRequest? {
        guard let id = HistoryRequestID(bytes: row["request_id"] as Data), let role = HistoryRequest.Role(rawValue: row["role"]),
              let peer = InstallationID(row["peer_installation"] as String), let url = URL(string: row["upload_url"]),
              let status = HistoryRequest.Status(rawValue: row["status"]) else { return nil }
        return HistoryRequest(
            id: id, role: role, peer: peer, pin: String(format: "%04d", row["verification_pin"] as Int), uploadURL: url, status: status,
            reason: row["reason"], createdAt: Date(timeIntervalSince1970: Double(row["created_at"] as Int64) / 1000),
            updatedAt: Date(timeIntervalSince1970: Double(row["updated_at"] as Int64) / 1000))
    }
}

extension HistoryRequestChanged {
    init(_ id: HistoryRequestID, role: HistoryRequest.Role, peer: InstallationID, pin: UInt32, uploadURL: String,
         status: HistoryRequest.Status, reason: String = "") {
        self.init()
        requestID = Data(id.bytes)
        self.role = HistoryRole(rawValue: role.rawValue) ?? .unspecified
        peerInstallation = peer.description
        verificationPin = pin
        self.uploadURL = uploadURL
        self.status = HistoryStatus(rawValue: status.rawValue) ?? .unspecified
        self.reason = reason
    }

    /// The same request with a new status.
    init(_ request: HistoryRequest, status: HistoryRequest.Status, reason: String = "") {
        self.init(request.id, role: request.role, peer: request.peer, pin: UInt32(request.pin) ?? 0,
                  uploadURL: request.uploadURL.absoluteString, status: status, reason: reason)
    }
}

