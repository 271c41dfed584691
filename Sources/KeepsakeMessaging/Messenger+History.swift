import Foundation
import KeepsakeCrypto
import KeepsakeStore
import KeepsakeTransport
import KeepsakeWire

/// Message history sync between installations of one account (XIP-31): a new
/// installation asks the others; one approves (the user compares the PIN),
/// uploads a soft backup of its messages, conversations, consent and
/// preferences under a one-time key to the backup provider, and answers with
/// the key, the file's hash and its URL; the new installation downloads,
/// checks and imports it through the same restore path as backup files, so
/// nothing is ever imported twice. Keys are never logged.
extension Messenger {
    /// Asks every other unrevoked installation of this account for its history;
    /// one request each, all with the same PIN to show the user.
    public func requestHistory() async throws -> [HistoryRequest] {
        try await exclusive {
            let me = try requireMembership()
            let others = try await refreshedInstallations(of: me.account).filter { $0.revokedAt == nil && $0.id != me.installation }
            guard !others.isEmpty else { throw HistorySyncError.noOtherInstallations }
            let pin = UInt32.random(in: 0..<10_000)
            let uploadURL = relay.backupUploadURL
            var ids: [HistoryRequestID] = []
            for peer in others {
                let id = HistoryRequestID(bytes: Random.bytes(16))!
                let content = Content.with {
                    $0.historyRequest = .with {
                        $0.requestID = Data(id.bytes)
                        $0.verificationPin = pin
                        $0.uploadURL = uploadURL.absoluteString
                    }
                }
                let event = HistoryRequestChanged(id, role: .requester, peer: peer.id, pin: pin, uploadURL: uploadURL.absoluteString, status: .pending)
                _ = try await deliver(content, in: nil, to: [peer], logging: [EventDraft(.historyRequest(event))])
                ids.append(id)
            }
            return try ids.compactMap { try store.historyRequest($0) }
        }
    }

    /// Approves a request another installation of this account made: uploads a
    /// soft backup under a one-time key and sends the answer. Check the PIN
    /// with the user first.
    public func approveHistoryRequest(_ id: HistoryRequestID) async throws {
        try await exclusive { try await answerHistoryRequest(id) }
    }

    /// Refuses a request; nothing is sent.
    public func denyHistoryRequest(_ id: HistoryRequestID, reason: String = "refused by the user") async throws {
        try await exclusive { try refuseHistoryRequest(id, reason: reason) }
    }

    func refuseHistoryRequest(_ id: HistoryRequestID, reason: String) throws {
        let request = try pendingRequest(id, role: .provider)
        try store.append(.historyRequest(HistoryRequestChanged(request, status: .denied, reason: reason)))
    }

    private func pendingRequest(_ id: HistoryRequestID, role: HistoryRequest.Role) throws -> HistoryRequest {
        guard let request = try store.historyRequest(id), request.role == role else { throw HistorySyncError.unknownRequest(id) }
        guard request.status == .pending else { throw HistorySyncError.notPending(id, request.status) }
        return request
    }

    func answerHistoryRequest(_ id: HistoryRequestID) async throws {
        let me = try requireMembership()
        let request = try pendingRequest(id, role: .provider)
        let peers = try await refreshedInstallations(of: me.account)
        guard let peer = peers.first(where: { $0.id == request.peer }), peer.revokedAt == nil else {
            try store.append(.historyRequest(HistoryRequestChanged(request, status: .denied, reason: "the requesting installation was revoked")))
            throw HistorySyncError.requesterNotTrusted(id)
        }
        let folder = store.directory.appendingPathComponent("history-\(id)")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = try SecureBytes.random(count: 32)
        var options = BackupOptions(kind: .soft, key: .raw(key))
        options.elements = [.messages, .conversations, .consent, .preferences]
        options.startsChain = false
        let summary = try store.backup(into: folder, options: options)
        let digest = try Blake2b.hash(contentsOf: summary.file)
        let authentication = try store.authenticateRequest(method: "POST", path: request.uploadURL.path, contentDigest: digest)
        let stored: StoredBackup
        do {
            stored = try await relay.uploadBackup(
                summary.file, to: request.uploadURL, authentication: authentication,
                options: BackupUploadOptions(lifetime: self.options.historyLifetime, deleteAfterDownload: true))
        } catch {
            throw HistorySyncError.upload("\(error)")
        }
        var content = Content.with {
            $0.historyResponse = .with {
                $0.requestID = Data(id.bytes)
                $0.backupURL = stored.url.absoluteString
                $0.backupKey = key.withUnsafeBytes { Data($0) }
                $0.backupFileHash = Data(stored.digest)
                $0.expiresAtMs = stored.expiresAt.millis
            }
        }
        defer { content.historyResponse.backupKey.resetBytes(in: 0..<content.historyResponse.backupKey.count) }
        _ = try await deliver(content, in: nil, to: [peer], logging: [EventDraft(.historyRequest(HistoryRequestChanged(request, status: .answered)))])
    }

    /// Applies an answer to one of this installation's requests: the checks of
    /// the XIP in order, then the import. A failure marks the request failed
    /// (or expired) with its reason; an answer to no pending request of ours is ignored.
    func applyHistoryResponse(_ response: HistoryResponse, from sender: KnownInstallation) async throws {
        guard let id = HistoryRequestID(bytes: response.requestID) else { throw EnvelopeRejection.malformed("history answer") }
        let request = try pendingRequest(id, role: .requester)
        do {
            guard request.peer == sender.id else { throw HistorySyncError.wrongResponder(id) }
            guard let url = URL(string: response.backupURL), url.host == request.uploadURL.host, url.port == request.uploadURL.port,
                  url.scheme == request.uploadURL.scheme else {
                throw HistorySyncError.differentHost(expected: request.uploadURL.host ?? "", found: URL(string: response.backupURL)?.host ?? response.backupURL)
            }
            guard Date().millis < response.expiresAtMs else { throw HistorySyncError.expired }
            let file = store.directory.appendingPathComponent("history-\(id).ksbak")
            try? FileManager.default.removeItem(at: file)
            defer { try? FileManager.default.removeItem(at: file) }
            do { try await relay.downloadBackup(from: url, to: file) } catch {
                throw "\(error)".contains("no_backup") ? HistorySyncError.expired : HistorySyncError.download("\(error)")
            }
            guard try Blake2b.hash(contentsOf: file) == Array(response.backupFileHash) else { throw HistorySyncError.hashMismatch }
            let key = try SecureBytes(copying: response.backupKey)
            do { _ = try store.restore(from: [file], options: RestoreOptions(key: .raw(key))) } catch {
                throw HistorySyncError.restore("\(error)")
            }
            try store.append(.historyRequest(HistoryRequestChanged(request, status: .applied)))
        } catch let error as HistorySyncError {
            let status: HistoryRequest.Status = error == .expired ? .expired : .failed
            try store.append(.historyRequest(HistoryRequestChanged(request, status: status, reason: error.description)))
            throw error
        }
    }

    /// Marks this installation's requests that got no answer in time as expired.
    func expireHistoryRequests() throws {
        let limit = Date().addingTimeInterval(-Double(options.historyLifetime.components.seconds))
        try store.append(contentsOf: try store.historyRequests(role: .requester).filter { $0.status == .pending && $0.createdAt < limit }.map {
            EventDraft(.historyRequest(HistoryRequestChanged($0, status: .expired, reason: "no answer within the request's lifetime")))
        })
    }
}
