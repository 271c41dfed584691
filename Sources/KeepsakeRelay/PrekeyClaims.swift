import Foundation
import GRDB
import KeepsakeCrypto
import KeepsakeTransport
import KeepsakeWire

/// Who may take an installation's prekeys, and how fast (docs/PROTOCOL.md §2).
///
/// A claim is a request signed by a known, unrevoked installation
/// (`RequestAuthentication` for `POST /v1/topics/prekey-<target>/claim`, over
/// the digest of the empty body), each nonce accepted once. Served claims are
/// counted for an hour:
/// - one requester takes at most `Relay.Limits.prekeyClaimsPerRequester` prekeys in
///   all and `prekeyClaimsPerPair` of one target, else 429 `rate_limited`;
/// - one target's prekeys are served at most `prekeyClaimsPerTarget` times, else
///   429 `target_rate_limited`;
/// - at most `oneTimePrekeysPerTarget` of those are one-time prekeys: beyond, claims
///   get the fallback prekey, so many claimants together cannot drain the one-time ones.
///
/// Only the target itself may read its stock and how fast its prekeys go.
struct PrekeyClaims: Sendable {
    let storage: RelayStorage
    let limits: Relay.Limits

    static let hour: Int64 = 3_600_000

    /// A prekey of `target` for the installation that signed `authentication`:
    /// a one-time prekey (its key then forgotten) or the newest fallback; nil when it has none.
    func claim(of target: [UInt8], authentication: RequestAuthentication, now: Int64) throws -> (data: Data, fallback: Bool)? {
        try storage.database.write { db in
            try check(authentication, method: "POST", path: Topic.prekey(installation: target).path + "/claim", now: now, db)
            let since = now - Self.hour
            try db.execute(sql: "DELETE FROM prekey_claims WHERE at <= ?", arguments: [since])
            let requester = Data(authentication.installation), targetID = Data(target)
            let byRequester = try count(db, "requester = ?", [requester])
            guard byRequester < limits.prekeyClaimsPerRequester else {
                throw RelayError(.tooManyRequests, code: "rate_limited",
                                 "an installation may claim at most \(limits.prekeyClaimsPerRequester) prekeys per hour; try again later")
            }
            guard try count(db, "requester = ? AND target = ?", [requester, targetID]) < limits.prekeyClaimsPerPair else {
                throw RelayError(.tooManyRequests, code: "rate_limited", """
                    an installation may claim at most \(limits.prekeyClaimsPerPair) prekeys of one installation per hour; \
                    keep using the session started with the last one
                    """)
            }
            guard try count(db, "target = ?", [targetID]) < limits.prekeyClaimsPerTarget else {
                throw RelayError(.tooManyRequests, code: "target_rate_limited",
                                 "this installation's prekeys were claimed \(limits.prekeyClaimsPerTarget) times in the last hour; try again later")
            }
            let oneTimeAllowed = try count(db, "target = ? AND fallback = 0", [targetID]) < limits.oneTimePrekeysPerTarget
            guard let served = try serve(targetID, oneTime: oneTimeAllowed, db) else { return nil }
            try db.execute(sql: "INSERT INTO prekey_claims (requester, target, at, fallback) VALUES (?, ?, ?, ?)",
                           arguments: [requester, targetID, now, served.fallback])
            return served
        }
    }

    /// The target's own view of its prekeys: how many one-time prekeys are left
    /// and how many of each kind were served in the last hour.
    func stock(of target: [UInt8], authentication: RequestAuthentication, now: Int64) throws -> PrekeyStock {
        try storage.database.write { db in
            try check(authentication, method: "GET", path: Topic.prekey(installation: target).path, now: now, db)
            guard authentication.installation == target else {
                throw RelayError(.forbidden, code: "not_your_prekeys", "only the installation itself may read its prekey stock")
            }
            let since = now - Self.hour, targetID = Data(target)
            return PrekeyStock(
                oneTimeRemaining: try storage.oneTimePrekeys(of: target, db),
                oneTimeServedLastHour: try count(db, "target = ? AND fallback = 0 AND at > ?", [targetID, since]),
                fallbackServedLastHour: try count(db, "target = ? AND fallback = 1 AND at > ?", [targetID, since]))
        }
    }

    /// A signed request's checks: a known, unrevoked installation signed this
    /// method and path, recently, over an empty body, with a nonce not seen before.
    private func check(_ authentication: RequestAuthentication, method: String, path: String, now: Int64, _ db: Database) throws {
        try storage.checkSignature(authentication, method: method, path: path, now: now, db)
        guard authentication.contentDigest == RequestAuthentication.emptyBodyDigest else {
            throw RelayError(.badRequest, code: "digest_mismatch", "this request has no body: sign the BLAKE2b-256 of the empty string")
        }
        try storage.use(nonce: authentication.nonce, now: now, db)
    }

    private func count(_ db: Database, _ condition: String, _ arguments: StatementArguments) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM prekey_claims WHERE \(condition)", arguments: arguments) ?? 0
    }

    /// Serves a one-time prekey (when `oneTime` and one is left) and forgets its
    /// key (its ID stays, so a re-upload never serves it again), or else the newest fallback (kept).
    private func serve(_ target: Data, oneTime: Bool, _ db: Database) throws -> (data: Data, fallback: Bool)? {
        if oneTime, let row = try Row.fetchOne(db, sql: """
            SELECT prekey_id, data FROM prekeys WHERE installation = ? AND fallback = 0 AND data IS NOT NULL
            ORDER BY uploaded LIMIT 1
            """, arguments: [target]) {
            try db.execute(sql: "UPDATE prekeys SET data = NULL WHERE installation = ? AND prekey_id = ?",
                           arguments: [target, row["prekey_id"] as Int64])
            return (row["data"], false)
        }
        return try Data.fetchOne(db, sql: """
            SELECT data FROM prekeys WHERE installation = ? AND fallback = 1 AND data IS NOT NULL ORDER BY uploaded DESC LIMIT 1
            """, arguments: [target]).map { ($0, true) }
    }
}
