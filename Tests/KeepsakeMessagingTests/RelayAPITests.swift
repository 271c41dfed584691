import AsyncHTTPClient
import Foundation
import Keepsake
import KeepsakeCrypto
import KeepsakeWire
import NIOCore
import Testing

/// The relay's HTTP API against its OpenAPI document, and hostile requests.
@Suite struct RelayAPITests {
    let relay: RelayProcess
    let document: [String: Any]

    init() throws {
        relay = try RelayProcess()
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/relay-openapi.json")
        document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// A JSON value with its exact type (booleans are not numbers, integers are not floats).
    enum JSON: Decodable, Equatable {
        case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSON]), object([String: JSON])

        init(from decoder: Decoder) throws {
            let value = try decoder.singleValueContainer()
            if value.decodeNil() { self = .null }
            else if let bool = try? value.decode(Bool.self) { self = .bool(bool) }
            else if let integer = try? value.decode(Int64.self) { self = .integer(integer) }
            else if let number = try? value.decode(Double.self) { self = .number(number) }
            else if let string = try? value.decode(String.self) { self = .string(string) }
            else if let array = try? value.decode([JSON].self) { self = .array(array) }
            else { self = .object(try value.decode([String: JSON].self)) }
        }

        subscript(key: String) -> JSON? { if case let .object(object) = self { object[key] } else { nil } }
        var count: Int? { if case let .array(array) = self { array.count } else { nil } }
    }

    struct Answer {
        let status: Int
        let json: JSON?
        var errorCode: String? { if case let .string(code)? = json?["error"]?["code"] { code } else { nil } }
    }

    func request(_ method: String, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: relay.url.absoluteString + path)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        var buffer = try await response.body.collect(upTo: 16 << 20)
        let bytes = Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        return Answer(status: Int(response.status.code), json: try? JSONDecoder().decode(JSON.self, from: bytes))
    }

    // MARK: - The document

    /// The schema of a documented response, or nil when the status is not documented.
    func responseSchema(_ path: String, _ method: String, _ status: Int) -> [String: Any]? {
        guard let operation = ((document["paths"] as? [String: Any])?[path] as? [String: Any])?[method] as? [String: Any],
              var response = (operation["responses"] as? [String: Any])?[String(status)] as? [String: Any] else { return nil }
        if let ref = response["$ref"] as? String { response = resolve(ref) }
        return ((response["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any]
    }

    func resolve(_ ref: String) -> [String: Any] {
        ref.dropFirst(2).split(separator: "/").reduce(document as Any) { ($0 as? [String: Any])?[String($1)] as Any } as? [String: Any] ?? [:]
    }

    /// Whether `value` matches `schema` (the subset of JSON Schema the document uses).
    func matches(_ value: JSON?, _ schema: [String: Any]) -> Bool {
        if let ref = schema["$ref"] as? String { return matches(value, resolve(ref)) }
        if let options = schema["oneOf"] as? [[String: Any]] { return options.filter { matches(value, $0) }.count == 1 }
        if let allowed = schema["enum"] as? [String] {
            guard case let .string(text)? = value, allowed.contains(text) else { return false }
        }
        if let constant = schema["const"] as? String, value != .string(constant) { return false }
        switch (schema["type"] as? String, value) {
        case let ("object", .object(object)?):
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            guard Set(object.keys).isSubset(of: properties.keys) else { return false }
            guard (schema["required"] as? [String] ?? []).allSatisfy({ object[$0] != nil }) else { return false }
            return object.allSatisfy { key, item in matches(item, properties[key] ?? [:]) }
        case let ("array", .array(array)?):
            return array.allSatisfy { matches($0, schema["items"] as? [String: Any] ?? [:]) }
        case let ("integer", .integer(number)?):
            return (schema["minimum"] as? Int).map { number >= $0 } ?? true
        case ("string", .string?), ("boolean", .bool?), (nil, _):
            return true
        default:
            return false
        }
    }

    /// Sends a request, checks its status is documented and its body matches the documented schema.
    @discardableResult
    func documented(
        _ method: String, _ path: String, template: String, body: [UInt8]? = nil, headers: [(String, String)] = []
    ) async throws -> Answer {
        let answer = try await request(method, path, body: body, headers: headers)
        let schema = responseSchema(template, method.lowercased(), answer.status)
        #expect(schema != nil, "\(method) \(path) answered \(answer.status), which the document does not list")
        if let schema { #expect(matches(answer.json, schema), "\(method) \(path) \(answer.status): \(String(describing: answer.json))") }
        return answer
    }

    // MARK: - Fixtures

    let account = try! SigningKey.generate()
    let installationKey = try! SigningKey.generate()
    let installation = Random.bytes(16)
    var accountID: String { AccountIdentity.of(publicKey: account.publicKey) }

    func bundle(signedBy signer: SigningKey? = nil) throws -> [UInt8] {
        let bundle = ContactBundle.with {
            $0.accountKey = Data(account.publicKey)
            $0.installationID = Data(installation)
            $0.signingKey = Data(installationKey.publicKey)
            $0.identityKey = Data(try! KeyAgreementKey.generate().publicKey)
            $0.createdAtMs = 1
        }
        var signed = try SignedContactBundle.signing(bundle, with: account)
        if let signer { signed.signature = Data(SignaturePurpose.contactBundle.sign(try bundle.wireBytes(), with: signer)) }
        return try signed.wireBytes()
    }

    /// Signature headers for a request without a body, by `key` as `installation` (the fixture's by default).
    func signed(_ method: String, _ path: String, by key: SigningKey? = nil, as installation: [UInt8]? = nil) -> [(String, String)] {
        RequestAuthentication.sign(method: method, path: path, installation: installation ?? self.installation,
                                   contentDigest: RequestAuthentication.emptyBodyDigest, with: key ?? installationKey).headers
    }

    func prekeyUpload(count: Int, fallback: Bool = true) throws -> [UInt8] {
        try PrekeyUpload.with {
            $0.contact = try SignedContactBundle(serializedBytes: bundle())
            $0.prekeys = try (0..<count).map { index in
                try SignedPrekey.signing(Prekey.with {
                    $0.installationID = Data(installation)
                    $0.prekeyID = UInt32(index + 1)
                    $0.publicKey = Data(try KeyAgreementKey.generate().publicKey)
                    $0.fallback = fallback && index == count - 1
                }, with: installationKey)
            }
        }.wireBytes()
    }

    // MARK: - Tests

    @Test func everyEndpointAnswersAsDocumented() async throws {
        let contact = "/v1/topics/contact-\(accountID)"
        let prekeys = "/v1/topics/\(Topic.prekey(installation: installation).name)"
        let inbox = "/v1/topics/\(Topic.message(installation: installation).name)"
        try await documented("GET", "/v1/health", template: "/v1/health")
        #expect(try await documented("GET", "/v1/ready", template: "/v1/ready").json?["status"] == .string("ready"))
        #expect(try await documented("POST", contact, template: "/v1/topics/{topic}", body: bundle()).status == 201)
        let page = try await documented("GET", contact + "?after=0&limit=10", template: "/v1/topics/{topic}")
        #expect(page.json?["items"]?.count == 1)
        #expect(try await documented("POST", prekeys, template: "/v1/topics/{topic}", body: prekeyUpload(count: 3)).status == 200)
        let stock = try await documented("GET", prekeys, template: "/v1/topics/{topic}", headers: signed("GET", prekeys))
        #expect(stock.json?["oneTimeRemaining"] == .integer(2))
        #expect(try await documented("GET", prekeys, template: "/v1/topics/{topic}").errorCode == "unauthenticated")
        #expect(try await documented("POST", prekeys + "/claim", template: "/v1/topics/{topic}/claim",
                                     headers: signed("POST", prekeys + "/claim")).status == 200)
        #expect(try await documented("POST", prekeys + "/claim", template: "/v1/topics/{topic}/claim").errorCode == "unauthenticated")
        #expect(try await documented("POST", inbox + "/claim", template: "/v1/topics/{topic}/claim").errorCode == "not_a_prekey_topic")
        #expect(try await documented("GET", contact + "?limit=0", template: "/v1/topics/{topic}").errorCode == "bad_parameter")
        let claim = try CommitClaim.with { $0.epoch = 2; $0.commitDigest = Data(Random.bytes(32)) }.wireBytes()
        let commits = "/v1/topics/\(Topic.commits(group: Random.bytes(32)).name)"
        let ahead = try await documented("POST", commits, template: "/v1/topics/{topic}", body: claim)
        #expect(ahead.errorCode == "epoch_ahead", "epoch 2 before any claim is ahead, not taken")
        let first = try CommitClaim.with { $0.epoch = 1; $0.commitDigest = Data(Random.bytes(32)) }.wireBytes()
        #expect(try await documented("POST", commits, template: "/v1/topics/{topic}", body: first).status == 201)
        let rival = try CommitClaim.with { $0.epoch = 1; $0.commitDigest = Data(Random.bytes(32)) }.wireBytes()
        #expect(try await documented("POST", commits, template: "/v1/topics/{topic}", body: rival).errorCode == "epoch_taken")
        #expect(try await documented("GET", prekeys + "/events", template: "/v1/topics/{topic}/events").errorCode == "not_subscribable")
        #expect(try await documented("GET", "/v1/backups?locator=\(Hex.encode(Random.bytes(32)))", template: "/v1/backups").status == 200)
        #expect(try await documented("GET", "/v1/backups?locator=xyz", template: "/v1/backups").errorCode == "bad_locator")
        #expect(try await documented("POST", "/v1/backups", template: "/v1/backups", body: [1, 2]).errorCode == "unauthenticated")
        #expect(try await documented("GET", "/v1/backups/\(Hex.encode(Random.bytes(32)))", template: "/v1/backups/{id}").errorCode == "no_backup")
        #expect(try await documented("GET", "/v1/backups/nope", template: "/v1/backups/{id}").errorCode == "bad_id")
        let empty = "/v1/topics/\(Topic.prekey(installation: Random.bytes(16)).name)/claim"
        #expect(try await documented("POST", empty, template: "/v1/topics/{topic}/claim", headers: signed("POST", empty)).errorCode == "no_prekeys")
    }

    /// `/metrics` counts requests by route pattern and status (refusals too),
    /// times them, counts publishes by topic kind, and declares the upload and
    /// storage-failure counters before anything happens.
    @Test func metricsCountRequestsPublishesAndRefusals() async throws {
        let before = try await relay.metrics()
        #expect(before["keepsake_relay_backup_uploads_total"] == 0 && before["keepsake_relay_storage_failures_total"] == 0)
        let contact = "/v1/topics/contact-\(accountID)"
        #expect(try await request("POST", contact, body: bundle()).status == 201)
        #expect(try await request("POST", contact, body: [1, 2, 3]).status == 400)
        #expect(try await request("GET", "/v1/nowhere/\(accountID)").status == 404)
        #expect(try await request("DELETE", contact).status == 405)

        let after = try await relay.metrics()
        #expect(after[#"keepsake_relay_publishes_total{kind="contact"}"#] == 1)
        #expect(after[#"keepsake_relay_requests_total{method="POST",route="/v1/topics/*",status="201"}"#] == 1)
        #expect(after[#"keepsake_relay_requests_total{method="POST",route="/v1/topics/*",status="400"}"#] == 1)
        #expect(after[#"keepsake_relay_requests_total{method="GET",route="unmatched",status="404"}"#] == 1, "paths never become labels")
        #expect(after[#"keepsake_relay_requests_total{method="DELETE",route="/v1/topics/*",status="405"}"#] == 1)
        #expect(after[#"keepsake_relay_request_duration_seconds_count{method="POST",route="/v1/topics/*"}"#] == 2)
        #expect(after[#"keepsake_relay_requests_total{method="GET",route="/metrics",status="200"}"#] == 1, "the first scrape")
        #expect(!after.keys.contains { $0.contains(accountID) }, "no topic or account is ever a label")
    }

    /// Over HTTP, a requester's seventh claim of one installation within the
    /// hour gets 429 (the client's `PrekeyClaimLimited`) and takes nothing.
    @Test func claimsOverTheLimitAre429AndTakeNothing() async throws {
        let prekeys = "/v1/topics/\(Topic.prekey(installation: installation).name)"
        #expect(try await request("POST", prekeys, body: prekeyUpload(count: 10)).status == 200)
        for _ in 0..<6 {
            #expect(try await request("POST", prekeys + "/claim", headers: signed("POST", prekeys + "/claim")).status == 200)
        }
        let refused = try await documented("POST", prekeys + "/claim", template: "/v1/topics/{topic}/claim", headers: signed("POST", prekeys + "/claim"))
        #expect(refused.status == 429 && refused.errorCode == "rate_limited")
        let authentication = RequestAuthentication.sign(method: "POST", path: prekeys + "/claim", installation: installation,
                                                        contentDigest: RequestAuthentication.emptyBodyDigest, with: installationKey)
        await #expect(throws: PrekeyClaimLimited.self) { _ = try await relay.client.claimPrekey(of: installation, authentication: authentication) }
        let stock = try await request("GET", prekeys, headers: signed("GET", prekeys))
        #expect(stock.json?["oneTimeRemaining"] == .integer(3) && stock.json?["oneTimeServedLastHour"] == .integer(6))
    }

    /// `sent_ns` is nanoseconds since 1970, near the relay's clock: a time in
    /// milliseconds, or one from another month or from the future, is refused
    /// with its own code, and nothing is stored.
    @Test func aSendTimeInAnotherUnitOrFarFromNowIsRefused() async throws {
        let inbox = Topic.message(installation: installation)
        let now = Date().timeIntervalSince1970
        func envelope(_ sentNs: UInt64) throws -> [UInt8] {
            try Envelope.with { $0.header = Data(try EnvelopeHeader.with { $0.sentNs = sentNs }.wireBytes()); $0.ciphertext = Data([1]) }.wireBytes()
        }
        for sent in [UInt64(now * 1e3), UInt64((now - 31 * 24 * 3600) * 1e9), UInt64((now + 3600) * 1e9)] {
            let refused = try await documented("POST", "/v1/topics/\(inbox.name)", template: "/v1/topics/{topic}", body: envelope(sent))
            #expect(refused.errorCode == "sent_time_out_of_range")
        }
        #expect(try await relay.client.items(on: inbox, after: 0, limit: 10).items.isEmpty, "nothing was stored")
        _ = try await relay.client.publish(envelope(UInt64((now - 7 * 24 * 3600) * 1e9)), to: inbox)
    }

    @Test func followingATopicStreamsStoredThenNewItemsAsServerSentEvents() async throws {
        let inbox = Topic.message(installation: installation)
        let now = UInt64(Date().timeIntervalSince1970 * 1e9)
        let envelope = { (n: UInt64) in
            try Envelope.with { $0.header = Data(try EnvelopeHeader.with { $0.sentNs = now + n }.wireBytes()); $0.ciphertext = Data([1, 2]) }.wireBytes()
        }
        let first = try await relay.client.publish(envelope(1), to: inbox)
        var events = relay.client.watch(inbox, after: 0).makeAsyncIterator()
        #expect(try await events.next() == RelayItem(cursor: first, data: try envelope(1)))
        let second = try await relay.client.publish(envelope(2), to: inbox)
        #expect(try await events.next() == RelayItem(cursor: second, data: try envelope(2)))
        var later = relay.client.watch(inbox, after: first).makeAsyncIterator()
        #expect(try await later.next()?.cursor == second, "from a cursor, only what follows it")
    }

    @Test func hostileRequestsGetJSONErrorsAndChangeNothing() async throws {
        let contact = "/v1/topics/contact-\(accountID)"
        let cases: [(String, String, [UInt8]?, Int, String)] = [
            ("POST", "/v1/topics/contact-XYZ", [1], 400, "bad_topic"),
            ("POST", "/v1/topics/\(String(repeating: "a", count: 5_000))", [1], 400, "bad_topic"),
            ("GET", "/v1/topics/..%2F..%2Fetc%2Fpasswd", nil, 400, "bad_topic"),
            ("POST", contact, [], 400, "empty_body"),
            ("POST", contact, [0xFF, 0xFF, 0xFF], 400, "malformed"),
            ("POST", contact, try bundle(signedBy: SigningKey.generate()), 403, "bad_signature"),
            ("POST", "/v1/topics/contact-\(AccountIdentity.of(publicKey: try SigningKey.generate().publicKey))", try bundle(), 400, "mismatch"),
            ("POST", contact, Array(repeating: 7, count: 300 * 1024), 413, "too_large"),
            ("GET", contact + "?after=-1", nil, 400, "bad_parameter"),
            ("GET", contact + "?after=abc", nil, 400, "bad_parameter"),
            ("DELETE", contact, nil, 405, "method_not_allowed"),
            ("GET", "/nowhere", nil, 404, "not_found"),
            ("POST", "/v1/topics/\(Topic.message(installation: installation).name)", [0x0A, 0x01, 0x00], 400, "malformed"),
            ("POST", "/v1/topics/\(Topic.prekey(installation: installation).name)", try prekeyUpload(count: 201), 413, "too_many_prekeys"),
        ]
        for (method, path, body, status, code) in cases {
            let answer = try await request(method, path, body: body)
            #expect(answer.status == status && answer.errorCode == code, "\(method) \(path.prefix(60)): \(answer.status) \(String(describing: answer.json))")
            #expect(matches(answer.json, resolve("#/components/schemas/Error")))
        }
        let page = try await request("GET", contact)
        #expect(page.json?["items"]?.count == 0, "nothing was stored")
        #expect(try await request("GET", "/v1/health").status == 200, "still serving")
    }

    @Test func aRevokedInstallationCannotPublishItsBundleOrPrekeys() async throws {
        #expect(try await request("POST", "/v1/topics/contact-\(accountID)", body: bundle()).status == 201)
        let revocation = try SignedRevocation.signing(Revocation.with {
            $0.accountKey = Data(account.publicKey)
            $0.installationID = Data(installation)
            $0.revokedAtMs = 1
        }, with: account).wireBytes()
        #expect(try await request("POST", "/v1/topics/revoked-\(accountID)", body: revocation).status == 201)
        #expect(try await request("POST", "/v1/topics/contact-\(accountID)", body: bundle()).errorCode == "revoked")
        let prekeys = "/v1/topics/\(Topic.prekey(installation: installation).name)"
        #expect(try await request("POST", prekeys, body: prekeyUpload(count: 2)).errorCode == "revoked")
        #expect(try await request("POST", prekeys + "/claim", headers: signed("POST", prekeys + "/claim")).errorCode == "revoked",
                "a revoked installation claims nothing")
    }
}
