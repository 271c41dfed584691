import Foundation

/// A 256-bit key written as 24 BIP-39 English words (the last word carries an
/// 8-bit SHA-256 checksum), so a person can keep it on paper and a mistyped
/// word is caught before any file is touched.
public struct Mnemonic: Sendable, Equatable, CustomStringConvertible {
    /// Words in a phrase.
    public static let wordCount = 24
    /// The words.
    public let words: [String]

    /// The words for a 32-byte key.
    public init(key: SecureBytes) throws {
        guard key.count == 32 else { throw CryptoError.invalidLength(what: "mnemonic key", expected: 32, actual: key.count) }
        let entropy = key.withUnsafeBytes { Array($0) }
        let checksum = entropy.withUnsafeBytes { SHA256.hash($0) }[0]
        let bits = entropy + [checksum]
        words = (0..<Self.wordCount).map { index in
            var value = 0
            for bit in index * 11..<(index + 1) * 11 {
                value = value << 1 | Int(bits[bit / 8] >> (7 - UInt8(bit % 8)) & 1)
            }
            return String(Self.englishWords[value])
        }
    }

    /// Parses words typed by a person: the text is normalised to NFKD (as BIP-39
    /// does, so full-width or composed letters read as their plain forms), and
    /// case, commas and extra whitespace are forgiven; an unknown word, a wrong
    /// count or a failed checksum throws `MnemonicError`.
    public init(parsing text: String) throws(MnemonicError) {
        let typed = text.decomposedStringWithCompatibilityMapping.lowercased()
            .split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" || $0 == "," })
        guard typed.count == Self.wordCount else { throw .wrongWordCount(typed.count) }
        words = typed.map(String.init)
        _ = try entropy()
    }

    /// The 32-byte key the words encode, in secure memory.
    public func key() throws -> SecureBytes {
        var entropy = try entropy()
        defer { entropy.withUnsafeMutableBytes { secureZero($0) } }
        let key = try SecureBytes(count: 32)
        key.withUnsafeMutableBytes { $0.copyBytes(from: entropy) }
        return key
    }

    /// The words, separated by spaces.
    public var description: String { words.joined(separator: " ") }

    private func entropy() throws(MnemonicError) -> [UInt8] {
        var bits = [UInt8](repeating: 0, count: 33)
        for (position, word) in words.enumerated() {
            guard let value = Self.index[word] else { throw .unknownWord(position: position + 1, word: word) }
            for i in 0..<11 where value >> (10 - i) & 1 == 1 {
                let bit = position * 11 + i
                bits[bit / 8] |= 1 << (7 - UInt8(bit % 8))
            }
        }
        let entropy = Array(bits[0..<32])
        guard entropy.withUnsafeBytes({ SHA256.hash($0) })[0] == bits[32] else { throw .checksumMismatch }
        return entropy
    }

    private static let index: [String: Int] = Dictionary(
        uniqueKeysWithValues: englishWords.enumerated().map { (String($0.element), $0.offset) })
}

/// Why typed words are not a valid mnemonic. Nothing has been read or changed when this is thrown.
///
/// Not frozen: later releases may add cases, so a `switch` over it needs a
/// `default` branch. `description` always says what happened and what to do.
public enum MnemonicError: Error, Equatable, CustomStringConvertible {
    case wrongWordCount(Int)
    case unknownWord(position: Int, word: String)
    case checksumMismatch

    /// What is wrong with the phrase.
    public var description: String {
        switch self {
        case let .wrongWordCount(n):
            return "a recovery phrase has \(Mnemonic.wordCount) words, this one has \(n); check for missing or extra words"
        case let .unknownWord(position, word):
            return "word \(position) (\"\(word)\") is not in the BIP-39 English list; check its spelling"
        case .checksumMismatch:
            return "the recovery phrase's checksum does not match: a word is mistyped or two are swapped; check each word"
        }
    }
}
