import Foundation

/// One anonymous mapping from which tensors allocated together, and living about as long, are carved: a
/// checkpoint's weights. Mapping fresh pages is most of the cost of reading weights into new tensors (on this
/// 2-core machine 100 MB take ~30 ms to map and ~8 ms to fill), and `populate` can do it ahead, while the
/// process waits for something else (the HDF5 check child). A slice's whole pages go back to the system when its
/// tensor dies, so cutting a network does not keep the weights it dropped; `trim` returns what was never handed
/// out; the mapping goes when the last tensor does.
public final class TensorArena: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    /// Bytes mapped.
    public let capacity: Int
    private let lock = NSLock()
    private var used = 0
    private var populated = 0

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Maps `bytes` (rounded up to whole pages) of address space; nil when the system refuses.
    public init?(bytes: Int) {
        guard bytes > 0, bytes <= 1 << 46 else { return nil }
        let size = (bytes + Self.pageSize - 1) / Self.pageSize * Self.pageSize
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            return nil
        }
        base = p
        capacity = size
    }

    deinit { munmap(base, capacity) }

    /// Room for `byteCount` bytes at an address that is `phase` (a multiple of 4 below 64) past a multiple of 64,
    /// or nil when the arena is full.
    func allocate(byteCount: Int, phase: Int = 0) -> UnsafeMutableRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        let start = ((used + 63) & ~63) + (phase & 60)
        guard byteCount >= 0, start <= capacity, byteCount <= capacity - start else { return nil }
        used = start + byteCount
        return base + start
    }

    /// Returns the whole pages of a dead tensor's slice to the system (its first and last page may hold
    /// neighbours and stay).
    func release(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        let page = Self.pageSize
        let first = (Int(bitPattern: pointer) + page - 1) & ~(page - 1)
        let end = (Int(bitPattern: pointer) + byteCount) & ~(page - 1)
        if end > first { madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, MADV_DONTNEED) }
    }

    /// Maps the arena's pages ahead of use, 1 MiB at a time from the start, until all are mapped or `stop()`
    /// says to; a later call carries on where this one stopped. Pages not mapped here are mapped when written.
    public func populate(until stop: () -> Bool = { false }) {
        let step = 1 << 20
        while !stop() {
            lock.lock()
            let from = populated
            let n = min(step, capacity - from)
            populated += n
            lock.unlock()
            guard n > 0 else { return }
            // MADV_POPULATE_WRITE (Linux 5.14). Where unknown, give up: the pages are mapped when written (touching
            // them here instead could race with a tensor being filled).
            if madvise(base + from, n, madvPopulateWrite) != 0 { return }
        }
    }

    /// Hands the pages past the last tensor back to the system: nothing more will be carved from this arena.
    public func trim() {
        lock.lock()
        let page = Self.pageSize
        let from = (used + page - 1) & ~(page - 1)
        used = capacity
        lock.unlock()
        if from < capacity { madvise(base + from, capacity - from, MADV_DONTNEED) }
    }
}

/// `MADV_POPULATE_WRITE` from <linux/mman.h>, which Swift's view of glibc's headers does not always carry.
let madvPopulateWrite: Int32 = 23
