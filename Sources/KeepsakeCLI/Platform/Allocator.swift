/// The C allocator's tuning, where the platform has it.
enum Allocator {
    /// Makes blocks of 64 KiB and more get their own mapping, returned to the
    /// system when freed (glibc's `M_MMAP_THRESHOLD`). Elsewhere a no-op: Apple's
    /// allocator already returns large blocks.
    static func returnLargeBlocksToSystem() {
        #if canImport(Glibc)
        _ = glibcMallopt(glibcMmapThreshold, 64 * 1024)
        #endif
    }
}

#if canImport(Glibc)
/// glibc's `mallopt(3)` and its `M_MMAP_THRESHOLD` parameter (malloc.h), which the Glibc module does not export.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
private let glibcMmapThreshold: Int32 = -3
#endif
