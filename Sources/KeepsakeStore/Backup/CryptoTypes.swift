import KeepsakeCrypto

// The crypto vocabulary backups expose, re-exported so `import Keepsake` is all an app needs.
public typealias Mnemonic = KeepsakeCrypto.Mnemonic
public typealias MnemonicError = KeepsakeCrypto.MnemonicError
public typealias SecureBytes = KeepsakeCrypto.SecureBytes
public typealias BackupCipher = KeepsakeCrypto.NoncedAEAD.Cipher
public typealias CryptoError = KeepsakeCrypto.CryptoError
