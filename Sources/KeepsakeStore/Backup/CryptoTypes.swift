import KeepsakeCrypto

// The crypto vocabulary backups expose, re-exported so `import Keepsake` is all an app needs.
/// A 24-word recovery phrase (BIP-39).
public typealias Mnemonic = KeepsakeCrypto.Mnemonic
/// Why a recovery phrase is refused.
public typealias MnemonicError = KeepsakeCrypto.MnemonicError
/// Secret bytes in locked memory, wiped when freed.
public typealias SecureBytes = KeepsakeCrypto.SecureBytes
/// A backup's chunk cipher.
public typealias BackupCipher = KeepsakeCrypto.NoncedAEAD.Cipher
/// Why a cryptographic operation failed.
public typealias CryptoError = KeepsakeCrypto.CryptoError
