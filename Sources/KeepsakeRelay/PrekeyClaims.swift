import Foundation
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
    let storage: any RelayStore
    let limits: Relay.Limits

    /// A prekey of `target` for the installation that signed `authentication`:
    /// a one-time prekey (its key then forgotten) or the newest fallback; nil when it has none.
    func claim(of target: [UInt8], authentication: RequestAuthentication, now: Int64) async throws -> ServedPrekey? {
        let request = try await RequestChecks(storage: storage).verify(
            authentication, method: "POST", path: Topic.prekey(installation: target).path + "/claim", emptyBody: true, now: now)
        return try await storage.claimPrekey(request, of: target, limits: limits)
    }

    /// The target's own view of its prekeys: how many one-time prekeys are left
    /// and how many of each kind were served in the last hour.
    func stock(of target: [UInt8], authentication: RequestAuthentication, now: Int64) async throws -> PrekeyStock {
        let request = try await RequestChecks(storage: storage).verify(
            authentication, method: "GET", path: Topic.prekey(installation: target).path, emptyBody: true, now: now)
        guard authentication.installation == target else {
            throw RelayError(.forbidden, code: "not_your_prekeys", "only the installation itself may read its prekey stock")
        }
        return try await storage.prekeyStock(request)
    }
}

/// A signed request's checks before its transaction: a known, unrevoked
/// installation signed this method and path (over an empty body when it has
/// none), within `RequestAuthentication.window` of the relay's clock. The
/// store then checks revocation again and uses the nonce, in the transaction.
struct RequestChecks: Sendable {
    let storage: any RelayStore

    func verify(_ auth: RequestAuthentication, method: String, path: String, emptyBody: Bool = false, now: Int64) async throws -> SignedRequest {
        guard let known = try await storage.installationKey(auth.installation) else { throw RelayRules.unknownInstallation }
        guard !known.revoked else { throw RelayError.revoked }
        guard auth.verify(method: method, path: path, signingKey: known.signingKey) else {
            throw RelayError(.unauthorized, code: "bad_signature", "the request signature does not verify")
        }
        guard abs(auth.timestamp - now) <= RequestAuthentication.window else {
            throw RelayError(.unauthorized, code: "stale_request", "the request's timestamp is more than 5 minutes from the relay's clock")
        }
        if emptyBody, auth.contentDigest != RequestAuthentication.emptyBodyDigest {
            throw RelayError(.badRequest, code: "digest_mismatch", "this request has no body: sign the BLAKE2b-256 of the empty string")
        }
        return SignedRequest(installation: auth.installation, nonce: auth.nonce, now: now)
    }
}
