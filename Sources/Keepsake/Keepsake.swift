// `import Keepsake` is all an app needs: the store (KeepsakeStore), messaging
// (KeepsakeMessaging) and the relay transport protocol (KeepsakeTransport).
// Import the modules one by one to take less: a storage-only app needs KeepsakeStore alone.
@_exported import KeepsakeMessaging
@_exported import KeepsakeStore
@_exported import KeepsakeTransport
