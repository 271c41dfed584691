/// The X3DH key agreement (Signal's specification) over X25519 and HKDF-SHA-256:
/// the shared secret a Double Ratchet session starts from.
///
/// The caller checks the responder's signed prekey signature before calling
/// `initiate` (it belongs to the prekey bundle, signed by the installation).
public enum X3DH {
    static let info = Array("Keepsake X3DH".utf8)

    /// The initiator's side: a fresh ephemeral key agreed with the responder's
    /// identity key, signed prekey and, when one was served, one-time prekey.
    /// Returns the shared secret and the ephemeral public key to send along.
    public static func initiate(
        identity: KeyAgreementKey, responderIdentity: [UInt8], signedPrekey: [UInt8], oneTimePrekey: [UInt8]?
    ) throws -> (sharedSecret: SecureBytes, ephemeralKey: [UInt8]) {
        try initiate(identity: identity, responderIdentity: responderIdentity, signedPrekey: signedPrekey, oneTimePrekey: oneTimePrekey,
                     ephemeral: KeyAgreementKey.generate())
    }

    /// `initiate` with a given ephemeral key (the protocol's test vectors).
    static func initiate(
        identity: KeyAgreementKey, responderIdentity: [UInt8], signedPrekey: [UInt8], oneTimePrekey: [UInt8]?, ephemeral: KeyAgreementKey
    ) throws -> (sharedSecret: SecureBytes, ephemeralKey: [UInt8]) {
        var outputs = [
            try identity.sharedSecret(with: signedPrekey),
            try ephemeral.sharedSecret(with: responderIdentity),
            try ephemeral.sharedSecret(with: signedPrekey),
        ]
        if let oneTimePrekey { outputs.append(try ephemeral.sharedSecret(with: oneTimePrekey)) }
        return (try derive(outputs), ephemeral.publicKey)
    }

    /// The responder's side, from the initiator's identity and ephemeral public keys.
    public static func respond(
        identity: KeyAgreementKey, signedPrekey: KeyAgreementKey, oneTimePrekey: KeyAgreementKey?,
        initiatorIdentity: [UInt8], ephemeralKey: [UInt8]
    ) throws -> SecureBytes {
        var outputs = [
            try signedPrekey.sharedSecret(with: initiatorIdentity),
            try identity.sharedSecret(with: ephemeralKey),
            try signedPrekey.sharedSecret(with: ephemeralKey),
        ]
        if let oneTimePrekey { outputs.append(try oneTimePrekey.sharedSecret(with: ephemeralKey)) }
        return try derive(outputs)
    }

    /// SK = HKDF(salt: 32 zero bytes, input: 32 × 0xFF ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], info), 32 bytes.
    private static func derive(_ outputs: [SecureBytes]) throws -> SecureBytes {
        let input = try SecureBytes(count: 32 + 32 * outputs.count)
        input.withUnsafeMutableBytes { buffer in
            for i in 0..<32 { buffer[i] = 0xFF }
            for (index, output) in outputs.enumerated() {
                output.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[32 + 32 * index..<64 + 32 * index]).copyMemory(from: $0) }
            }
        }
        return try HKDF.derive(secret: input, salt: [], info: info, length: 32)
    }
}
